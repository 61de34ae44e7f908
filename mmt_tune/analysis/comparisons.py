"""Which configuration is better, with tests that respect how CV scores are made (docs/method.md).

Pairs: every deep configuration vs the better baseline on the same present modalities, MMT vs MFN-VAE on
the same subset, and every deep configuration vs the full-modality MFN-VAE (the paper's headline). All
trials of a study share its folds (fixed by the seed), so each pair's fold scores are paired.

Per pair and metric: the difference of the means over folds x repeats; the corrected resampled t-test of
Nadeau and Bengio over the paired fold differences (the primary p: CV training sets overlap, which the
plain paired t ignores); for AUC also DeLong's test on the two configurations' out-of-fold predictions of
the first repeat (the same rows, pooled over folds); then Holm's adjustment across the comparisons of
each metric (``p_holm``, ``p_delong_holm``). The plain paired t and Wilcoxon p-values stay in the CSV.

DeLong's test compares the AUCs of the pooled predictions, which are not Table 2's mean fold AUCs (pooling
mixes the folds' probability scales; the two differences can even have opposite signs), so the CSV gives
those pooled AUCs beside its p-value (``left_pooled_auc``, ``right_pooled_auc``). The primary test, the one
the tables and notes use, is the corrected resampled t-test on the fold AUCs Table 2 reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune import models
from mmt_tune.analysis.results import baseline_models, model_label, recorded_option, table_order
from mmt_tune.metrics import METRICS
from mmt_tune.records import CONFIG_PREFIX
from mmt_tune.stats import constant_difference, corrected_t_test, delong_defined, delong_test, holm

if TYPE_CHECKING:
    from mmt_tune.analysis.types import MetricsResult

#: The paper's headline pair: its one-missing proposed model and the reference it is compared with.
HEADLINE_MODEL, REFERENCE = models.HEADLINE


def name(configuration: tuple[str, str]) -> str:
    model, present = configuration
    return f"{model_label(model)} {present}"


def split_fraction(rows: pd.DataFrame) -> float:
    """n_test / n_train of one CV split of these fold rows: 1 / (k - 1) for k folds (default 5)."""
    return 1.0 / (recorded_option(rows, "folds", 5) - 1)


def best_baselines(best: pd.DataFrame, objective: str) -> dict[str, tuple[str, str]]:
    """Present modalities -> the (model, present) of the baseline with the highest mean ``objective``."""
    rows = best[best["model"].isin(baseline_models())].dropna(subset=["trial_id", f"{objective}_mean"])
    chosen = {}
    for present, group in rows.groupby("present", sort=False):
        ranked = group.sort_values([f"{objective}_mean", "model"], ascending=[False, True], kind="stable")
        chosen[present] = (ranked.iloc[0]["model"], present)
    return chosen


def baseline_notes(best: pd.DataFrame, comparisons: pd.DataFrame, objective: str) -> list[str]:
    """How each deep configuration stands against the better baseline on the same sequences, on
    ``objective``: "beats" or "below" only where the corrected resampled t-test, Holm-adjusted across the
    comparisons, gives p < 0.05; otherwise "level with" and its p. Deep configurations without a baseline
    on their sequences are listed as not compared."""
    baselines = best_baselines(best, objective)
    groups: dict[str, list[str]] = {"beats": [], "below": [], "level": [], "alone": []}
    for model, present, value in zip(best["model"], best["present"], best[f"{objective}_mean"], strict=True):
        if model in baseline_models() or pd.isna(value):
            continue
        if present not in baselines:
            groups["alone"].append(name((model, present)))
            continue
        reference = baselines[present]
        match = (
            comparisons[
                (comparisons["left"] == name((model, present)))
                & (comparisons["right"] == name(reference))
                & (comparisons["metric"] == objective)
            ]
            if not comparisons.empty
            else comparisons
        )
        if match.empty:
            groups["alone"].append(name((model, present)))
            continue
        difference, p = float(match["difference"].iloc[0]), float(match["p_holm"].iloc[0])
        text = f"{name((model, present))} {difference:+.3f} vs {name(reference)} (Holm p = {p:.3f})"
        if pd.isna(p):
            text = f"{name((model, present))} {difference:+.3f} vs {name(reference)} (not testable)"
        groups["beats" if p < 0.05 and difference > 0 else "below" if p < 0.05 else "level"].append(text)
    test = "corrected resampled t-test, Holm-adjusted"
    heads = {
        "beats": f"above its best baseline on the same sequences ({objective}, {test}, p < 0.05)",
        "below": f"below its best baseline on the same sequences ({objective}, {test}, p < 0.05)",
        "level": f"level with its best baseline on the same sequences ({objective}; no difference at p < 0.05, {test})",
        "alone": "no baseline on the same sequences in this study, so not compared with one",
    }
    return [f"{heads[k]}: " + "; ".join(v) for k, v in groups.items() if v]


def pairs_of(best: pd.DataFrame, objective: str, full: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    available = {
        (m, p)
        for m, p, t in zip(best["model"], best["present"], best["trial_id"], strict=True)
        if t is not None and not pd.isna(t)
    }
    ordered = sorted(available, key=table_order)
    deep = [(m, p) for m, p in ordered if m not in baseline_models()]
    baselines = best_baselines(best, objective)
    pairs = [((m, p), baselines[p]) for m, p in deep if p in baselines]
    pairs += [
        ((m, p), (REFERENCE, p))
        for m, p in deep
        if m in models.with_role("proposed") and (REFERENCE, p) in available
    ]
    if (REFERENCE, full) in available:
        pairs += [((m, p), (REFERENCE, full)) for m, p in deep if (m, p) != (REFERENCE, full)]
    return pairs


def compare(
    best: pd.DataFrame,
    folds: pd.DataFrame,
    predictions: pd.DataFrame | None,
    notes: list[str],
    objective: str,
    full: str,
) -> pd.DataFrame:
    """One row per pair x metric: means, difference, folds, and the p-values of the module docstring."""
    trial_of = {(m, p): t for m, p, t in zip(best["model"], best["present"], best["trial_id"], strict=True)}
    rows = []
    for left, right in pairs_of(best, objective, full):
        a, b = _fold_frame(folds, *left), _fold_frame(folds, *right)
        shared = a.index.intersection(b.index)
        if not _same_folds(a, b):
            notes.append(
                f"{name(left)} vs {name(right)}: fold seeds or counts differ, so the folds are not paired"
            )
        fraction = split_fraction(a)
        delong, single, pooled = _delong(predictions, (*left, trial_of[left]), (*right, trial_of[right]))
        if single:
            notes.append(
                f"{name(left)} vs {name(right)}: DeLong's test is undefined (a class has a single case in "
                "the pooled predictions); p_delong is left empty"
            )
        for metric in METRICS:
            x, y = a.loc[shared, metric].to_numpy(float), b.loc[shared, metric].to_numpy(float)
            if constant_difference(x - y) and not np.allclose(x - y, 0.0):
                notes.append(
                    f"{name(left)} vs {name(right)}: the {metric} difference is {(x - y)[~np.isnan(x - y)][0]:+.3f} "
                    "in every fold; its corrected t p-value is the zero-variance limit (0), kept in Holm's family"
                )
            rows.append(
                {
                    "comparison": f"{name(left)} − {name(right)}",
                    "left": name(left),
                    "right": name(right),
                    "metric": metric,
                    "left_mean": float(np.nanmean(a[metric])) if len(a) else np.nan,
                    "right_mean": float(np.nanmean(b[metric])) if len(b) else np.nan,
                    "difference": float(np.nanmean(a[metric]) - np.nanmean(b[metric]))
                    if len(a) and len(b)
                    else np.nan,
                    "n_folds": len(shared),
                    "p_corrected": corrected_t_test(x - y, fraction),
                    "p_delong": delong if metric == "auc" else np.nan,
                    # what DeLong tests: the AUCs of the pooled out-of-fold predictions (first repeat)
                    "left_pooled_auc": pooled[0] if metric == "auc" else np.nan,
                    "right_pooled_auc": pooled[1] if metric == "auc" else np.nan,
                    **_plain_tests(x, y),
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column, adjusted in (("p_corrected", "p_holm"), ("p_delong", "p_delong_holm")):
        frame[adjusted] = frame.groupby("metric")[column].transform(lambda p: holm(p.to_numpy()))
    return frame


def _delong(
    predictions: pd.DataFrame | None, left: tuple, right: tuple
) -> tuple[float, bool, tuple[float, float]]:
    """DeLong's p for two trials' out-of-fold predictions of the first repeat, on the rows both scored;
    whether it is undefined because a class has a single case there; and the two pooled AUCs it compares
    (not Table 2's mean fold AUCs: pooling mixes the folds' probability scales)."""
    from mmt_tune.metrics import auc

    none = (np.nan, np.nan)
    needed = {"model", "present", "trial_id", "row", "label", "probability"}
    if predictions is None or predictions.empty or not needed <= set(predictions.columns):
        return np.nan, False, none

    def rows_of(model: str, present: str, trial: str) -> pd.DataFrame:
        p = predictions[
            (predictions["model"] == model)
            & (predictions["present"] == present)
            & (predictions["trial_id"] == trial)
        ]
        if "repeat" in p.columns:
            p = p[p["repeat"].fillna(0) == 0]
        return p.set_index("row")[["label", "probability"]]

    a, b = rows_of(*left), rows_of(*right)
    both = a.join(b, lsuffix="_a", rsuffix="_b", how="inner").dropna()
    if both.empty or both["label_a"].nunique() < 2:
        return np.nan, False, none
    labels = both["label_a"].to_numpy(int)
    pooled = (auc(labels, both["probability_a"]), auc(labels, both["probability_b"]))
    if not delong_defined(labels):
        return np.nan, True, pooled
    return delong_test(labels, both["probability_a"], both["probability_b"]), False, pooled


def _plain_tests(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Plain paired t-test and Wilcoxon signed-rank p-values over shared folds (NaN when undefined)."""
    from scipy import stats

    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    result = {"p_ttest": np.nan, "p_wilcoxon": np.nan}
    if len(x) < 2 or np.allclose(x - y, (x - y)[0]):
        return result  # too few folds, or a constant difference: the t statistic is undefined
    result["p_ttest"] = float(stats.ttest_rel(x, y).pvalue)
    if np.any(x != y):
        result["p_wilcoxon"] = float(stats.wilcoxon(x, y).pvalue)
    return result


