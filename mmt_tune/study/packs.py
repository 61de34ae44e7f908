"""A Tune trial that trains a pack of a configuration's trials as one model (``--pack-trials B``).

The searcher (:class:`mmt_tune.study.search.PerConfigurationSearch`) asks the configuration's Optuna study
for B trials at once and hands them over as ``config["pack"]``; here they train as one packed model
(:func:`mmt_tune.training.trial_packs.train_trials`: B x folds slices, the in-fold preprocessing fitted once), each with its
own W&B run; the final report carries every member's metrics (``members``), which the searcher tells to
Optuna one by one and the trials table expands into one trial per member (``<tune trial>-<j>``). A member's
numbers are those it would get alone. A pack reports at its checkpoints (every ``checkpoint_every`` epochs:
the packed training state of all members, which a resumed study continues from, as a single trial does) and
at its end; it has no per-member intermediate results, so no ASHA.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from mmt_tune.config import TrainConfig
from mmt_tune.metrics import METRICS

if TYPE_CHECKING:
    from mmt_tune.study.options import TrialSettings
    from mmt_tune.study.tracking import Tracking


def member_id(trial_id: str, j: int) -> str:
    return f"{trial_id}-{j}"


def run_pack(config: dict, table: pd.DataFrame, settings: TrialSettings, tracking: Tracking | None) -> None:
    """Train the pack (from its checkpoint when resumed), checkpoint it every ``checkpoint_every`` epochs, log
    each member to W&B, and report the members' final metrics."""
    import tempfile
    from pathlib import Path

    import ray
    from ray import tune

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
    from mmt_tune.training.trial_packs import train_trials

    checkpoint = tune.get_checkpoint()
    if report_again(checkpoint):
        return
    resume = resume_state(checkpoint)
    base = train_options(config)
    configs = [
        TrainConfig.from_options(
            config["model"],
            config["present"],
            {**base, **params},
            modalities=settings.modalities,
            seed=settings.seed,
            device=settings.device,
            compile=settings.compile,
        )
        for params in config["pack"]
    ]
    every = settings.checkpoint_every

    def on_epoch(epoch: int, info) -> None:
        if checkpoint_epoch(epoch, every, configs[0].epochs):
            # Tune's view of the pack's progress: the mean validation AUC over every member's folds.
            report_checkpoint({"epoch": epoch, "auc": epoch_auc(info)}, info.state())

    results = train_trials(table, configs, on_epoch=on_epoch, resume=resume)
    members = [final_report(result) for result in results]
    trial_id = tune.get_context().get_trial_id()
    if tracking is not None and tracking.enabled:
        for j, (params, result, final) in enumerate(zip(config["pack"], results, members, strict=True)):
            _log_member(tracking, config, {**base, **params}, member_id(trial_id, j), result, final)
    final = {
        "done": True,
        "epoch": max(m["epoch"] for m in members),
        "auc": max(m["auc"] for m in members),  # Tune's own view of the pack; Optuna gets every member
        "members": json.dumps(members),
        "node_id": ray.get_runtime_context().get_node_id(),
    }
    with tempfile.TemporaryDirectory() as folder:
        for name in ("losses", "predictions"):
            frames = [getattr(r, name).assign(member=j) for j, r in enumerate(results)]
            pd.concat(frames, ignore_index=True).to_csv(Path(folder) / f"{name}.csv", index=False)
        (Path(folder) / FINAL_FILE).write_text(json.dumps(final))
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))


def _log_member(tracking: Tracking, config: dict, options: dict, run_id: str, result, final: dict) -> None:
    """One W&B run per member: its hyperparameters, fold-mean losses per epoch, and its final metrics."""
    from mmt_tune.study.tracking import start_trial_run

    hyperparameters = {
        **options,
        "configuration": config["configuration"],
        "model": config["model"],
        "present": "+".join(config["present"]),
    }
    run = start_trial_run(tracking, hyperparameters, config["configuration"], config["model"], member=run_id)
    if run is None:
        return
    losses = result.losses.drop(columns=["fold"]).groupby(["epoch", "split"]).mean(numeric_only=True)
    for epoch, rows in losses.groupby(level="epoch"):
        metrics = {"epoch": int(epoch)}
        for (_, split), values in rows.iterrows():
            metrics.update({f"{split}/{t}": float(v) for t, v in values.items() if pd.notna(v)})
        run.log(metrics, step=int(epoch))
    run.summary.update({f"cv/{k}": v for k, v in final.items() if isinstance(v, float)})
    for fold in result.folds[["fold", *METRICS]].to_dict("records"):
        run.summary.update({f"fold{int(fold['fold'])}/{m}": float(fold[m]) for m in METRICS})
    run.finish()
