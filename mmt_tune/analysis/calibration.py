"""Calibration and clinical usefulness of the reported probabilities, from the out-of-fold predictions.

Per best trial and fold (of each repeat), on that fold's validation rows:

- **Brier score**: mean squared difference of probability and label (0 is perfect; always predicting the
  prevalence p scores p(1 - p)).
- **Log loss**: mean negative log-likelihood (probabilities clipped to [1e-15, 1 - 1e-15]); compared with
  the log loss of always predicting the study's prevalence on the same rows.
- **Calibration slope and intercept** (Van Calster et al. 2019): the slope is the coefficient of
  ``logit(p)`` in a logistic regression of the label on it (1 is ideal; below 1, probabilities too extreme);
  the intercept is calibration-in-the-large, the intercept of that regression with ``logit(p)`` as an
  offset (0 is ideal; below 0, probabilities too high). Both by Newton's method, unpenalised; a fold with
  one class, or whose labels ``logit(p)`` separates perfectly, has none (NaN).

These are summarised over folds like every other metric (mean, std, corrected resampled t interval;
:mod:`mmt_tune.analysis.metrics`). :func:`reliability` gives the fold-averaged reliability curve and
:func:`decision_curve` the net benefit (Vickers and Elkin 2006) over threshold probabilities, each fold
separately and then averaged, as Table 2 averages folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

#: Calibration scores per fold, in Table 2's order, with their column headings.
CALIBRATION = {
    "brier": "Brier",
    "log_loss": "Log loss",
    "cal_slope": "Cal. slope",
    "cal_intercept": "Cal. intercept",
}
EPS = 1e-15
THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)
BINS = np.linspace(0.0, 1.0, 11)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _newton(x: np.ndarray, y: np.ndarray, offset: np.ndarray, iterations: int = 100) -> np.ndarray | None:
    """Maximum-likelihood coefficients of ``logit P(y=1) = offset + x @ b``; None without convergence (a
    perfectly separated fold)."""
    b = np.zeros(x.shape[1])
    for _ in range(iterations):
        eta = offset + x @ b
        mu = expit(eta)
        w = mu * (1 - mu)
        hessian = x.T @ (x * w[:, None])
        try:
            step = np.linalg.solve(hessian, x.T @ (y - mu))
        except np.linalg.LinAlgError:
            return None
        b = b + step
        if np.max(np.abs(step)) < 1e-10:
            return b if np.all(np.abs(b) < 1e3) else None
    return None


def calibration_line(labels: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    """(intercept, slope): calibration-in-the-large and the calibration slope; NaN where undefined."""
    y = np.asarray(labels, dtype=float)
    if len(np.unique(y)) < 2:
        return np.nan, np.nan
    z = logit(probabilities)
    ones = np.ones((len(y), 1))
    fitted = _newton(np.column_stack([ones, z]), y, np.zeros(len(y)))
    slope = float(fitted[1]) if fitted is not None else np.nan
    large = _newton(ones, y, z)
    intercept = float(large[0]) if large is not None else np.nan
    return intercept, slope


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fold_scores(labels: np.ndarray, probabilities: np.ndarray, prevalence: float) -> dict[str, float]:
    """One fold's calibration scores, and the Brier score and log loss of always predicting ``prevalence``."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    intercept, slope = calibration_line(y, p)
    constant = np.full(len(y), prevalence)
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": log_loss(y, p),
        "cal_slope": slope,
        "cal_intercept": intercept,
        "brier_prevalence": float(np.mean((constant - y) ** 2)),
        "log_loss_prevalence": log_loss(y, constant),
    }


def _usable(predictions: pd.DataFrame | None) -> bool:
    """Whether out-of-fold predictions are there, with the columns the scores need."""
    needed = {"model", "present", "trial_id", "fold", "label", "probability"}
    return predictions is not None and not predictions.empty and needed <= set(predictions.columns)


def trial_predictions(predictions: pd.DataFrame, model: str, present: str, trial_id: object) -> pd.DataFrame:
    """The out-of-fold predictions of one trial (all folds and repeats), in a fixed order (fold, then table
    row), so that every score is the same however the rows were stored."""
    oof = predictions[
        (predictions["model"] == model)
        & (predictions["present"] == present)
        & (predictions["trial_id"].astype(str) == str(trial_id))
    ]
    keys = [c for c in ("fold", "row") if c in oof.columns]
    return oof.sort_values(keys, kind="stable") if keys else oof


