"""The maths: functional ANOVA of one configuration's trials, with fanova or Optuna's evaluator.

Both engines see the same encoded inputs. A log-scaled parameter (``loguniform`` in the search space) is
encoded as ``log10(value)`` with bounds ``log10(low)..log10(high)``: fANOVA integrates the forest over the
box given by the bounds with a uniform measure, so the scale it is given *is* the measure of the variance
decomposition. Neither engine applies the log itself (fanova only knows the bounds we pass; Optuna's
evaluator builds its search space with ``transform_log=False``), hence the explicit encoding. A categorical
parameter is encoded as the index of its value in ``choices``.

Importance is the *individual* (main-effect or pure-interaction) fraction of the forest's total variance,
the quantity of Hutter et al. 2014 (the paper's reference 22). Optuna's evaluator is called with
``normalize=False`` so that both engines report that same fraction, not a share rescaled to sum to 1.
Every forest setting is passed explicitly, never left to an engine's default.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

ENGINES = ("fanova", "optuna")


@dataclass(frozen=True)
class ParameterSpec:
    """A hyperparameter as the engines see it: numeric bounds (natural scale) and scale, or the choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    @property
    def categorical(self) -> bool:
        return self.choices is not None

    def encode(self, values) -> np.ndarray:
        if self.categorical:
            index = {str(c): i for i, c in enumerate(self.choices)}
            return np.array([index[str(v)] for v in values], dtype=float)
        values = np.asarray(values, dtype=float)
        encoded = np.log10(values) if self.log else values
        # Values were checked against the bounds; the clip only absorbs log10 rounding at the ends.
        return np.clip(encoded, *self.encoded_bounds)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        return 10.0**encoded if self.log and not self.categorical else encoded

    @property
    def encoded_bounds(self) -> tuple[float, float]:
        if self.categorical:
            return 0.0, float(len(self.choices) - 1)
        if self.log:
            return math.log10(self.low), math.log10(self.high)
        return float(self.low), float(self.high)

    def grid(self, points: int) -> np.ndarray:
        """Encoded values at which to draw the marginal: the choices, or an even grid over the bounds."""
        if self.categorical:
            return np.arange(len(self.choices), dtype=float)
        low, high = self.encoded_bounds
        return np.linspace(low, high, points)


@dataclass(frozen=True)
class ForestSettings:
    """Random-forest settings shared by both engines (fanova's and Optuna's defaults differ and change)."""

    n_trees: int = 16
    max_depth: int = 64
    min_samples_leaf: int = 1
    min_samples_split: int = 2


@dataclass
class SeedResult:
    main: dict[str, float]
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    marginals: dict[str, np.ndarray] = field(default_factory=dict)  # name -> marginal mean on spec.grid()


class ZeroVariance(ValueError):
    """The objective does not vary across the trials: there is nothing to decompose."""


def fanova_importance(
    X: np.ndarray,
    y: np.ndarray,
    specs: list[ParameterSpec],
    seed: int,
    forest: ForestSettings,
    pair_candidates: int = 3,
    grid_points: int = 40,
    pair_params: list[str] | None = None,
) -> SeedResult:
    """Main effects of every parameter, pure pairwise interactions among ``pair_params`` (default: the
    ``pair_candidates`` parameters with the largest main effects), and each parameter's marginal mean
    (main-effect curve), all from one forest."""
    import pandas as pd

    from analysis._compat import import_fanova

    fANOVA, ConfigSpace = import_fanova()
    space = ConfigSpace.ConfigurationSpace(seed=seed)
    X = np.array(X, dtype=float)
    for j, spec in enumerate(specs):
        if spec.categorical:
            space.add(ConfigSpace.CategoricalHyperparameter(spec.name, list(range(len(spec.choices)))))
        else:
            hyperparameter = ConfigSpace.UniformFloatHyperparameter(spec.name, *spec.encoded_bounds)
            space.add(hyperparameter)
            # ConfigSpace rounds bounds to 13 significant digits; keep the samples inside what it stored.
            X[:, j] = np.clip(X[:, j], hyperparameter.lower, hyperparameter.upper)
    frame = pd.DataFrame(X, columns=[s.name for s in specs])  # fanova orders the columns as the space does
    model = fANOVA(
        frame,
        np.asarray(y, dtype=float),
        config_space=space,
        n_trees=forest.n_trees,
        seed=seed,
        bootstrapping=True,
        points_per_tree=None,
        max_features=max(1, (7 * len(specs)) // 10),  # fANOVA's classic 70% rule, stated explicitly
        min_samples_split=forest.min_samples_split,
        min_samples_leaf=forest.min_samples_leaf,
        max_depth=forest.max_depth,
    )
    order = list(space.keys())
    try:
        main = {
            s.name: float(
                model.quantify_importance((order.index(s.name),))[(order.index(s.name),)][
                    "individual importance"
                ]
            )
            for s in specs
        }
    except RuntimeError as exc:  # "Encountered zero total variance in all trees."
        raise ZeroVariance(str(exc)) from None
    result = SeedResult(main)
    top = pair_params or [name for name, _ in sorted(main.items(), key=lambda kv: -kv[1])[:pair_candidates]]
    if len(top) >= 2:
        pairs = model.get_most_important_pairwise_marginals(params=top)
        result.pairs = {tuple(sorted(pair)): float(value) for pair, value in pairs.items()}
    for spec in specs:
        dim = order.index(spec.name)
        result.marginals[spec.name] = np.array(
            [model.marginal_mean_variance_for_values([dim], [value])[0] for value in spec.grid(grid_points)]
        )
    return result


def optuna_importance(
    X: np.ndarray, y: np.ndarray, specs: list[ParameterSpec], seed: int, forest: ForestSettings
) -> SeedResult:
    """Main effects with :class:`optuna.importance.FanovaImportanceEvaluator` on the same encoded inputs."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    if np.ptp(y) == 0:
        raise ZeroVariance("the objective is the same for every trial")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        s.name: CategoricalDistribution(list(range(len(s.choices))))
        if s.categorical
        else FloatDistribution(*s.encoded_bounds)
        for s in specs
    }
    study = optuna.create_study(direction="maximize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={
                    s.name: (int(v) if s.categorical else float(v)) for s, v in zip(specs, row, strict=True)
                },
                distributions=distributions,
                value=float(value),
            )
            for row, value in zip(X, y, strict=True)
        ]
    )
    evaluator = FanovaImportanceEvaluator(n_trees=forest.n_trees, max_depth=forest.max_depth, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # normalize=False is marked experimental
        main = get_param_importances(
            study, evaluator=evaluator, params=[s.name for s in specs], normalize=False
        )
    return SeedResult({name: float(main[name]) for name in (s.name for s in specs)})
