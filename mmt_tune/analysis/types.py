"""The analysis's result types, below every module that builds, prints or draws them.

:class:`MetricsResult` is what :func:`mmt_tune.analysis.metrics.aggregate` returns (Table 2, the
comparisons and what they rest on); comparisons, curves, plots and the robustness table take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmt_tune.analysis.calibration import CALIBRATION
from mmt_tune.analysis.nested import nested_cells
from mmt_tune.analysis.results import model_label
from mmt_tune.analysis.tables import DASH, TICK
from mmt_tune.metrics import METRICS, mean_std
from mmt_tune.modalities import MODALITIES

#: The calibration scores Table 2 shows (log loss is in performance.json and the notes).
TABLE2_CALIBRATION = ("brier", "cal_slope", "cal_intercept")

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
    robustness: pd.DataFrame | None = None  # the study's robustness.csv (analysis.robustness)
    calibration: pd.DataFrame | None = None  # per best trial and fold (analysis.calibration)

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
            row[f"{LABELS[self.objective]} 95% CI"] = _interval(best, self.objective)
            for score in TABLE2_CALIBRATION:
                row[f"{CALIBRATION[score]} [95% CI]"] = _with_interval(best, score)
            row["Trials"] = best.get("trials_label") or str(int(best["n_trials"]))
            row["Best trial"] = str(best["trial_id"]) if best["n_trials"] else DASH
            if self.test is not None:
                row.update(self._test_cells(best["model"], best["present"]))
            row.update(nested_cells(best))
            rows.append(row)
        return pd.DataFrame(rows)

    def _test_cells(self, model: str, present: str) -> dict[str, str]:
        """Held-out AUC and accuracy with their 95% bootstrap intervals (the best trial refitted on all
        training rows)."""
        match = self.test[(self.test["model"] == model) & (self.test["present"] == present)]
        cells = {}
        for metric in ("auc", "accuracy", "brier"):
            name = (
                f"Test {LABELS.get(metric, metric.capitalize()) if metric != 'accuracy' else metric} [95% CI]"
            )
            if match.empty or f"test_{metric}" not in match.columns:
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
                row[LABELS[item["metric"]]] = _difference(
                    item["difference"], item["p_corrected"], item["p_holm"]
                )
            rows.append(row)
        return pd.DataFrame(rows)


def _difference(value: float, p: float, adjusted: float) -> str:
    if pd.isna(value):
        return DASH
    return f"{value:+.3f} (p={p:.3f}, Holm {adjusted:.3f})" if not pd.isna(p) else f"{value:+.3f}"


def _with_interval(best: pd.Series, score: str) -> str:
    mean = best.get(f"{score}_mean", np.nan)
    if pd.isna(mean):
        return DASH
    return (
        f"{mean:.3f} {_interval(best, score)}" if not pd.isna(best.get(f"{score}_ci_low")) else f"{mean:.3f}"
    )


def _interval(best: pd.Series, metric: str) -> str:
    low, high = best.get(f"{metric}_ci_low", np.nan), best.get(f"{metric}_ci_high", np.nan)
    return DASH if pd.isna(low) else f"[{low:.3f}, {high:.3f}]"
