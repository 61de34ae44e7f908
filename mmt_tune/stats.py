"""Intervals and tests for cross-validated and held-out metrics (docs/method.md "Honest estimates").

- :func:`corrected_t_interval` / :func:`corrected_t_test`: the corrected resampled t of Nadeau and Bengio
  (2003) over the J = folds x repeats scores of a (repeated) k-fold CV. CV training sets overlap, so fold
  scores are positively correlated and the plain t interval is too narrow; the correction replaces the
  variance factor 1/J by 1/J + n_test/n_train. This is what Table 2's intervals and the comparisons use:
  it covers the variation of the *training* sets too, which a bootstrap of one set of out-of-fold
  predictions does not.
- :func:`bootstrap_interval`: percentile bootstrap (``scipy.stats.bootstrap``, rows resampled with their
  labels) of a metric on one set of predictions: held-out and external validation, where the model is fixed.
- :func:`delong_test`: DeLong's test of two correlated AUCs on the same rows (Sun and Xu's fast algorithm).
- :func:`holm`: Holm's step-down adjustment of a family of p-values.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

CONFIDENCE = 0.95


def corrected_t_interval(
    scores: ArrayLike, test_fraction: float, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Confidence interval of the mean of J resampled scores (folds x repeats), Nadeau-Bengio corrected.

    ``test_fraction`` = n_test / n_train of one split (1 / (k - 1) for k-fold CV). NaN when J < 2.
    """
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return (np.nan, np.nan)
    se = np.sqrt((1.0 / len(x) + test_fraction) * x.var(ddof=1))
    half = stats.t.ppf(0.5 + confidence / 2, df=len(x) - 1) * se
    return (float(x.mean() - half), float(x.mean() + half))


def clipped(interval: tuple[float, float], low: float = 0.0, high: float = 1.0) -> tuple[float, float]:
    """An interval of a bounded metric (AUC, accuracy, ...) cut to its range, NaN kept."""
    return tuple(float(np.clip(v, low, high)) if not np.isnan(v) else v for v in interval)


def corrected_t_test(differences: ArrayLike, test_fraction: float) -> float:
    """Two-sided p-value of the corrected resampled t-test that the mean paired difference is 0 (NaN with
    fewer than 2 scores).

    A difference that is the same in every fold has no variance, so t is infinite (or 0/0 when the
    difference is 0): the p-value is then its limit, 0 for a constant non-zero difference and 1 for none at
    all, so the comparison stays in Holm's family (:func:`constant_difference` lets a table say so)."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return np.nan
    if constant_difference(d):
        return 1.0 if np.allclose(d, 0.0) else 0.0
    t = d.mean() / np.sqrt((1.0 / len(d) + test_fraction) * d.var(ddof=1))
    return float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def constant_difference(differences: ArrayLike) -> bool:
    """Whether paired differences (NaN left out, at least 2) are the same in every fold, up to rounding."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    return len(d) >= 2 and bool(np.allclose(d, d[0], rtol=0.0, atol=1e-12))


def bootstrap_interval(
    y_true: ArrayLike,
    y_score: ArrayLike,
    metric: Callable[[np.ndarray, np.ndarray], float],
    confidence: float = CONFIDENCE,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_score)``, resampling rows (paired)."""
    from scipy import stats

    y, p = np.asarray(y_true, dtype=float), np.asarray(y_score, dtype=float)
    if len(y) < 2 or len(np.unique(y)) < 2:
        return (np.nan, np.nan)

    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        value = metric(a, b)
        return 0.5 if np.isnan(value) else value  # a one-class resample (rare): uninformative, not NaN

    result = stats.bootstrap(
        (y, p),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _midranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def delong_covariance(y_true: ArrayLike, scores: Sequence[ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several scorers on the same rows and DeLong's covariance matrix of them."""
    y = np.asarray(y_true).astype(int)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    positives, negatives = s[:, y == 1], s[:, y == 0]
    m, n = positives.shape[1], negatives.shape[1]
    if m < 1 or n < 1:
        raise ValueError("DeLong's test needs both classes")
    aucs, v10, v01 = [], [], []
    for pos, neg in zip(positives, negatives, strict=True):
        both = _midranks(np.concatenate([pos, neg]))
        rank_pos, rank_neg = both[:m], both[m:]
        within_pos, within_neg = _midranks(pos), _midranks(neg)
        aucs.append((rank_pos.sum() - m * (m + 1) / 2) / (m * n))
        v10.append((rank_pos - within_pos) / n)  # each positive's share of negatives it outranks
        v01.append(1.0 - (rank_neg - within_neg) / m)  # each negative's share of positives above it
    s10 = np.atleast_2d(np.cov(np.asarray(v10)))
    s01 = np.atleast_2d(np.cov(np.asarray(v01)))
    return np.asarray(aucs), s10 / m + s01 / n


def delong_defined(y_true: ArrayLike) -> bool:
    """Whether DeLong's variance exists for these labels: at least two cases of each class."""
    counts = np.bincount(np.asarray(y_true).astype(int), minlength=2)
    return bool(counts.min() >= 2)


def delong_test(y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike) -> float:
    """Two-sided p-value of DeLong's test that two AUCs on the same rows are equal.

    NaN when a class has fewer than two cases: DeLong's variance is a sample variance over each class's
    cases, undefined for one (see :func:`delong_defined`)."""
    from scipy import stats

    if not delong_defined(y_true):
        return np.nan
    aucs, cov = delong_covariance(y_true, [score_a, score_b])
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if not variance > 0:
        return np.nan if np.isclose(aucs[0], aucs[1]) else 0.0
    z = (aucs[0] - aucs[1]) / np.sqrt(variance)
    return float(2 * stats.norm.sf(abs(z)))


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count in the family)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted
