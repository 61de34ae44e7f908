"""ROC curves consistent with Table 2, and the study's performance summary as JSON.

Pooling out-of-fold probabilities across folds mixes probability scales that differ by fold, so a pooled
curve's AUC is not the mean fold AUC Table 2 reports. Here each fold (of each repeat) gets its own ROC,
interpolated onto a common false-positive-rate grid and averaged vertically (Fawcett 2006, "vertical
averaging"); the band is ± one standard deviation over folds, and the legend's AUC is the mean fold AUC.
``roc.csv`` holds the averaged curves (no row-level data, so no patient identifiers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune.analysis.results import recorded_option
from mmt_tune.metrics import METRICS

if TYPE_CHECKING:
    from mmt_tune.analysis.types import MetricsResult

GRID = np.linspace(0.0, 1.0, 101)


def fold_roc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
    """One fold's ROC as true-positive rates on :data:`GRID` (None when the fold has one class)."""
    from sklearn.metrics import roc_curve

    if len(np.unique(labels)) < 2:
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    curve = np.interp(GRID, fpr, tpr)
    curve[0] = 0.0
    return curve


def roc_table(best: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Per best trial: the vertically averaged ROC on :data:`GRID` with its band and the mean fold AUC."""
    from mmt_tune.metrics import auc

    frames = []
    if not {"model", "present", "trial_id", "fold", "label", "probability"} <= set(predictions.columns):
        return pd.DataFrame()
    for _, row in best.dropna(subset=["trial_id"]).iterrows():
        oof = predictions[
            (predictions["model"] == row["model"])
            & (predictions["present"] == row["present"])
            & (predictions["trial_id"].astype(str) == str(row["trial_id"]))
        ]
        curves, aucs = [], []
        for _, fold in oof.groupby("fold"):
            curve = fold_roc(fold["label"].to_numpy(int), fold["probability"].to_numpy(float))
            if curve is not None:
                curves.append(curve)
                aucs.append(auc(fold["label"], fold["probability"]))
        if not curves:
            continue
        stack = np.vstack(curves)
        mean, std = stack.mean(0), stack.std(0)
        frames.append(
            pd.DataFrame(
                {
                    "model": row["model"],
                    "present": row["present"],
                    "trial_id": str(row["trial_id"]),
                    "fpr": GRID,
                    "tpr_mean": mean,
                    "tpr_std": std,
                    "tpr_low": np.clip(mean - std, 0, 1),
                    "tpr_high": np.clip(mean + std, 0, 1),
                    "n_curves": len(curves),
                    "auc_mean": float(np.mean(aucs)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def performance(result: MetricsResult, data: dict) -> dict:
    """``performance.json``: per configuration every metric's mean, std, 95% CI and number of fold scores,
    with N, prevalence, folds and repeats; held-out and nested estimates when the study has them."""
    configurations = []
    for _, row in result.best.dropna(subset=["trial_id"]).iterrows():
        rows = result.folds[
            (result.folds["model"] == row["model"]) & (result.folds["present"] == row["present"])
        ]
        entry = {
            "model": row["model"],
            "present": row["present"],
            "trial_id": str(row["trial_id"]),
            "trials": int(row["n_trials"]),
            "folds": recorded_option(rows, "folds", 5),
            "repeats": recorded_option(rows, "repeats", 1),
            "metrics": {
                m: {
                    "mean": _number(row[f"{m}_mean"]),
                    "std": _number(row[f"{m}_std"]),
                    "ci95": [_number(row.get(f"{m}_ci_low")), _number(row.get(f"{m}_ci_high"))],
                    "n_scores": int(rows[m].notna().sum()),
                }
                for m in METRICS
            },
        }
        entry["metrics"].update(_calibration_entry(result, row))
        configurations.append(entry)
    n = data.get("rows")
    positives = data.get("positives")
    return {
        "estimate": "best trial per configuration, scored on the folds that chose it (optimistic)",
        "interval": "95% corrected resampled t over folds x repeats (Nadeau and Bengio 2003)",
        "objective": result.objective,
        "n": n,
        "prevalence": positives / n if n and positives is not None else None,
        "positive_class": data.get("positive_class"),
        "configurations": configurations,
    }


def _calibration_entry(result: MetricsResult, row: pd.Series) -> dict:
    """Brier score, log loss, calibration slope and intercept like every metric, and beside the first two
    what always predicting the prevalence scores on the same folds."""
    from mmt_tune.analysis.calibration import CALIBRATION

    frame = result.calibration
    if frame is None or frame.empty:
        return {}
    rows = frame[(frame["model"] == row["model"]) & (frame["present"] == row["present"])]
    entry = {}
    for score in CALIBRATION:
        entry[score] = {
            "mean": _number(row.get(f"{score}_mean")),
            "std": _number(row.get(f"{score}_std")),
            "ci95": [_number(row.get(f"{score}_ci_low")), _number(row.get(f"{score}_ci_high"))],
            "n_scores": int(rows[score].notna().sum()),
        }
    for score in ("brier", "log_loss"):
        entry[score]["prevalence"] = _number(rows[f"{score}_prevalence"].mean())
    return entry


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
