"""``python -m analysis.metrics``: aggregated cross-validated metrics (the paper's Table 2) and comparisons.

For each model x modality configuration the best trial by mean validation ``objective`` (default AUC) over
folds, reported as mean ± std over its folds for accuracy, AUC, precision, sensitivity and specificity;
classical baselines (logistic regression, random forest) are rows of the same table. Then every deep
configuration against the better baseline on the same present modalities, MMT against MFN-VAE on the same
modality subset, and every deep configuration against the full-modality MFN-VAE (the paper's headline: the
best one-missing MMT vs the full MFN-VAE), as differences of the fold means with a paired t-test over the
shared folds (all trials of a study use the same folds, fixed by its seed). The notes name every deep
configuration that does not beat its baseline, and the majority-class accuracy.

The std is the population std over folds (ddof=0), as the trainer prints it. Selecting the best of many
trials on the same folds makes its CV estimate optimistic; the tables say so, and a nested CV or a held-out
test set is the remedy for a paper.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune import models
from mmt_tune.analysis.results import (
    CONFIG_PREFIX,
    Study,
    baseline_models,
    complete_trials,
    configurations_in,
    load_study,
    model_label,
    per_trial,
    table_order,
)
from mmt_tune.analysis.tables import DASH, TICK, mean_std, write_csv, write_table
from mmt_tune.cli import add_version
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.modalities import MODALITIES
from mmt_tune.study.records import rank_trials

#: The paper's headline pair: its one-missing proposed model and the reference it is compared with.
HEADLINE_MODEL, REFERENCE = models.HEADLINE
LABELS = {
    "accuracy": "Accuracy",
    "auc": "AUC",
    "precision": "Precision",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
}


@dataclass
class MetricsResult:
    objective: str
    best: (
        pd.DataFrame
    )  # one row per configuration: model, present, trial_id, n_folds, <metric>_mean/_std, config/*
    folds: pd.DataFrame  # the best trials' rows of the trials table (one per fold)
    comparisons: pd.DataFrame  # long: comparison x metric, with the paired test
    notes: list[str] = field(default_factory=list)
    modalities: tuple[str, ...] = MODALITIES  # the study's: Table 2's tick columns
    test: pd.DataFrame | None = None  # held-out metrics per configuration (--test-features)

    @property
    def full(self) -> str:
        """The present set with every modality (the full-modality reference's)."""
        return "+".join(self.modalities)

    def table2(self) -> pd.DataFrame:
        """The paper's Table 2: model, ticks for the present modalities, mean ± std of each metric."""
        rows = []
        for _, best in self.best.iterrows():
            row = {"Model": model_label(best["model"])}
            row.update({m: TICK if m in best["present"].split("+") else "" for m in self.modalities})
            for metric in METRICS:
                row[LABELS[metric]] = mean_std(best[f"{metric}_mean"], best[f"{metric}_std"])
            row["Trials"] = str(int(best["n_trials"]))
            row["Best trial"] = str(best["trial_id"]) if best["n_trials"] else DASH
            if self.test is not None:
                row.update(self._test_cells(best["model"], best["present"]))
            rows.append(row)
        return pd.DataFrame(rows)

    def _test_cells(self, model: str, present: str) -> dict[str, str]:
        """Held-out AUC and accuracy with their 95% bootstrap intervals (the best trial refitted on all
        training rows)."""
        match = self.test[(self.test["model"] == model) & (self.test["present"] == present)]
        cells = {}
        for metric in ("auc", "accuracy"):
            name = f"Test {LABELS[metric] if metric == 'auc' else metric} [95% CI]"
            if match.empty:
                cells[name] = DASH
                continue
            row = match.iloc[0]
            cells[name] = (
                f"{row[f'test_{metric}']:.3f} [{row[f'test_{metric}_low']:.3f}, {row[f'test_{metric}_high']:.3f}]"
            )
        return cells

    def comparison_table(self) -> pd.DataFrame:
        """One row per comparison: the difference of fold means of each metric, with the paired p-value."""
        if self.comparisons.empty:
            return pd.DataFrame(columns=["Comparison", "Folds", *LABELS.values()])
        rows = []
        for name, group in self.comparisons.groupby("comparison", sort=False):
            row = {"Comparison": name, "Folds": str(int(group["n_folds"].iloc[0]))}
            for _, item in group.iterrows():
                row[LABELS[item["metric"]]] = _difference(item["difference"], item["p_ttest"])
            rows.append(row)
        return pd.DataFrame(rows)


def _difference(value: float, p: float) -> str:
    if pd.isna(value):
        return DASH
    return f"{value:+.3f} (p={p:.3f})" if not pd.isna(p) else f"{value:+.3f}"


def aggregate(study: Study, objective: str = "auc") -> MetricsResult:
    """Best trial per configuration by mean ``objective``, its fold metrics, and the comparisons."""
    if objective not in METRICS:
        raise InputError(f"--objective must be one of {', '.join(METRICS)} (got {objective!r})")
    trials = study.trials
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
    full = "+".join(study.modalities)
    comparisons = _comparisons(best, folds, notes, objective, full)
    notes.extend(_baseline_notes(best, objective))
    majority = majority_accuracy(study.predictions)
    if majority is not None:
        notes.append(f"majority-class accuracy (always predicting the larger class): {majority:.3f}")
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
    return MetricsResult(objective, best, folds, comparisons, notes, study.modalities, study.test)


def best_baselines(best: pd.DataFrame, objective: str) -> dict[str, tuple[str, str]]:
    """Present modalities -> the (model, present) of the baseline with the highest mean ``objective``."""
    rows = best[best["model"].isin(baseline_models())].dropna(subset=["trial_id", f"{objective}_mean"])
    chosen = {}
    for present, group in rows.groupby("present", sort=False):
        top = group.sort_values([f"{objective}_mean", "model"], ascending=[False, True], kind="stable").iloc[
            0
        ]
        chosen[present] = (top["model"], present)
    return chosen


def _baseline_notes(best: pd.DataFrame, objective: str) -> list[str]:
    """One note naming the deep configurations whose best trial does not beat their best baseline."""
    baselines = best_baselines(best, objective)
    column = f"{objective}_mean"
    by_key = {(m, p): v for m, p, v in zip(best["model"], best["present"], best[column], strict=True)}
    losing, beating = [], 0
    for model, present, value in zip(best["model"], best["present"], best[column], strict=True):
        if model in baseline_models() or pd.isna(value) or present not in baselines:
            continue
        reference = baselines[present]
        if value > by_key[reference]:
            beating += 1
        else:
            losing.append(
                f"{_name((model, present))} {value:.3f} vs {model_label(reference[0])} {by_key[reference]:.3f}"
            )
    if not losing:
        return [f"every deep configuration beats its best baseline on {objective}"] if beating else []
    return [f"does not beat the best baseline on the same modalities ({objective}): " + "; ".join(losing)]


def majority_accuracy(predictions: pd.DataFrame | None) -> float | None:
    """Accuracy of always predicting the larger class, from one trial's out-of-fold labels."""
    if predictions is None or predictions.empty or "label" not in predictions.columns:
        return None
    keys = [k for k in ("model", "present", "trial_id") if k in predictions.columns]
    if keys:  # every trial predicts every row once: one trial's labels are the cohort's
        predictions = predictions[(predictions[keys] == predictions[keys].iloc[0]).all(axis=1)]
    rate = float(pd.to_numeric(predictions["label"], errors="coerce").mean())
    return max(rate, 1.0 - rate) if not np.isnan(rate) else None


def _comparisons(
    best: pd.DataFrame, folds: pd.DataFrame, notes: list[str], objective: str, full: str
) -> pd.DataFrame:
    """Every deep configuration vs its best baseline, MMT vs MFN-VAE on the same subset, and every deep
    configuration vs the full-modality MFN-VAE."""
    available = {
        (m, p)
        for m, p, t in zip(best["model"], best["present"], best["trial_id"], strict=True)
        if t is not None and not pd.isna(t)
    }
    pairs = []
    ordered = sorted(available, key=table_order)
    deep = [(m, p) for m, p in ordered if m not in baseline_models()]
    baselines = best_baselines(best, objective)
    for model, present in deep:
        if present in baselines:
            pairs.append(((model, present), baselines[present]))
    for model, present in deep:
        if model in models.with_role("proposed") and (REFERENCE, present) in available:
            pairs.append(((model, present), (REFERENCE, present)))
    if (REFERENCE, full) in available:
        for model, present in deep:
            if (model, present) != (REFERENCE, full):
                pairs.append(((model, present), (REFERENCE, full)))
    rows = []
    for left, right in pairs:
        a = _fold_frame(folds, *left)
        b = _fold_frame(folds, *right)
        shared = a.index.intersection(b.index)
        if not _same_folds(a, b):
            notes.append(
                f"{_name(left)} vs {_name(right)}: fold seeds or counts differ, so the folds are not paired"
            )
        for metric in METRICS:
            x, y = a.loc[shared, metric].to_numpy(float), b.loc[shared, metric].to_numpy(float)
            rows.append(
                {
                    "comparison": f"{_name(left)} − {_name(right)}",
                    "left": _name(left),
                    "right": _name(right),
                    "metric": metric,
                    "left_mean": float(np.nanmean(a[metric])) if len(a) else np.nan,
                    "right_mean": float(np.nanmean(b[metric])) if len(b) else np.nan,
                    "difference": float(np.nanmean(a[metric]) - np.nanmean(b[metric]))
                    if len(a) and len(b)
                    else np.nan,
                    "n_folds": len(shared),
                    **_paired_tests(x, y),
                }
            )
    return pd.DataFrame(rows)


def _paired_tests(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank p-values over shared folds (NaN when undefined)."""
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
    for option in ("seed", "folds"):
        column = f"{CONFIG_PREFIX}{option}"
        if column in a.columns and column in b.columns and set(a[column].dropna()) != set(b[column].dropna()):
            return False
    return True


def _name(configuration: tuple[str, str]) -> str:
    model, present = configuration
    return f"{model_label(model)} {present}"


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
        (result.comparisons["left"] == _name((HEADLINE_MODEL, top["present"])))
        & (result.comparisons["right"] == _name((REFERENCE, result.full)))
        & (result.comparisons["metric"] == metric)
    ].iloc[0]
    p = (
        f", paired t-test p={row['p_ttest']:.3f} over {row['n_folds']} folds"
        if not pd.isna(row["p_ttest"])
        else ""
    )
    return (
        f"best one-missing {models.ROLE_TITLES['proposed']} ({_name((HEADLINE_MODEL, top['present']))}) vs full-modality {models.label(REFERENCE)}: {metric} "
        f"{row['left_mean']:.3f} vs {row['right_mean']:.3f} ({row['difference']:+.3f}{p})"
    )


# ---------------------------------------------------------------------------------------------- outputs
def write_metrics(
    result: MetricsResult, study: Study, out: Path, plots: bool = True, dpi: int | None = None
) -> list[Path]:
    """table2.{md,csv,tex}, comparison.{md,csv,tex}, best_trials.csv, comparisons.csv and the figures."""
    out = Path(out)
    notes = list(result.notes)
    line = headline(result)
    if line:
        notes.insert(0, line)
    caption = (
        f"Best trial per configuration by mean validation {result.objective.upper()}: mean ± std over folds"
    )
    paths = write_table(result.table2(), out, "table2", caption, notes=notes)
    paths += write_table(
        result.comparison_table(),
        out,
        "comparison",
        "Differences of fold means (paired t-test over the shared folds)",
        notes=[
            "p: two-sided paired t-test over folds; with 5 folds such tests have little power (Wilcoxon's "
            "smallest two-sided p is 0.0625; its p-values are in comparisons.csv)"
        ],
    )
    paths.append(write_csv(result.best, out / "best_trials.csv"))
    paths.append(write_csv(result.comparisons, out / "comparisons.csv"))
    if plots:
        from mmt_tune.analysis import plots as figures

        dpi = dpi or figures.DPI
        paths.append(figures.configuration_bars(result, out / "configurations.png", dpi))
        if study.predictions is not None:
            paths.append(figures.roc_curves(result, study.predictions, out / "roc.png", dpi))
        if study.losses is not None:
            path = figures.loss_curves(result, study.losses, out / "losses.png", dpi)
            if path is not None:
                paths.append(path)
    return paths


def build_parser() -> argparse.ArgumentParser:
    from mmt_tune.analysis.cli import HelpFormatter, add_common_arguments

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
    try:
        study = load_study(args.results, args.space, args.study)
        result = aggregate(study, args.objective)
        out = args.out or default_out(args.results)
        write_metrics(result, study, out, plots=not args.no_plots, dpi=args.dpi)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_markdown(result.table2(), [line for line in [headline(result)] if line] + result.notes))
    print(to_markdown(result.comparison_table()))
    print(f"wrote table2.md/.csv/.tex, comparison.md/.csv/.tex and figures -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
