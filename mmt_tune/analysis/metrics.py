"""``python -m analysis.metrics``: aggregated cross-validated metrics (the paper's Table 2) and comparisons.

For each model x modality configuration the best trial by mean validation ``objective`` (default AUC) over
folds (x repeats), reported as mean ± std over its folds for accuracy, AUC, precision, sensitivity and
specificity, with a 95% corrected resampled t interval (Nadeau-Bengio; :mod:`mmt_tune.stats`) for every
metric (the objective's in Table 2, all of them in ``performance.json``). Classical baselines are rows of
the same table. The comparisons (:mod:`mmt_tune.analysis.comparisons`) pair configurations on the shared
folds with the corrected resampled t-test, DeLong's test for AUC, and Holm's adjustment. The ROC figure
averages each configuration's fold curves vertically, so its legend AUC is Table 2's (``roc.csv``).

The std is the population std over folds (ddof=0), as the trainer prints it. Selecting the best of many
trials on the same folds makes its CV estimate optimistic; the tables say so: ``--outer-folds`` (nested CV)
or ``--test-features`` (a held-out table) give the estimate to report in a paper (docs/method.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune.analysis.calibration import CALIBRATION, calibration_folds, family_curves
from mmt_tune.analysis.comparisons import (
    baseline_notes,
    compare,
    headline,
    name,
    split_fraction,
)
from mmt_tune.analysis.completion import completion_notes
from mmt_tune.analysis.nested import nested_frames, nested_note
from mmt_tune.analysis.results import Study, configurations_in, load_study
from mmt_tune.analysis.tables import write_csv, write_table
from mmt_tune.analysis.types import MetricsResult
from mmt_tune.cli import add_version
from mmt_tune.errors import InputError, describe
from mmt_tune.metrics import METRICS
from mmt_tune.records import complete_trials, per_trial, rank_trials


def _intervals(best: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """``<metric>_ci_low/_ci_high``: the corrected resampled t interval over each best trial's folds x repeats."""
    from mmt_tune.stats import clipped, corrected_t_interval

    best = best.copy()
    for metric in METRICS:
        low, high = [], []
        for model, present in zip(best["model"], best["present"], strict=True):
            rows = folds[(folds["model"] == model) & (folds["present"] == present)]
            interval = (
                clipped(corrected_t_interval(rows[metric], split_fraction(rows)))
                if len(rows)
                else (np.nan, np.nan)
            )
            low.append(interval[0])
            high.append(interval[1])
        best[f"{metric}_ci_low"], best[f"{metric}_ci_high"] = low, high
    return best


def aggregate(study: Study, objective: str = "auc") -> MetricsResult:
    """Best trial per configuration by mean ``objective``, its fold metrics, and the comparisons."""
    if objective not in METRICS:
        raise InputError(f"--objective must be one of {', '.join(METRICS)} (got {objective!r})")
    trials = study.trials
    if study.nested is not None:
        return _nested(study, objective)
    per = per_trial(trials, objective)
    notes = []
    rows, fold_frames = [], []
    complete = complete_trials(trials, objective)
    for model, present in configurations_in(trials, study.space):
        candidates = per[(per["model"] == model) & (per["present"] == present)]
        if candidates.empty:
            notes.append(f"{model}/{present}: no complete trials")
            rows.append({"model": model, "present": present, "trial_id": None, "n_trials": 0})
            continue
        best = rank_trials(candidates, objective).iloc[0].to_dict()
        best["n_trials"] = len(candidates)
        rows.append(best)
        fold_frames.append(
            complete[
                (complete["model"] == model)
                & (complete["present"] == present)
                & (complete["trial_id"] == best["trial_id"])
            ]
        )
    best = pd.DataFrame(rows)
    for metric in METRICS:
        for stat in ("mean", "std"):
            if f"{metric}_{stat}" not in best.columns:
                best[f"{metric}_{stat}"] = np.nan
    folds = pd.concat(fold_frames, ignore_index=True) if fold_frames else trials.iloc[:0]
    planned = study.plan.get("samples")
    if planned:  # Table 2's Trials column: completed of planned
        best["trials_label"] = [f"{int(n)}/{planned}" for n in best["n_trials"]]
    best = _intervals(best, folds)
    calibration = calibration_folds(best, study.predictions)
    best = with_calibration(best, calibration, folds)
    full = "+".join(study.modalities)
    comparisons = compare(best, folds, study.predictions, notes, objective, full)
    notes.extend(baseline_notes(best, comparisons, objective))
    notes.extend(_majority_and_calibration(best, calibration, study.predictions))
    notes[:0] = completion_notes(trials, study.plan.get("samples"), study.plan.get("configurations"))
    notes.append(
        f"best trial per configuration chosen by mean validation {objective} on the same folds it is reported "
        "on: optimistic; use a held-out set or nested CV for unbiased estimates"
    )
    if study.test is not None:
        n = int(study.test["n_test"].max()) if len(study.test) else 0
        notes.append(
            f"test columns: each best trial refitted on all training rows, scored on the held-out table "
            f"({n} rows) the search never saw; 95% percentile bootstrap intervals over its rows"
        )
    return MetricsResult(
        objective,
        best,
        folds,
        comparisons,
        notes,
        study.modalities,
        study.test,
        study.robustness,
        calibration,
    )


