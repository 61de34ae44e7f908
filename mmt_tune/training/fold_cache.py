"""The in-fold preprocessing of a configuration's folds, fitted once per process and reused.

:func:`prepare_folds` fits every fold's pipeline (impute, scale, select, Borderline-SMOTE; early-stopping rows
split off first) on the fold's training rows, seeded by the study seed and the fold. A study's trials that
differ only in what the model sees (learning rate, loss weights, C, ...) need the same fitted folds: Tune
reuses a worker process from trial to trial, so the last few fits are kept here (:data:`_FOLD_CACHE`, keyed by
the table's content and the preprocessing settings) and handed out read-only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import pandas as pd

from mmt_tune.config import TrainConfig
from mmt_tune.training.preprocess import FoldData, inner_split, preprocess_fold

#: The in-fold preprocessing of the last few (table, preprocessing settings) a process fitted: a study's
#: trials that differ only in what the model sees (lr, loss weights, C, ...) share their folds' fitted
#: pipelines instead of refitting them (Tune reuses a worker process from trial to trial).
_FOLD_CACHE: OrderedDict[tuple, list[FoldData]] = OrderedDict()
FOLD_CACHE_SIZE = 4


def preprocessing_key(table: pd.DataFrame, config: TrainConfig) -> tuple:
    """What a configuration's fold data depend on: the table's content and the preprocessing settings
    (modalities used, folds, repeats, seed, early-stopping split, :class:`PreprocessConfig`)."""
    content = hashlib.sha256(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
    content.update(repr(list(table.columns)).encode())
    stopping = config.early_stopping_fraction if config.holds_out_monitor else None
    return (
        content.hexdigest(),
        tuple(config.modalities_used),
        config.folds,
        config.repeats,
        config.seed,
        stopping,
        repr(config.preprocess),
    )


def prepare_folds(table: pd.DataFrame, config: TrainConfig, columns: dict, splits: list) -> list[FoldData]:
    """Every fold's in-fold preprocessing (and early-stopping rows), seeded by the study seed and the fold;
    served from :data:`_FOLD_CACHE` when this process fitted the same already (fold data are read only)."""
    key = preprocessing_key(table, config)
    if key in _FOLD_CACHE:
        _FOLD_CACHE.move_to_end(key)
        return _FOLD_CACHE[key]
    fold_data = _fit_folds(table, config, columns, splits)
    for fd in fold_data:  # shared by later trials: an accidental in-place change fails instead of leaking
        _read_only(fd)
    _FOLD_CACHE[key] = fold_data
    while len(_FOLD_CACHE) > FOLD_CACHE_SIZE:
        _FOLD_CACHE.popitem(last=False)
    return fold_data


def _read_only(fd: FoldData) -> None:
    arrays = [fd.y_train, fd.y_val, fd.val_index, *fd.train.values(), *fd.val.values()]
    if fd.monitor is not None:
        arrays += [fd.y_monitor, *fd.monitor.values()]
    for transform in (fd.transforms or {}).values():
        arrays += [v for v in vars(transform).values() if isinstance(v, np.ndarray)]
    for array in arrays:
        array.setflags(write=False)


def _fit_folds(table: pd.DataFrame, config: TrainConfig, columns: dict, splits: list) -> list[FoldData]:
    fold_data = []
    for f, (train, val) in enumerate(splits):
        monitor = None
        if config.holds_out_monitor:
            train, monitor = inner_split(table, train, config.early_stopping_fraction, config.seed * 1000 + f)
        fold_data.append(
            preprocess_fold(
                table,
                columns,
                train,
                val,
                config.preprocess,
                random_state=config.seed * 1000 + f,
                fold=f,
                monitor_index=monitor,
            )
        )
    return fold_data