def _fold_frame(folds: pd.DataFrame, model: str, present: str) -> pd.DataFrame:
    rows = folds[(folds["model"] == model) & (folds["present"] == present)]
    return rows.set_index(rows["fold"].astype(int))


def _same_folds(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    for option in ("seed", "folds", "repeats"):
        column = f"{CONFIG_PREFIX}{option}"
        if column in a.columns and column in b.columns and set(a[column].dropna()) != set(b[column].dropna()):
            return False
    return True


def headline(result: MetricsResult, metric: str = "accuracy") -> str | None:
    """The paper's headline comparison (:data:`mmt_tune.models.HEADLINE`): the best configuration of its
    one-missing proposed model (MMT-2M) vs the full-modality reference (MFN-VAE)."""
    best = result.best.dropna(subset=["trial_id"])
    mmt = best[best["model"] == HEADLINE_MODEL]
    full = best[(best["model"] == REFERENCE) & (best["present"] == result.full)]
    if mmt.empty or full.empty:
        return None
    top = mmt.sort_values(f"{result.objective}_mean", ascending=False).iloc[0]
    row = result.comparisons[
        (result.comparisons["left"] == name((HEADLINE_MODEL, top["present"])))
        & (result.comparisons["right"] == name((REFERENCE, result.full)))
        & (result.comparisons["metric"] == metric)
    ].iloc[0]
    p = (
        f", corrected resampled t-test p={row['p_corrected']:.3f} over {row['n_folds']} folds"
        if not pd.isna(row["p_corrected"])
        else ""
    )
    return (
        f"best one-missing {models.ROLE_TITLES['proposed']} ({name((HEADLINE_MODEL, top['present']))}) vs "
        f"full-modality {models.label(REFERENCE)}: {metric} "
        f"{row['left_mean']:.3f} vs {row['right_mean']:.3f} ({row['difference']:+.3f}{p})"
    )