def _nested(study: Study, objective: str) -> MetricsResult:
    """Table 2 of a nested study (:mod:`mmt_tune.analysis.nested`)."""
    order = [c for c in configurations_in(study.trials, study.space)]
    best, folds = nested_frames(study.nested, order)
    best = _intervals(best, folds)
    calibration = calibration_folds(best, study.predictions)
    best = with_calibration(best, calibration, folds)
    notes = [nested_note(study.nested)]
    comparisons = compare(best, folds, study.predictions, notes, objective, "+".join(study.modalities))
    notes.extend(baseline_notes(best, comparisons, objective))
    notes.extend(_majority_and_calibration(best, calibration, study.predictions))
    return MetricsResult(
        objective, best, folds, comparisons, notes, study.modalities, calibration=calibration
    )


def _majority_and_calibration(
    best: pd.DataFrame, calibration: pd.DataFrame, predictions: pd.DataFrame | None
) -> list[str]:
    """The majority-class accuracy (the accuracy a constant prediction gets), and the calibration notes."""
    majority = majority_accuracy(predictions)
    notes = []
    if majority is not None:
        notes.append(f"majority-class accuracy (always predicting the larger class): {majority:.3f}")
    return notes + calibration_notes(best, calibration, predictions, majority)


def majority_accuracy(predictions: pd.DataFrame | None) -> float | None:
    """Accuracy of always predicting the larger class, from one trial's out-of-fold labels."""
    if predictions is None or predictions.empty or "label" not in predictions.columns:
        return None
    keys = [k for k in ("model", "present", "trial_id") if k in predictions.columns]
    if keys:  # every trial predicts every row once (per repeat): one trial's labels are the cohort's
        predictions = predictions[(predictions[keys] == predictions[keys].iloc[0]).all(axis=1)]
    rate = float(pd.to_numeric(predictions["label"], errors="coerce").mean())
    return max(rate, 1.0 - rate) if not np.isnan(rate) else None


