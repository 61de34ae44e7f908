"""Optuna's ``FanovaImportanceEvaluator`` on the same encoded inputs (``--engine optuna``): main effects only.

Optuna's evaluator is called with ``normalize=False`` so that it reports the same fraction of the variance
as the fanova engine, not a share rescaled to sum to 1; its search space is built from the encoded bounds,
so it applies no log of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from mmt_tune.analysis.importance._base import BaseImportanceEvaluator, SeedResult, ZeroVariance
from mmt_tune.spaces import Distribution


class OptunaImportanceEvaluator(BaseImportanceEvaluator):
    def evaluate(
        self, X: np.ndarray, y: np.ndarray, params: Mapping[str, Distribution], seed: int
    ) -> SeedResult:
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        if np.ptp(y) == 0:
            raise ZeroVariance("the objective is the same for every trial")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = {
            name: CategoricalDistribution(list(range(len(d.values))))
            if d.categorical
            else FloatDistribution(*d.encoded_bounds)
            for name, d in params.items()
        }
        study = optuna.create_study(direction="maximize")
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params={
                        name: (int(v) if d.categorical else float(v))
                        for (name, d), v in zip(params.items(), row, strict=True)
                    },
                    distributions=distributions,
                    value=float(value),
                )
                for row, value in zip(X, y, strict=True)
            ]
        )
        forest = self.forest
        evaluator = FanovaImportanceEvaluator(n_trees=forest.n_trees, max_depth=forest.max_depth, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # normalize=False is marked experimental
            main = get_param_importances(study, evaluator=evaluator, params=list(params), normalize=False)
        return SeedResult({name: float(main[name]) for name in params})
