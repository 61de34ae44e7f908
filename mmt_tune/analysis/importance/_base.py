"""What every importance engine shares: its inputs, its result, and the interface it implements.

Both engines see the same encoded inputs (:meth:`mmt_tune.spaces.Distribution.encode`). A log-scaled
parameter (``loguniform`` in the search space) is encoded as ``log10(value)`` with bounds
``log10(low)..log10(high)``: fANOVA integrates the forest over the box given by the bounds with a uniform
measure, so the scale it is given *is* the measure of the variance decomposition. Neither engine applies the
log itself, hence the explicit encoding. A categorical parameter is encoded as the index of its value.

Importance is the *individual* (main-effect or pure-interaction) fraction of the forest's total variance,
the quantity of Hutter et al. 2014 (the paper's reference 22). Every forest setting is passed explicitly,
never left to an engine's default.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mmt_tune.spaces import Distribution

#: Fewer complete trials than this in a configuration: Table 3 and its figures warn that its importance is
#: noisy (fANOVA's forest is fitted on that many points; our validation test uses 200).
FEW_TRIALS = 50


@dataclass(frozen=True)
class ForestSettings:
    """Random-forest settings shared by both engines (fanova's and Optuna's defaults differ and change)."""

    n_trees: int = 16
    max_depth: int = 64
    min_samples_leaf: int = 1
    min_samples_split: int = 2


@dataclass
class SeedResult:
    """One forest seed's decomposition."""

    main: dict[str, float]  # parameter -> main-effect fraction of the variance
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)  # pure pairwise interaction fractions
    marginals: dict[str, np.ndarray] = field(default_factory=dict)  # name -> marginal mean on its grid()


class ZeroVariance(ValueError):
    """The objective does not vary across the trials: there is nothing to decompose."""


class BaseImportanceEvaluator(abc.ABC):
    """An importance engine: one forest seed's functional ANOVA of ``y`` over the encoded ``X``.

    ``X`` has one column per parameter of ``params`` (in its order), encoded by that parameter's
    :class:`~mmt_tune.spaces.Distribution`; ``y`` is the objective of each trial.
    """

    def __init__(self, forest: ForestSettings) -> None:
        self.forest = forest

    @abc.abstractmethod
    def evaluate(
        self, X: np.ndarray, y: np.ndarray, params: Mapping[str, Distribution], seed: int
    ) -> SeedResult:
        """Raise :class:`ZeroVariance` when the objective does not vary."""
