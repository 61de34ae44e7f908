"""Classification metrics of the paper (eqs. 6-8), as pure functions of (y_true, y_score).

The positive class is SCLC (label 1); a row is predicted positive when its positive-class probability is at
least ``threshold`` (0.5). Undefined ratios (no predicted positives for precision, a class absent for AUC)
are NaN rather than a silent 0, so that a degenerate fold shows up in the tables.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

METRICS = ("accuracy", "auc", "precision", "sensitivity", "specificity")


def _confusion(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    y_true = np.asarray(y_true).astype(int)
    predicted = (np.asarray(y_score) >= threshold).astype(int)
    tp = int(np.sum((predicted == 1) & (y_true == 1)))
    tn = int(np.sum((predicted == 0) & (y_true == 0)))
    fp = int(np.sum((predicted == 1) & (y_true == 0)))
    fn = int(np.sum((predicted == 0) & (y_true == 1)))
    return tp, tn, fp, fn


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def accuracy(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    tp, tn, fp, fn = _confusion(y_true, y_score, threshold)
    return _ratio(tp + tn, tp + tn + fp + fn)


def precision(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    tp, _, fp, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fp)


def sensitivity(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    """Recall of the positive class (SCLC)."""
    tp, _, _, fn = _confusion(y_true, y_score, threshold)
    return _ratio(tp, tp + fn)


def specificity(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> float:
    _, tn, fp, _ = _confusion(y_true, y_score, threshold)
    return _ratio(tn, tn + fp)


def auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve (threshold-free); NaN when only one class is present.

    The Mann-Whitney form: the share of (positive, negative) pairs the score orders correctly, ties counting
    one half, from midranks. The same number as scikit-learn's ``roc_auc_score`` (to the last bit or two:
    one rounding here instead of a trapezoid sum), without its per-call input validation, which a bootstrap
    of thousands of resamples would pay each time. A NaN score is an error, as there.
    """
    from scipy.stats import rankdata

    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(y_score, dtype=float)
    if np.isnan(scores).any():
        raise ValueError("AUC: the scores contain NaN")
    positives = int(y_true.sum())
    negatives = len(y_true) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = rankdata(scores)[y_true == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def brier(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Brier score: the mean squared difference of probability and label (0 is perfect)."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_score, dtype=float)
    return float(np.mean((p - y) ** 2))


def all_metrics(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    return {
        "accuracy": accuracy(y_true, y_score, threshold),
        "auc": auc(y_true, y_score),
        "precision": precision(y_true, y_score, threshold),
        "sensitivity": sensitivity(y_true, y_score, threshold),
        "specificity": specificity(y_true, y_score, threshold),
    }


#: metric name -> ``f(y_true, y_score)`` (threshold 0.5 where one is needed)
METRIC_FUNCTIONS = {
    "accuracy": accuracy,
    "auc": auc,
    "precision": precision,
    "sensitivity": sensitivity,
    "specificity": specificity,
}


def mean_std(mean: float, std: float, digits: int = 3, missing: str = "—") -> str:
    """``0.877 ± 0.033``: how every table and summary prints a metric over folds (``missing`` when the mean
    is undefined, the mean alone when the spread is)."""
    import pandas as pd

    if pd.isna(mean):
        return missing
    if pd.isna(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_line(summary: dict[str, tuple[float, float]]) -> str:
    """``auc 0.812 ± 0.041, accuracy ...``: mean ± std over folds of each metric, on one line."""
    return ", ".join(f"{metric} {mean_std(mean, std)}" for metric, (mean, std) in summary.items())
