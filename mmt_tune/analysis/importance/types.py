"""The importance analysis's options and result types, below the modules that compute, tabulate and draw
them: :func:`~mmt_tune.analysis.importance.study.importance` returns an :class:`ImportanceResult`;
:mod:`~mmt_tune.analysis.importance.table` turns it into Table 3 (``table3(result)``), ``importance.csv``
(``importance_frame``) and ``interactions.csv`` (``interactions_frame``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmt_tune.analysis.results import configuration_key
from mmt_tune.modalities import MODALITIES
from mmt_tune.spaces import Distribution


@dataclass(frozen=True)
class ImportanceOptions:
    objective: str = "auc"  # the metric whose fold mean is decomposed
    engine: str = "fanova"  # or "optuna"
    seeds: int = 3  # random-forest seeds; importance is reported as mean ± std over them
    n_trees: int = 16  # trees per forest (fanova's own default, stated)
    min_samples_leaf: int | None = None  # None: max(1, trials // 200), see _forest()
    min_trials: int = 10  # fewer complete trials than this: noted, not analysed
    pair_candidates: int = 3  # interactions among this many parameters with the largest main effects
    grid_points: int = 40  # marginal-curve resolution
    jobs: int | None = None  # worker processes over configurations (default: CPU count)


@dataclass
class ConfigurationImportance:
    """The importance analysis of one model x modality configuration."""

    model: str
    present: str
    n_trials: int = 0  # complete trials analysed
    params: dict[str, Distribution] = field(default_factory=dict)  # the analysed parameters, encoded so
    main: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (mean, std) over seeds
    pairs: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    marginals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # x, mean, std
    cells: dict[str, str] = field(default_factory=dict)  # name -> why it has no importance value
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return configuration_key(self.model, self.present)


@dataclass
class ImportanceResult:
    configurations: list[ConfigurationImportance]
    notes: list[str]
    options: ImportanceOptions
    modalities: tuple[str, ...] = MODALITIES  # the study's: Table 3's tick and α columns
    spread: str = ""  # what the ± is over: forest seeds, or (a nested study) outer folds

    def all_notes(self) -> list[str]:
        return [*self.notes, *(f"{c.key}: {note}" for c in self.configurations for note in c.notes)]
