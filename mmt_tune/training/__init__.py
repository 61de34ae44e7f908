"""Training: everything between a feature table and a fitted model.

- :mod:`~mmt_tune.training.preprocess`: folds and the in-fold pipeline (impute, scale, select, SMOTE);
- :mod:`~mmt_tune.training.fold_cache`: a configuration's fitted folds, kept per process and read-only;
- :mod:`~mmt_tune.training.tensors`, :mod:`~mmt_tune.training.optim`: packed tensors, the masked optimizer;
- :mod:`~mmt_tune.training.trainer`: the packed trainer (folds, or trials x folds, as one batched model);
- :mod:`~mmt_tune.training.crossval`: cross-validation of one configuration;
- :mod:`~mmt_tune.training.trial_packs`: several trials of one configuration trained as one model;
- :mod:`~mmt_tune.training.refit`: one configuration fitted on chosen rows (the final model, a refit).

The public names below are imported on first use, so ``import mmt_tune.training.preprocess`` loads no torch.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "FoldData": "preprocess",
    "make_folds": "preprocess",
    "make_repeated_folds": "preprocess",
    "preprocess_fold": "preprocess",
    "prepare_folds": "fold_cache",
    "EpochInfo": "trainer",
    "fit_packed": "trainer",
    "TrainResult": "crossval",
    "train_configuration": "crossval",
    "train_trials": "trial_packs",
    "FittedConfiguration": "refit",
    "fit_configuration": "refit",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
