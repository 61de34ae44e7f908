"""Many trials of one configuration as one batched model: trials x folds slices.

Trials of a configuration share its data, folds and in-fold preprocessing (fitted once here, not once per
trial) and, in a search over learning rate and loss weights, the shapes of their models. So B trials of k
folds train as one packed model of B x k slices (:func:`mmt_tune.training.trainer.fit_packed` with ``slices=``): every
slice has its own learning rate and weight decay (AdamW parameter groups over one flat buffer), its own loss
weights and KL warm-up (``[slices]`` tensors in the weighted loss). A fold's random streams depend on the
study seed and the fold only, so a trial gets the same fold metrics alone, in a pack of folds, or packed
with other trials (``tests/training/test_trial_packs.py`` states the tolerance).

Trials that differ in anything else (model options, preprocessing, epochs, batch size, early stopping)
cannot share a pack: :func:`pack_key` says which can.

Example::

    configs = [TrainConfig.from_options("mmt1m", ["T1WI"], {"lr": lr}) for lr in (1e-5, 3e-5, 1e-4)]
    results = train_trials(table, configs)  # one TrainResult per config
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import pandas as pd

from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.training.crossval import TrainResult, check_table, fold_results
from mmt_tune.training.fold_cache import prepare_folds
from mmt_tune.training.trainer import EpochInfo

#: What packed trials may differ in: per-slice values of the packed trainer.
PER_SLICE = ("lr", "weight_decay", "loss_weights", "kl_warmup")


def pack_key(config: TrainConfig) -> str:
    """Trials with the same key can train in one pack (all options but :data:`PER_SLICE` equal)."""
    fields = {k: v for k, v in asdict(config).items() if k not in PER_SLICE}
    return repr(sorted(fields.items()))


def train_trials(
    table: pd.DataFrame,
    configs: Sequence[TrainConfig],
    on_epoch: Callable[[int, EpochInfo], None] | None = None,
    resume: dict | None = None,
) -> list[TrainResult]:
    """Cross-validate every config in one pack of ``len(configs) x folds`` slices; one result per config
    (``seconds`` is the pack's wall time divided among its trials). ``on_epoch`` and ``resume`` as in
    :func:`mmt_tune.training.crossval.train_configuration`: a checkpoint of the pack continues the whole pack."""
    from mmt_tune.training.trainer import Layout, fit_packed

    if not configs:
        return []
    first = configs[0]
    if any(pack_key(c) != pack_key(first) for c in configs[1:]):
        raise InputError(f"trials of one pack may differ only in {', '.join(PER_SLICE)}")
    if first.baseline:
        raise InputError(f"{first.model}: a baseline has no packed trainer")
    start = time.perf_counter()
    columns, splits = check_table(table, first)
    fold_data = prepare_folds(table, first, columns, splits)
    layout = Layout.of(fold_data, first, columns)
    group = [fd for _ in configs for fd in fold_data]
    slices = [c for c in configs for _ in fold_data]
    probabilities, history = fit_packed(group, first, on_epoch, resume, layout=layout, slices=slices)
    k = len(fold_data)
    results = []
    seconds = (time.perf_counter() - start) / len(configs)
    for t, config in enumerate(configs):
        mine = history[history["slice"].between(t * k, t * k + k - 1)].drop(columns="slice")
        result = fold_results(table, config, [fold_data], [(probabilities[t * k : t * k + k], mine)])
        result.seconds = seconds
        results.append(result)
    return results