def with_calibration(best: pd.DataFrame, calibration: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """``best`` with ``<score>_mean``, ``_std`` (ddof=0, as every metric) and the corrected resampled t
    interval ``_ci_low``/``_ci_high`` of each calibration score over the best trial's folds."""
    from mmt_tune.stats import corrected_t_interval

    best = best.copy()
    for score in CALIBRATION:
        values = {c: [] for c in ("mean", "std", "ci_low", "ci_high")}
        for model, present in zip(best["model"], best["present"], strict=True):
            scores = calibration[(calibration["model"] == model) & (calibration["present"] == present)][score]
            scores = scores.dropna()
            rows = folds[(folds["model"] == model) & (folds["present"] == present)]
            low, high = (
                corrected_t_interval(scores, split_fraction(rows)) if len(scores) > 1 else (np.nan,) * 2
            )
            if score in ("brier", "log_loss") and not np.isnan(low):
                low = max(low, 0.0)  # neither is ever below 0
            values["mean"].append(float(scores.mean()) if len(scores) else np.nan)
            values["std"].append(float(scores.std(ddof=0)) if len(scores) else np.nan)
            values["ci_low"].append(low)
            values["ci_high"].append(high)
        for stat, column in values.items():
            best[f"{score}_{stat}"] = column
    return best


def calibration_notes(
    best: pd.DataFrame, calibration: pd.DataFrame, predictions: pd.DataFrame | None, majority: float | None
) -> list[str]:
    """Notes naming every configuration whose log loss is worse than always predicting the prevalence, and
    every near-constant one (half its probabilities within 0.05 of the prevalence, accuracy at or below
    the majority rate)."""
    from mmt_tune.analysis.calibration import near_constant_share

    notes = []
    worse = []
    for _, row in best.dropna(subset=["trial_id"]).iterrows():
        rows = calibration[
            (calibration["model"] == row["model"]) & (calibration["present"] == row["present"])
        ]
        if rows.empty:
            continue
        mine, constant = rows["log_loss"].mean(), rows["log_loss_prevalence"].mean()
        if mine > constant:
            worse.append(f"{name((row['model'], row['present']))} {mine:.3f} vs {constant:.3f}")
    if worse:
        notes.append(
            "log loss worse than always predicting the prevalence (same folds; probabilities too extreme or "
            "misplaced, see the calibration slope and intercept): " + "; ".join(worse)
        )
    if predictions is None or majority is None or "probability" not in predictions.columns:
        return notes
    flat = []
    for _, row in best.dropna(subset=["trial_id"]).iterrows():
        share = near_constant_share(predictions, row["model"], row["present"], row["trial_id"])
        if share >= 0.5 and row.get("accuracy_mean", np.nan) <= majority + 1e-12:
            flat.append(f"{name((row['model'], row['present']))} ({share:.0%} within 0.05)")
    if flat:
        notes.append(
            "near-constant predictions (at least half the probabilities within 0.05 of the prevalence, accuracy "
            f"at or below the majority rate {majority:.3f}): " + "; ".join(flat)
        )
    return notes


# ---------------------------------------------------------------------------------------------- outputs
def write_metrics(
    result: MetricsResult, study: Study, out: Path, plots: bool = True, dpi: int | None = None
) -> list[Path]:
    """table2.{md,csv,tex}, comparison.{md,csv,tex}, best_trials.csv, comparisons.csv, performance.json,
    roc.csv and the figures."""
    import json

    from mmt_tune._io import write_text_atomic
    from mmt_tune.analysis.curves import performance, roc_table

    out = Path(out)
    notes = list(result.notes)
    line = headline(result)
    if line:
        notes.insert(0, line)
    caption = (
        f"Best trial per configuration by mean validation {result.objective.upper()}: mean ± std over folds "
        f"(x repeats), 95% CI of the {result.objective.upper()} by the corrected resampled t"
    )
    paths = write_table(result.table2(), out, "table2", caption, notes=notes)
    paths += write_table(
        result.comparison_table(),
        out,
        "comparison",
        "Differences of fold means (corrected resampled t-test over the shared folds, Holm-adjusted)",
        notes=[
            "p: two-sided corrected resampled t-test (Nadeau and Bengio) over the paired fold scores, which "
            "allows for the overlap of CV training sets; Holm: adjusted across the comparisons of each metric. "
            "comparisons.csv adds DeLong's test of the AUCs on the pooled out-of-fold predictions (p_delong, "
            "p_delong_holm) and the uncorrected paired t and Wilcoxon p-values, for reference only"
        ],
    )
    paths.append(write_csv(result.best, out / "best_trials.csv"))
    paths.append(write_csv(result.comparisons, out / "comparisons.csv"))
    curves = roc_table(result.best, study.predictions) if study.predictions is not None else pd.DataFrame()
    if not curves.empty:
        paths.append(write_csv(curves, out / "roc.csv"))
    reliability, decision = family_curves(result.best, study.predictions, result.objective)
    if not decision.empty:
        paths.append(write_csv(reliability, out / "calibration_curve.csv"))
        paths.append(write_csv(decision, out / "decision_curve.csv"))
    summary = performance(result, study.data)
    if study.test is not None:
        summary["test"] = study.test.to_dict("records")
    write_text_atomic(out / "performance.json", json.dumps(summary, indent=2, default=str) + "\n")
    paths.append(out / "performance.json")
    from mmt_tune.analysis import plots as figures
    from mmt_tune.analysis.robustness import write_robustness

    dpi = dpi or figures.DPI
    paths += write_robustness(result, result.robustness, out, plots, dpi)
    if plots:
        paths.append(figures.configuration_bars(result, out / "configurations.png", dpi))
        roc = figures.roc_curves(result, curves, out / "roc.png", dpi)
        if roc is not None:
            paths.append(roc)
        if not decision.empty:
            paths.append(figures.calibration_figure(reliability, out / "calibration.png", dpi))
            paths.append(figures.decision_figure(decision, out / "decision_curve.png", dpi))
        if study.losses is not None:
            path = figures.loss_curves(result, study.losses, out / "losses.png", dpi)
            if path is not None:
                paths.append(path)
    return paths


def build_parser() -> argparse.ArgumentParser:
    from mmt_tune.analysis.cli import add_common_arguments
    from mmt_tune.cli import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="python -m analysis.metrics",
        description="Aggregated cross-validated metrics: the paper's Table 2 (best trial per configuration), "
        "MMT vs MFN-VAE comparisons with paired tests, ROC / loss / configuration figures.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    add_common_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.analysis.cli import default_out
    from mmt_tune.analysis.tables import to_markdown

    args = build_parser().parse_args(argv)
    from mmt_tune._io import output_unit

    try:
        study = load_study(args.results, args.space, args.study)
        result = aggregate(study, args.objective)
        out = args.out or default_out(args.results)
        with output_unit():  # every table and figure replaced together, or none
            write_metrics(result, study, out, plots=not args.no_plots, dpi=args.dpi)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    print(to_markdown(result.table2(), [line for line in [headline(result)] if line] + result.notes))
    print(to_markdown(result.comparison_table()))
    print(f"wrote table2.md/.csv/.tex, comparison.md/.csv/.tex and figures -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
