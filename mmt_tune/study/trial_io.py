"""What a trial hands to Tune and reads back: its options, its final report, and a finished trial's final
checkpoint reported again on resume. Shared by single trials (:mod:`mmt_tune.study.trainable`) and packs
(:mod:`mmt_tune.study.packs`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mmt_tune.metrics import METRICS
from mmt_tune.records import TRIAL_KEYS
from mmt_tune.training.crossval import TrainResult

if TYPE_CHECKING:
    import torch

    from mmt_tune.training.trainer import EpochInfo


def train_options(config: dict) -> dict:
    """The trainer options of a trial config (everything but the configuration's identity)."""
    return {key: value for key, value in config.items() if key not in TRIAL_KEYS}


#: In a trial's final checkpoint (beside losses.csv and predictions.csv): its final report, so a resumed study
#: that restores an already finished trial reports it again instead of training it anew.
FINAL_FILE = "final.json"


def final_report(result: TrainResult) -> dict:
    """The trial's last report: every metric's mean and std over folds (the mean AUC is Tune's objective),
    and the per-fold metrics."""
    final = {
        "epoch": int(result.losses["epoch"].max()) if len(result.losses) else 0,  # baselines: no epochs
        "done": True,
        # A JSON string: Tune's TensorBoard logger only takes numbers and skips strings quietly.
        "fold_metrics": json.dumps(result.folds[["fold", "repeat", *METRICS]].to_dict("records")),
    }
    for metric, (mean, std) in result.summary().items():
        final[metric] = mean
        final[f"{metric}_std"] = std
    return final


STATE_FILE = "state.pt"


def checkpoint_epoch(epoch: int, every: int, epochs: int) -> bool:
    """Whether ``epoch`` ends with a checkpoint: every ``every`` epochs (0: never), not after the last one
    (the final report carries the results instead)."""
    return every > 0 and (epoch + 1) % every == 0 and epoch + 1 < epochs


def report_checkpoint(metrics: dict, state: dict) -> None:
    """Report ``metrics`` to Tune with the packed training state a resumed trial (or pack) continues from."""
    import tempfile
    from pathlib import Path

    import torch
    from ray import tune

    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, Path(folder) / STATE_FILE)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def resume_state(checkpoint: object) -> dict | None:
    """The packed training state in a trial's last checkpoint, or None when it starts afresh."""
    from pathlib import Path

    import torch

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)


def report_again(checkpoint: object) -> bool:
    """If the trial had finished but the study was killed before Tune's saved state said so, report the
    same final result again (instead of failing on a checkpoint without training state); True when done."""
    import tempfile
    from pathlib import Path

    from ray import tune

    if checkpoint is None:
        return False
    with checkpoint.as_directory() as folder:
        if not (Path(folder) / FINAL_FILE).is_file():
            return False
        final = json.loads((Path(folder) / FINAL_FILE).read_text())
        with tempfile.TemporaryDirectory() as again:
            for item in Path(folder).iterdir():
                (Path(again) / item.name).write_bytes(item.read_bytes())
            tune.report(final, checkpoint=tune.Checkpoint.from_directory(again))
    return True


def epoch_auc(info: EpochInfo) -> float:
    """Mean over folds of the validation AUC of one epoch, on each fold's real rows (packed folds are padded
    to the longest; padded rows are not patients). Computed on the device for all folds at once
    (:func:`slice_auc`); one number comes back to the host."""
    import torch

    counts = torch.tensor(info.val_counts, device=info.val_labels.device)
    real = torch.arange(info.val_labels.shape[1], device=counts.device)[None, :] < counts[:, None]
    aucs = slice_auc(info.val_probabilities, info.val_labels, real)
    return float(torch.nanmean(aucs))


def slice_auc(scores: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The ROC AUC of every slice ``[S, rows]`` over its ``real`` rows: the share of (positive, negative)
    pairs ranked right, ties counting half (the Mann-Whitney statistic, what scikit-learn computes); NaN for
    a slice with one class. In float64, on the scores' device."""
    import torch

    s = scores.double()
    pos = (labels > 0.5) & real
    neg = (labels <= 0.5) & real
    above = (s[:, :, None] > s[:, None, :]).double() + 0.5 * (s[:, :, None] == s[:, None, :]).double()
    pairs = pos[:, :, None] & neg[:, None, :]
    n = pairs.sum((1, 2)).double()
    return torch.where(n > 0, (above * pairs).sum((1, 2)) / n.clamp(min=1), torch.full_like(n, float("nan")))
