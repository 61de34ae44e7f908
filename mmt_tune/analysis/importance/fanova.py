"""The ``fanova`` package's functional ANOVA (the default engine): main effects, pairwise interactions and
marginal curves from one forest per seed.

fanova 2.0.19 (its last release, 2019) calls ``np.full(..., dtype=np.float)``; the ``np.float`` alias was
removed in NumPy 1.24/2.0. :func:`import_fanova` restores the alias as the builtin ``float`` (exactly what it
always was) before fanova is imported, and only when it is missing; it also quiets fanova's deprecation
warnings and its ``logging.basicConfig(level=INFO)``. Remove that shim when fanova publishes a NumPy 2
compatible release.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from mmt_tune.analysis.importance._base import (
    BaseImportanceEvaluator,
    ForestSettings,
    SeedResult,
    ZeroVariance,
)
from mmt_tune.spaces import Distribution


def import_fanova() -> tuple[type, object]:
    """``fanova.fANOVA`` and ``ConfigSpace``, importable and quiet under NumPy 2."""
    if "float" not in np.__dict__:
        np.float = float  # the alias NumPy removed; fanova only uses it as a dtype
    warnings.filterwarnings("ignore", message=r"Please use `list\(space", category=DeprecationWarning)
    warnings.filterwarnings("ignore", module=r"ConfigSpace.*", category=DeprecationWarning)
    if not logging.getLogger().handlers:
        # fANOVA.__init__ runs logging.basicConfig(level=INFO); a handler of ours makes that a no-op.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fanova").setLevel(logging.ERROR)

    import ConfigSpace
    from fanova import fANOVA

    return fANOVA, ConfigSpace


class FanovaImportanceEvaluator(BaseImportanceEvaluator):
    """Main effects of every parameter, pure pairwise interactions among ``pair_params`` (default: the
    ``pair_candidates`` parameters with the largest main effects), and each parameter's marginal mean
    (main-effect curve) on ``grid_points`` points, all from one forest."""

    def __init__(
        self,
        forest: ForestSettings,
        pair_candidates: int = 3,
        grid_points: int = 40,
        pair_params: Sequence[str] | None = None,
    ) -> None:
        super().__init__(forest)
        self.pair_candidates = pair_candidates
        self.grid_points = grid_points
        self.pair_params = list(pair_params) if pair_params else None

    def evaluate(
        self, X: np.ndarray, y: np.ndarray, params: Mapping[str, Distribution], seed: int
    ) -> SeedResult:
        import pandas as pd

        fANOVA, ConfigSpace = import_fanova()
        space = ConfigSpace.ConfigurationSpace(seed=seed)
        X = np.array(X, dtype=float)
        for j, (name, distribution) in enumerate(params.items()):
            if distribution.categorical:
                space.add(ConfigSpace.CategoricalHyperparameter(name, list(range(len(distribution.values)))))
            else:
                hyperparameter = ConfigSpace.UniformFloatHyperparameter(name, *distribution.encoded_bounds)
                space.add(hyperparameter)
                # ConfigSpace rounds bounds to 13 significant digits; keep the samples inside what it stored.
                X[:, j] = np.clip(X[:, j], hyperparameter.lower, hyperparameter.upper)
        frame = pd.DataFrame(X, columns=list(params))  # fanova orders the columns as the space does
        forest = self.forest
        model = fANOVA(
            frame,
            np.asarray(y, dtype=float),
            config_space=space,
            n_trees=forest.n_trees,
            seed=seed,
            bootstrapping=True,
            points_per_tree=None,
            max_features=max(1, (7 * len(params)) // 10),  # fANOVA's classic 70% rule, stated explicitly
            min_samples_split=forest.min_samples_split,
            min_samples_leaf=forest.min_samples_leaf,
            max_depth=forest.max_depth,
        )
        order = list(space.keys())
        try:
            main = {
                name: float(
                    model.quantify_importance((order.index(name),))[(order.index(name),)][
                        "individual importance"
                    ]
                )
                for name in params
            }
        except RuntimeError as exc:  # "Encountered zero total variance in all trees."
            raise ZeroVariance(str(exc)) from None
        result = SeedResult(main)
        top = self.pair_params or [
            name for name, _ in sorted(main.items(), key=lambda kv: -kv[1])[: self.pair_candidates]
        ]
        if len(top) >= 2:
            pairs = model.get_most_important_pairwise_marginals(params=top)
            result.pairs = {tuple(sorted(pair)): float(value) for pair, value in pairs.items()}
        for name, distribution in params.items():
            dim = order.index(name)
            result.marginals[name] = np.array(
                [
                    model.marginal_mean_variance_for_values([dim], [value])[0]
                    for value in distribution.grid(self.grid_points)
                ]
            )
        return result
