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
from typing import TYPE_CHECKING, Any

import pandas as pd

from mmt_tune import models
from mmt_tune.config import TrainConfig
from mmt_tune.metrics import METRICS
from mmt_tune.study.options import TrialSettings
from mmt_tune.study.trial_io import (
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


#: A trial's settings when a study gives none (one CPU, the paper's sequences).
DEFAULT_SETTINGS = TrialSettings()


def run_trial(
    config: dict,
    table: pd.DataFrame,
    settings: TrialSettings = DEFAULT_SETTINGS,
    tracking: Tracking | None = None,
    specs: tuple[models.ModelSpec, ...] = (),
) -> None:
    """Train one trial's configuration and report every epoch, its checkpoints and the final metrics."""
    from ray import tune

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
    checkpoint = tune.get_checkpoint()
    if report_again(checkpoint):
        return
    resume = resume_state(checkpoint)
    run = _open_run(tracking, config, options)
    reporter = EpochReporter(
        run, settings.checkpoint_every, max(1, settings.report_every), train_config.epochs
    )
    reporter.log_restored(resume)
    result = train_configuration(table, train_config, on_epoch=reporter.on_epoch, resume=resume)
    reporter.flush()  # the epochs after the last report, when early stopping ended the trial before its last
    _final_report(result, run)


def _open_run(tracking: Tracking | None, config: dict, options: dict):
    """The trial's W&B run (None without tracking): hyperparameters and the configuration's identity only,
    nothing about the data or this machine."""
    from mmt_tune.study.tracking import start_trial_run

    if tracking is None:
        return None
    hyperparameters = {
        **options,
        "configuration": config["configuration"],
        "model": config["model"],
        "present": "+".join(config["present"]),
    }
    return start_trial_run(tracking, hyperparameters, config["configuration"], config["model"])


class EpochReporter:
    """What a trial reports each epoch: every epoch's fold-mean losses to W&B (kept on the device, fetched in
    one copy per report), and to Tune every ``report_every`` epochs, at checkpoints and at the last epoch."""

    def __init__(self, run: Any, every: int, report_every: int, epochs: int) -> None:
        self.run, self.every, self.report_every, self.epochs = run, every, report_every, epochs
        self.pending: list[tuple[int, torch.Tensor]] = []  # epochs since the last report
        self.names: list[str] = []

    def flush(self, info: EpochInfo | None = None) -> dict:
        """Log the pending epochs to W&B (one host copy); the last one's metrics, with the AUC of ``info``."""
        import torch

        losses = torch.stack([v for _, v in self.pending]).cpu().numpy() if self.pending else []
        metrics: dict = {}
        for (logged, _), values in zip(self.pending, losses, strict=True):
            metrics = {"epoch": logged, **{n: float(v) for n, v in zip(self.names, values, strict=True)}}
            if info is not None and logged == self.pending[-1][0]:
                metrics["auc"] = epoch_auc(info)
            if self.run is not None:
                self.run.log(metrics, step=logged)
        self.pending.clear()
        return metrics

    def log_restored(self, resume: dict | None) -> None:
        """A trial resumed from a checkpoint: log the epochs before it to W&B again, from the checkpoint's
        loss history (the same fold means as when they were first logged; the run that logged them was
        replaced, :func:`mmt_tune.study.tracking.trial_folder`). Their validation AUC is not in the
        checkpoint: those epochs have losses only."""
        if self.run is None or not resume:
            return
        names = [f"train/{t}" for t in resume["terms"]] + [f"val/{t}" for t in resume["terms"]]
        for epoch, (train, val) in enumerate(
            zip(resume["train_history"], resume["val_history"], strict=True)
        ):
            values = torch_cat_means(train, val)
            self.run.log({"epoch": epoch, **dict(zip(names, values, strict=True))}, step=epoch)

    def on_epoch(self, epoch: int, info: EpochInfo) -> None:
        import torch
        from ray import tune

        self.names[:] = [f"train/{t}" for t in info.terms] + [f"val/{t}" for t in info.terms]
        self.pending.append((epoch, torch.cat([info.train.mean(0), info.val.mean(0)])))
        checkpointing = checkpoint_epoch(epoch, self.every, self.epochs)
        if not (checkpointing or (epoch + 1) % self.report_every == 0 or epoch + 1 == self.epochs):
            return  # nothing leaves the device this epoch
        metrics = self.flush(info)
        if checkpointing:
            report_checkpoint(metrics, info.state())
        else:
            tune.report(metrics)


def torch_cat_means(train: torch.Tensor, val: torch.Tensor) -> list[float]:
    """One epoch's fold-mean training and validation losses, as :meth:`EpochReporter.on_epoch` logs them."""
    import torch

    return [float(v) for v in torch.cat([train.mean(0), val.mean(0)]).cpu().numpy()]


def _final_report(result, run) -> None:
    """The final metrics to W&B and Tune; the loss curves and out-of-fold predictions as the trial's final
    checkpoint: Tune persists checkpoints to the experiment's storage (local or cloud), whereas files left in
    the trial's working folder are not synced when actors are reused."""
    import tempfile
    from pathlib import Path

    import ray
    from ray import tune

    final = {**final_report(result), "node_id": ray.get_runtime_context().get_node_id()}
    if run is not None:
        run.summary.update({f"cv/{k}": v for k, v in final.items() if isinstance(v, float)})
        # Per-fold metrics as plain summary values: a wandb.Table is an artifact, whose record carries its
        # local staging path (under the user's home).
        for fold in result.folds[["fold", *METRICS]].to_dict("records"):
            run.summary.update({f"fold{int(fold['fold'])}/{m}": float(fold[m]) for m in METRICS})
        run.finish()
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in (("losses", result.losses), ("predictions", result.predictions)):
            frame.to_csv(Path(folder) / f"{name}.csv", index=False)
        (Path(folder) / FINAL_FILE).write_text(json.dumps(final))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))