def calibration_folds(best: pd.DataFrame, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """Per best trial and fold: :func:`fold_scores` (the prevalence: of the trial's predicted rows, i.e. the
    study's table)."""
    columns = [
        "model",
        "present",
        "trial_id",
        "fold",
        *CALIBRATION,
        "brier_prevalence",
        "log_loss_prevalence",
    ]
    if not _usable(predictions):
        return pd.DataFrame(columns=columns)
    rows = []
    for _, row in best.dropna(subset=["trial_id"]).iterrows():
        oof = trial_predictions(predictions, row["model"], row["present"], row["trial_id"])
        if oof.empty:
            continue
        # every row is predicted once per repeat: the first repeat's rows are the table's
        first = oof[oof["repeat"] == 0] if "repeat" in oof.columns else oof
        prevalence = float(first["label"].mean())
        for fold, group in oof.groupby("fold", sort=True):
            scores = fold_scores(group["label"].to_numpy(), group["probability"].to_numpy(), prevalence)
            rows.append(
                {
                    "model": row["model"],
                    "present": row["present"],
                    "trial_id": str(row["trial_id"]),
                    "fold": int(fold),
                    **scores,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def near_constant_share(predictions: pd.DataFrame, model: str, present: str, trial_id: object) -> float:
    """Share of a trial's out-of-fold probabilities within 0.05 of the prevalence of its rows."""
    oof = trial_predictions(predictions, model, present, trial_id)
    if oof.empty:
        return np.nan
    prevalence = oof["label"].mean()
    return float((np.abs(oof["probability"] - prevalence) <= 0.05).mean())


def reliability(oof: pd.DataFrame) -> pd.DataFrame:
    """The fold-averaged reliability curve of one trial: per bin of width 0.1, the mean predicted
    probability and the observed fraction of positives of each fold, averaged over the folds with rows in
    that bin (weighted by their rows)."""
    frame = oof.assign(bin=np.clip(np.digitize(oof["probability"], BINS[1:-1]), 0, len(BINS) - 2))
    per_fold = frame.groupby(["fold", "bin"]).agg(
        predicted=("probability", "mean"), observed=("label", "mean"), n=("label", "size")
    )
    per_fold = per_fold.reset_index()
    weights = per_fold["n"]
    out = (
        per_fold.assign(wp=per_fold["predicted"] * weights, wo=per_fold["observed"] * weights)
        .groupby("bin")
        .agg(wp=("wp", "sum"), wo=("wo", "sum"), n=("n", "sum"), folds=("fold", "nunique"))
    )
    return pd.DataFrame(
        {
            "bin": out.index,
            "predicted": out["wp"] / out["n"],
            "observed": out["wo"] / out["n"],
            "n": out["n"],
            "folds": out["folds"],
        }
    ).reset_index(drop=True)


def net_benefit(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray = THRESHOLDS
) -> np.ndarray:
    """Net benefit of treating when the probability reaches each threshold t: TP/n - FP/n * t/(1 - t)."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    treat = p[None, :] >= thresholds[:, None]
    tp = (treat & (y[None, :] == 1)).sum(1)
    fp = (treat & (y[None, :] == 0)).sum(1)
    return tp / len(y) - fp / len(y) * thresholds / (1 - thresholds)


def decision_curve(oof: pd.DataFrame, thresholds: np.ndarray = THRESHOLDS) -> pd.DataFrame:
    """Net benefit of one trial over ``thresholds`` (each fold's, averaged over folds), with treat-all (the
    same average) and treat-none (0)."""
    model, treat_all = [], []
    for _, group in oof.groupby("fold", sort=True):
        y = group["label"].to_numpy(int)
        model.append(net_benefit(y, group["probability"].to_numpy(float), thresholds))
        treat_all.append(net_benefit(y, np.ones(len(y)), thresholds))
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "net_benefit": np.mean(model, axis=0),
            "treat_all": np.mean(treat_all, axis=0),
            "treat_none": 0.0,
            "folds": len(model),
        }
    )


def family_best(best: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The best configuration of each model (family) by mean ``objective``, in Table 2's order."""
    ranked = best.dropna(subset=["trial_id", f"{objective}_mean"])
    ranked = ranked.sort_values(f"{objective}_mean", ascending=False, kind="stable")
    chosen = ranked.drop_duplicates("model")
    return best.loc[best.index.isin(chosen.index)]


def family_curves(
    best: pd.DataFrame, predictions: pd.DataFrame | None, objective: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reliability, decision curve) of each family's best configuration, from its out-of-fold predictions;
    each row names the model, present modalities and trial (no row-level data, no identifiers)."""
    reliabilities, decisions = [], []
    if not _usable(predictions):
        return pd.DataFrame(), pd.DataFrame()
    for _, row in family_best(best, objective).iterrows():
        oof = trial_predictions(predictions, row["model"], row["present"], row["trial_id"])
        if oof.empty or oof["label"].nunique() < 2:
            continue
        keys = {"model": row["model"], "present": row["present"], "trial_id": str(row["trial_id"])}
        reliabilities.append(reliability(oof).assign(**keys))
        decisions.append(decision_curve(oof).assign(**keys))
    if not reliabilities:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(reliabilities, ignore_index=True), pd.concat(decisions, ignore_index=True)
