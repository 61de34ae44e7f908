"""The Ray Tune trainable: a trial's config -> :func:`mmt_tune.training.crossval.train_configuration` -> ``tune.report``.

A trial's config holds what was searched or fixed for its configuration (what the trials table records);
the constants of the run arrive through ``tune.with_parameters``, as Ray's "get data in and out" guide
advises: the feature table (put in the object store once, not per trial), the :class:`TrialSettings` (seed,
device, checkpoint interval), the tracking settings and the specs of the models the study uses (so a model
registered in the driver, a notebook or a plugin, runs on every worker).
Every ``report_every`` epochs (and at checkpoints and the last epoch) a trial reports the fold-mean training and
validation losses and the mean validation AUC, and logs the losses of every epoch since the last report to W&B
(one host copy per report, never per step; the epochs in between leave nothing on the host); every
``checkpoint_every`` epochs the report carries a checkpoint of the packed
training state, from which a resumed study continues the trial; the final report carries the cross-validated
metrics (mean and std over folds) and the per-fold metrics, with the loss curves and out-of-fold predictions as the final checkpoint (kept in
the experiment's storage, never sent to W&B: predictions carry patient identifiers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from mmt_tune import models
from mmt_tune.config import TrainConfig
from mmt_tune.metrics import METRICS
from mmt_tune.modalities import MODALITIES
from mmt_tune.study.trial_io import (  # noqa: F401
    FINAL_FILE,
    checkpoint_epoch,
    epoch_auc,
    final_report,
    report_again,
    report_checkpoint,
    resume_state,
    train_options,
)
from mmt_tune.training.crossval import train_configuration
from mmt_tune.training.trainer import EpochInfo

if TYPE_CHECKING:
    import torch

    from mmt_tune.study.tracking import Tracking


@dataclass(frozen=True)
class TrialSettings:
    """Constants of a study's run, the same for every trial (not hyperparameters)."""

    seed: int = 0  # folds, SMOTE, initialisation
    device: str = "cpu"
    compile: str | None = None  # a torch.compile backend for the training step (--compile)
    checkpoint_every: int = 10  # epochs between checkpoints a resumed trial continues from
    report_every: int = 10  # epochs between reports (checkpoints and the last epoch report too)
    modalities: tuple[str, ...] = MODALITIES  # the study's (its feature table's)


def run_trial(
    config: dict,
    table: pd.DataFrame,
    settings: TrialSettings = TrialSettings(),
    tracking: Tracking | None = None,
    specs: tuple[models.ModelSpec, ...] = (),
) -> None:
    """Train one trial's configuration and report every epoch, its checkpoints and the final metrics."""
    import tempfile
    from pathlib import Path

    import ray
    import torch
    from ray import tune

    from mmt_tune.study.tracking import start_trial_run

    for spec in specs:
        models.register(spec, replace=True)
    if "pack" in config:
        from mmt_tune.study.packs import run_pack

        run_pack(config, table, settings, tracking)
        return
    options = train_options(config)
    train_config = TrainConfig.from_options(
        config["model"],
        config["present"],
        options,
        modalities=settings.modalities,
        seed=settings.seed,
        device=settings.device,
        compile=settings.compile,
    )
    every = settings.checkpoint_every
    report_every = max(1, settings.report_every)
    # Hyperparameters and the configuration's identity only: nothing about the data or this machine.
    resume = None
    checkpoint = tune.get_checkpoint()
    if report_again(checkpoint):
        return
    resume = resume_state(checkpoint)
    run = (
        start_trial_run(
            tracking,
            {
                **options,
                "configuration": config["configuration"],
                "model": config["model"],
                "present": "+".join(config["present"]),
            },
            config["configuration"],
            config["model"],
        )
        if tracking is not None
        else None
    )

    pending: list[tuple[int, torch.Tensor]] = []  # epochs since the last report: fold-mean losses, on device
    names: list[str] = []

    def flush(info: EpochInfo | None = None) -> dict:
        """Log the pending epochs to W&B (one host copy); the last one's metrics, with the AUC of ``info``."""
        losses = torch.stack([v for _, v in pending]).cpu().numpy() if pending else []
        metrics: dict = {}
        for (logged, _), values in zip(pending, losses, strict=True):
            metrics = {"epoch": logged, **{n: float(v) for n, v in zip(names, values, strict=True)}}
            if info is not None and logged == pending[-1][0]:
                metrics["auc"] = epoch_auc(info)
            if run is not None:
                run.log(metrics, step=logged)
        pending.clear()
        return metrics

    def on_epoch(epoch: int, info: EpochInfo) -> None:
        names[:] = [f"train/{t}" for t in info.terms] + [f"val/{t}" for t in info.terms]
        pending.append((epoch, torch.cat([info.train.mean(0), info.val.mean(0)])))
        checkpointing = checkpoint_epoch(epoch, every, train_config.epochs)
        if not (checkpointing or (epoch + 1) % report_every == 0 or epoch + 1 == train_config.epochs):
            return  # nothing leaves the device this epoch
        metrics = flush(info)
        if checkpointing:
            report_checkpoint(metrics, info.state())
        else:
            tune.report(metrics)

    result = train_configuration(table, train_config, on_epoch=on_epoch, resume=resume)
    flush()  # the epochs after the last report, when early stopping ended the trial before its last epoch
    final = {**final_report(result), "node_id": ray.get_runtime_context().get_node_id()}
    if run is not None:
        run.summary.update({f"cv/{k}": v for k, v in final.items() if isinstance(v, float)})
        # Per-fold metrics as plain summary values: a wandb.Table is an artifact, whose record carries its
        # local staging path (under the user's home).
        for fold in result.folds[["fold", *METRICS]].to_dict("records"):
            run.summary.update({f"fold{int(fold['fold'])}/{m}": float(fold[m]) for m in METRICS})
        run.finish()
    # The loss curves and out-of-fold predictions travel as the trial's final checkpoint: Tune persists
    # checkpoints to the experiment's storage (local or cloud), whereas files left in the trial's working
    # folder are not synced when actors are reused.
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in (("losses", result.losses), ("predictions", result.predictions)):
            frame.to_csv(Path(folder) / f"{name}.csv", index=False)
        (Path(folder) / FINAL_FILE).write_text(json.dumps(final))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))
