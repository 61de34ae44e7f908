"""The missing-modality robustness table and heat map (the paper's premise, measured as a drop).

Columns: every non-empty modality subset available at test time. Rows:

- *trained for the subset*: the best deep configuration (MMT or MFN-VAE, by mean fold AUC) whose present
  modalities are exactly that subset, from the trials table (Table 2's rows);
- *best baseline for the subset*: the better classical baseline (logistic regression or forest) trained on
  exactly that subset, when the study has one: what a deep model must at least match;
- *<model> (all), dropped at test*: the full-modality subset-capable model's folds scored with only that
  subset (``robustness.csv``, written by the study, :mod:`mmt_tune.study.robustness`);
- *<model> (all), modality dropout p*: the same, trained with modality dropout (``--modality-dropout``).

Cells: mean fold AUC with its 95% corrected resampled t interval. The last column is each row's worst-case
drop: the all-modality AUC minus its lowest subset AUC (for the first row, the full-modality configuration's
AUC, when the study has one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune import models
from mmt_tune.analysis.comparisons import split_fraction
from mmt_tune.analysis.results import baseline_models, model_label, recorded_option
from mmt_tune.analysis.tables import DASH
from mmt_tune.modalities import subsets_of
from mmt_tune.stats import clipped, corrected_t_interval

if TYPE_CHECKING:
    from mmt_tune.analysis.types import MetricsResult

TRAINED = "trained for the subset"
BASELINE = "best baseline for the subset"


def subset_names(modalities: tuple[str, ...]) -> list[str]:
    return ["+".join(s) for s in subsets_of(modalities)]


def robustness_long(result: MetricsResult, robustness: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (row of the table, test subset): model, mean AUC, interval, folds."""
    rows = []
    deep = models.with_role("proposed") + models.with_role("reference")
    best = result.best.dropna(subset=["trial_id"])
    for subset in subset_names(result.modalities):
        candidates = best[(best["present"] == subset) & best["model"].isin(deep)]
        if candidates.empty:
            continue
        top = candidates.sort_values("auc_mean", ascending=False).iloc[0]
        folds = result.folds[(result.folds["model"] == top["model"]) & (result.folds["present"] == subset)]
        rows.append(_cell(TRAINED, top["model"], subset, folds))
    for subset in subset_names(result.modalities):
        candidates = best[(best["present"] == subset) & best["model"].isin(baseline_models())]
        if candidates.empty:
            continue
        top = candidates.sort_values(["auc_mean", "model"], ascending=[False, True], kind="stable").iloc[0]
        folds = result.folds[(result.folds["model"] == top["model"]) & (result.folds["present"] == subset)]
        rows.append(_cell(BASELINE, top["model"], subset, folds))
    if robustness is not None and not robustness.empty:
        for (variant, model), group in robustness.groupby(["variant", "model"], sort=False):
            row_name = f"{model_label(model)} (all), {variant}"
            for subset, folds in group.groupby("subset", sort=False):
                rows.append(_cell(row_name, model, subset, folds.assign(**{"config/folds": _k(result)})))
    return pd.DataFrame(rows)


def _k(result: MetricsResult) -> int:
    return recorded_option(result.folds, "folds", 5)


def _cell(row: str, model: str, subset: str, folds: pd.DataFrame) -> dict:
    low, high = clipped(corrected_t_interval(folds["auc"], split_fraction(folds)))
    return {
        "row": row,
        "model": model,
        "subset": subset,
        "auc": float(np.nanmean(folds["auc"])),
        "ci_low": low,
        "ci_high": high,
        "n_scores": int(folds["auc"].notna().sum()),
    }


def robustness_table(long: pd.DataFrame, modalities: tuple[str, ...]) -> pd.DataFrame:
    """The wide table: one row per row name, one column per subset, and the worst-case drop."""
    if long.empty:
        return pd.DataFrame()
    full = "+".join(modalities)
    order = subset_names(modalities)
    table = []
    for name, group in long.groupby("row", sort=False):
        cells = {"": name}
        by_subset = group.set_index("subset")
        for subset in order:
            if subset not in by_subset.index:
                cells[subset] = DASH
                continue
            item = by_subset.loc[subset]
            label = f" {model_label(item['model'])}" if name in (TRAINED, BASELINE) else ""
            interval = "" if pd.isna(item["ci_low"]) else f" [{item['ci_low']:.3f}, {item['ci_high']:.3f}]"
            cells[subset] = f"{item['auc']:.3f}{interval}{label}"
        cells["Worst drop vs all"] = _worst_drop(by_subset, full)
        table.append(cells)
    return pd.DataFrame(table)


def _worst_drop(by_subset: pd.DataFrame, full: str) -> str:
    if full not in by_subset.index or len(by_subset) < 2:
        return DASH
    others = by_subset.drop(index=full)
    worst = others["auc"].idxmin()
    return f"{by_subset.loc[full, 'auc'] - others.loc[worst, 'auc']:+.3f} ({worst})"


def robustness_heatmap(long: pd.DataFrame, modalities: tuple[str, ...], path: Path, dpi: int) -> Path | None:
    """Mean fold AUC per row x test subset, annotated, on one fixed scale (AUC 0.5 to 1.0, so that two
    studies' maps compare); cell text black or white by the cell's lightness."""
    if long.empty:
        return None
    from mmt_tune.analysis.plots import DOUBLE, SINGLE, _pyplot, _save

    plt = _pyplot()
    order = subset_names(modalities)
    names = list(dict.fromkeys(long["row"]))
    matrix = np.full((len(names), len(order)), np.nan)
    for _, item in long.iterrows():
        matrix[names.index(item["row"]), order.index(item["subset"])] = item["auc"]
    width = DOUBLE if len(order) > 4 else SINGLE * 1.4
    fig, ax = plt.subplots(figsize=(width, 0.32 * len(names) + 1.5), layout="constrained")
    image = ax.imshow(matrix, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
    for i in range(len(names)):
        for j in range(len(order)):
            if not np.isnan(matrix[i, j]):
                red, green, blue, _ = image.cmap(image.norm(matrix[i, j]))
                light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                ax.text(
                    j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="black" if light else "white"
                )
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("modalities available at test time")
    ax.set_title("Missing-modality robustness: mean fold AUC (scale fixed at 0.5-1.0)")
    fig.colorbar(image, ax=ax, label="AUC")
    return _save(fig, path, dpi)


def write_robustness(
    result: MetricsResult, robustness: pd.DataFrame | None, out: Path, plots: bool, dpi: int
) -> list[Path]:
    """robustness.{md,csv,tex}, robustness_long.csv and robustness.png/.pdf; nothing when there is no row."""
    from mmt_tune.analysis.tables import write_csv, write_table

    long = robustness_long(result, robustness)
    table = robustness_table(long, result.modalities)
    if table.empty:
        return []
    caption = "Missing-modality robustness: mean fold AUC [95% CI] per modality subset available at test time"
    notes = [
        f"{TRAINED}: the best deep configuration trained on exactly that subset; '(all), dropped at test': one "
        "model trained on every modality, scored with the others left out of its product of experts"
    ]
    paths = write_table(table, out, "robustness", caption, notes=notes)
    paths.append(write_csv(long, out / "robustness_long.csv"))
    if plots:
        path = robustness_heatmap(long, result.modalities, out / "robustness.png", dpi)
        if path is not None:
            paths.append(path)
    return paths
