"""Weights & Biases tracking of trials, through Ray's ``setup_wandb`` integration.

One W&B run per trial, grouped by ``<study>/<configuration>`` with the model as ``job_type``. Offline by
default (runs are written under the experiment folder, one folder per trial, ``wandb/<trial>/wandb/
offline-run-*``, and can be synced later with ``wandb sync``); online only when asked; ``off`` disables
tracking. A trial that starts again (the study resumed after an interruption, or Tune retrying it) replaces
its earlier offline run, so a trial is one run however often it started; a trial resumed from a checkpoint
logs the epochs before it again from the checkpoint's loss history (:mod:`mmt_tune.study.trainable`).

Privacy: a run receives the trial's hyperparameters, per-epoch fold-mean losses and validation AUC, and the
final cross-validated and per-fold metrics, nothing else. W&B's system metadata (program path, command
line, working directory, host, git state, pip freeze), system statistics, code saving and console capture
are switched off, and the host and user names W&B writes into each run record anyway are replaced, because
they can carry file paths and other identifying context. No W&B Table or other artifact is logged: an artifact
records its local staging path, which lies under the user's home. Ray's
``WandbLoggerCallback`` is not used: its logging actor writes the trial's local path into every run's config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wandb

MODES = ("off", "offline", "online")


@dataclass(frozen=True)
class Tracking:
    mode: str = "offline"
    project: str = "mmt-tune"
    study: str = "study"
    dir: str | None = None  # where offline run folders are written (W&B needs it for complete run files)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


def privacy_settings() -> wandb.Settings:
    """wandb settings that keep machine and file-system context out of a run."""
    import wandb

    return wandb.Settings(
        x_disable_meta=True,
        x_disable_stats=True,
        x_disable_machine_info=True,
        x_save_requirements=False,
        disable_code=True,
        disable_git=True,
        save_code=False,
        console="off",
        silent=True,
        # Written into every run record (the .wandb file `wandb sync` uploads) even with the metadata off.
        host=MASKED,
        username=MASKED,
    )


#: What W&B records instead of this machine's host and user name.
MASKED = "masked"


def start_trial_run(
    tracking: Tracking, hyperparameters: dict, configuration: str, model: str, member: str | None = None
) -> wandb.Run | None:
    """Open this trial's W&B run (inside a Tune trial), or return None when tracking is off. ``member``:
    the id of one trial of a pack (``<tune trial>-<j>``), which gets its own run."""
    if not tracking.enabled:
        return None
    from ray.air.integrations.wandb import setup_wandb

    os.environ["WANDB_MODE"] = tracking.mode
    os.environ.setdefault("WANDB_SILENT", "true")
    folder = trial_folder(tracking, member)
    return setup_wandb(
        config=hyperparameters,
        project=tracking.project,
        group=f"{tracking.study}/{configuration}",
        job_type=model,
        dir=folder,
        mode=tracking.mode,
        settings=privacy_settings(),
        **({"id": member, "name": member} if member else {}),
    )


def trial_folder(tracking: Tracking, member: str | None = None) -> str | None:
    """This trial's own W&B folder under ``tracking.dir`` (named by the Tune trial, or the pack member),
    emptied first: an earlier start of the same trial left a run there that this one replaces. Each trial
    having its own folder also keeps concurrent trials off each other's W&B bookkeeping files."""
    import shutil

    if not tracking.dir:
        return None
    from ray import tune

    name = member or tune.get_context().get_trial_id() or "run"
    folder = os.path.join(tracking.dir, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    return folder
