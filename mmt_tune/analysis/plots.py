"""Figures (matplotlib's Agg backend): importance bars and main-effect curves (Table 3), ROC curves, loss
curves and a configuration comparison (the paper's Figs 6-8). Each function writes a PNG (``dpi``) and, beside
it, the same figure as a PDF (vector, for a paper), atomically, and returns the PNG's path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune import models
from mmt_tune._io import atomic_path
from mmt_tune.analysis.importance._base import FEW_TRIALS
from mmt_tune.analysis.results import model_label
from mmt_tune.analysis.tables import parameter_label
from mmt_tune.metrics import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mmt_tune.analysis.importance.types import ImportanceResult
    from mmt_tune.analysis.types import MetricsResult

DPI = 300  #: PNG resolution unless ``--dpi`` says otherwise (a journal's figure resolution)
VECTOR = "pdf"  #: the vector twin written beside every PNG
#: A main-effect panel's y-axis spans at least this much of the objective, so that flat curves look flat.
MIN_Y_RANGE = 0.05


def _pyplot():
    """pyplot (Agg) with the page style: text of 7-9 pt at the size a figure is drawn, which is its size on a
    journal page (:data:`SINGLE` or :data:`DOUBLE` column wide)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(_page_style())
    return plt


def _save(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    plt = _pyplot()
    # A figure laid out by matplotlib (constrained layout) is saved at exactly its size, the size it has on
    # the page; only the others are cropped to what they draw.
    crop = None if fig.get_layout_engine() is not None else "tight"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=crop)
        with atomic_path(path.with_suffix(f".{VECTOR}")) as tmp:
            fig.savefig(tmp, format=VECTOR, bbox_inches=crop)
    finally:
        plt.close(fig)
    return path


def _grid(n: int, columns: int = 3):
    plt = _pyplot()
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    width = DOUBLE if columns > 1 else SINGLE
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(width, width / columns * 0.85 * rows + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _title(model: str, present: str) -> str:
    return f"{model_label(model)} · {present}"


def ordered_index(modalities: tuple[str, ...], name: str) -> int:
    return modalities.index(name) if name in modalities else len(modalities)


def importance_bars(result: ImportanceResult, path: Path, dpi: int = DPI) -> Path | None:
    """One panel per analysed configuration: main-effect importance ± std over seeds, strongest on top, all
    panels on one x-axis (fractions of variance are comparable across configurations)."""
    analysed = [c for c in result.configurations if c.main]
    if not analysed:
        return None
    fig, axes = _grid(len(analysed), columns=min(2, len(analysed)))
    top = max([m + s for c in analysed for m, s in c.main.values()] + [0.05]) * 1.1
    for ax, c in zip(axes, analysed, strict=False):
        items = sorted(c.main.items(), key=lambda kv: kv[1][0])
        means = np.array([m for _, (m, _) in items])
        stds = np.array([s for _, (_, s) in items])
        lower = np.minimum(stds, means)  # a fraction of variance is never below 0: clip the bar's error
        ax.barh(
            [parameter_label(n) for n, _ in items],
            means,
            xerr=[lower, stds],
            color="#0072B2",
            capsize=2,
        )
        ax.set_xlim(0, top)
        few = c.n_trials < FEW_TRIALS
        ax.set_title(
            f"{_title(c.model, c.present)} (n={c.n_trials}{', few trials: noisy' if few else ''})",
            color="#B22222" if few else "black",
        )
        ax.set_xlabel("fraction of variance (main effect)")
    fig.suptitle(
        f"Hyperparameter importance of mean CV {result.options.objective.upper()} ({result.options.engine})"
    )
    return _save(fig, path, dpi)


def marginals(result: ImportanceResult, path: Path, dpi: int = DPI) -> Path | None:
    """Main-effect curves (mean ± std over forest seeds) of each configuration's three strongest parameters,
    three panels per row; every y-axis spans at least :data:`MIN_Y_RANGE` of the objective."""
    analysed = [c for c in result.configurations if c.marginals]
    panels = [  # each configuration's three strongest parameters (importance.csv has them all)
        (c, name)
        for c in analysed
        for name in sorted((n for n in c.main if n in c.marginals), key=lambda n: -c.main[n][0])[:3]
    ]
    if not panels:
        return None
    fig, axes = _grid(len(panels), columns=min(3, len(panels)))
    for ax, (c, name) in zip(axes, panels, strict=False):
        x, mean, std = c.marginals[name]
        distribution = c.params[name]
        if distribution.categorical:
            ax.errorbar([str(v) for v in distribution.values], mean, yerr=std, fmt="o", capsize=3)
        else:
            ax.plot(x, mean, color="#D55E00")
            ax.fill_between(x, mean - std, mean + std, color="#D55E00", alpha=0.2)
            if distribution.log:
                from matplotlib.ticker import FuncFormatter

                ax.set_xscale("log")  # ticks as 1e-05, not 10 with a 5 pt superscript
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        low, high = float(np.min(mean - std)), float(np.max(mean + std))
        middle, half = (low + high) / 2, max(high - low, MIN_Y_RANGE) / 2 * 1.1
        ax.set_ylim(middle - half, middle + half)
        ax.set_xlabel(parameter_label(name))
        ax.set_ylabel(f"marginal {result.options.objective}")
        few = ", few trials" if c.n_trials < FEW_TRIALS else ""
        ax.set_title(
            f"{_title(c.model, c.present)}: {c.main[name][0]:.2f} (n={c.n_trials}{few})",
            color="#B22222" if few else "black",
        )
    return _save(fig, path, dpi)


def configuration_bars(result: MetricsResult, path: Path, dpi: int = DPI) -> Path:
    """Paper Fig. 6: each metric of the best trial per configuration, grouped by modality subset."""
    plt = _pyplot()
    best = result.best.dropna(subset=["trial_id"])
    subsets = sorted(
        set(best["present"]),
        key=lambda p: (len(p.split("+")), [ordered_index(result.modalities, m) for m in p.split("+")]),
    )
    shown = [m for m in models.names() if m in set(best["model"])] + sorted(
        set(best["model"]) - set(models.names())
    )
    fig, axes = plt.subplots(
        len(METRICS), 1, figsize=(DOUBLE, 1.1 * len(METRICS) + 0.8), sharex=True, layout="constrained"
    )
    width = 0.8 / max(1, len(shown))
    positions = np.arange(len(subsets))
    for ax, metric in zip(axes, METRICS, strict=True):
        for i, model in enumerate(shown):
            rows = best[best["model"] == model].set_index("present")
            means = [rows[f"{metric}_mean"].get(s, np.nan) for s in subsets]
            stds = [rows[f"{metric}_std"].get(s, np.nan) for s in subsets]
            ax.bar(
                positions + (i - (len(shown) - 1) / 2) * width,
                means,
                width,
                yerr=stds,
                capsize=2,
                ecolor="#777777",  # visible on the black forest bars too
                label=model_label(model),
                color=models.get(model).colour if model in models.names() else None,
            )
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.05)
    axes[0].legend(ncol=len(shown), loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    axes[-1].set_xticks(positions, subsets, rotation=20, ha="right")
    fig.suptitle(f"Best trial per configuration (by {result.objective}): mean ± std over folds")
    return _save(fig, path, dpi)


def roc_curves(result: MetricsResult, curves: pd.DataFrame, path: Path, dpi: int = DPI) -> Path | None:
    """Paper Fig. 7 as small multiples: one panel per modality subset with each model's best trial there,
    its fold ROC curves averaged vertically with ± one std over folds as a band
    (:func:`mmt_tune.analysis.curves.roc_table`); each panel's legend, below it, gives the mean fold AUC (as
    in Table 2). One colour per model family throughout."""
    best = result.best.dropna(subset=["trial_id"])
    if curves.empty or best.empty:
        return None
    subsets = sorted(
        set(best["present"]),
        key=lambda p: (-len(p.split("+")), [ordered_index(result.modalities, m) for m in p.split("+")]),
    )
    columns = min(4, len(subsets))
    fig, axes = _grid(len(subsets), columns=columns)
    fig.set_size_inches(
        DOUBLE if columns > 1 else SINGLE, (DOUBLE / 4 + 0.55) * -(-len(subsets) // columns) + 0.3
    )
    for ax, subset in zip(axes, subsets, strict=False):
        for _, row in best[best["present"] == subset].iterrows():
            curve = curves[
                (curves["model"] == row["model"])
                & (curves["present"] == subset)
                & (curves["trial_id"] == str(row["trial_id"]))
            ]
            if curve.empty:
                continue
            colour = models.get(row["model"]).colour if row["model"] in models.names() else None
            label = f"{model_label(row['model'])} {row['auc_mean']:.3f}"
            ax.plot(curve["fpr"], curve["tpr_mean"], label=label, lw=1.0, color=colour)
            ax.fill_between(curve["fpr"], curve["tpr_low"], curve["tpr_high"], color=colour, alpha=0.12, lw=0)
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.6)
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title=subset)
        ax.set_xlabel("1 − specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False, title="mean fold AUC")
    fig.suptitle("Best trials per modality subset: fold-averaged ROC ± std over folds")
    return _save(fig, path, dpi)


def loss_panels(curves: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, column) of each loss term one trial has; the study's table has every model's terms, so the
    columns that are empty for this trial are left out."""
    present = [c for c in curves.columns if curves[c].notna().any()]
    panels = [("classification", "classification")]
    panels += [
        (c.removeprefix("reconstruction_") + " reconstruction", c)
        for c in present
        if c.startswith("reconstruction_")
    ]
    return panels + [(name, name) for name in ("auxiliary", "kl", "total") if name in present]


def loss_curves(result: MetricsResult, losses: pd.DataFrame, path: Path, dpi: int = DPI) -> Path | None:
    """Paper Fig. 8: train/validation classification and reconstruction losses of the best MMT configuration
    (the best configuration overall when the study has no MMT), mean ± std over folds per epoch."""
    best = result.best.dropna(subset=["trial_id"])
    if best.empty:
        return None
    mmt = best[best["model"].isin(models.with_role("proposed"))]
    top = (mmt if not mmt.empty else best).sort_values(f"{result.objective}_mean", ascending=False).iloc[0]
    curves = losses[
        (losses["model"] == top["model"])
        & (losses["present"] == top["present"])
        & (losses["trial_id"].astype(str) == str(top["trial_id"]))
    ]
    if curves.empty:
        return None
    from matplotlib.ticker import MaxNLocator

    panels = loss_panels(curves)
    fig, axes = _grid(len(panels), columns=min(3, len(panels)))
    for ax, (title, column) in zip(axes, panels, strict=False):
        for split, color in (("train", "#0072B2"), ("val", "#D55E00")):
            stats = curves[curves["split"] == split].groupby("epoch")[column].agg(["mean", "std"])
            ax.plot(stats.index, stats["mean"], color=color, label=split)
            ax.fill_between(
                stats.index,
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=color,
                alpha=0.15,
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.legend(frameon=False)
    fig.suptitle(
        f"Losses of {_title(top['model'], top['present'])}, trial {top['trial_id']} (mean ± std over folds)"
    )
    return _save(fig, path, dpi)


#: Page widths (inches) of a journal's single and double column (8.5 and 17.5 cm), and the text size on them.
SINGLE, DOUBLE, TEXT_PT = 8.5 / 2.54, 17.5 / 2.54, 8


def _page_style() -> dict:
    return {
        "font.size": TEXT_PT,
        "axes.titlesize": TEXT_PT,
        "axes.labelsize": TEXT_PT,
        "xtick.labelsize": TEXT_PT - 1,
        "ytick.labelsize": TEXT_PT - 1,
        "legend.fontsize": TEXT_PT - 1,
        "legend.title_fontsize": TEXT_PT - 1,
        "figure.titlesize": TEXT_PT + 1,
    }


def calibration_figure(curves: pd.DataFrame, path: Path, dpi: int = DPI) -> Path | None:
    """Fold-averaged reliability curves, one per configuration family's best configuration
    (:func:`mmt_tune.analysis.calibration.reliability`), on one single-column panel; None without data."""
    if curves.empty:
        return None
    plt = _pyplot()
    with plt.rc_context(_page_style()):
        fig, ax = plt.subplots(figsize=(SINGLE, SINGLE), layout="constrained")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8, label="ideal")
        for (model, present), curve in curves.groupby(["model", "present"], sort=False):
            colour = models.get(model).colour if model in models.names() else None
            ax.plot(
                curve["predicted"],
                curve["observed"],
                marker="o",
                ms=3,
                lw=1.2,
                color=colour,
                label=f"{model_label(model)} {present}",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed fraction positive")
        ax.set_title("Calibration (out-of-fold, fold-averaged bins of 0.1)")
        ax.legend(loc="upper left", frameon=False)
        return _save(fig, path, dpi)


def decision_figure(curves: pd.DataFrame, path: Path, dpi: int = DPI) -> Path | None:
    """Net benefit over threshold probabilities of each family's best configuration, with treat-all and
    treat-none (:func:`mmt_tune.analysis.calibration.decision_curve`); None without data."""
    if curves.empty:
        return None
    plt = _pyplot()
    with plt.rc_context(_page_style()):
        fig, ax = plt.subplots(figsize=(SINGLE, SINGLE * 0.8), layout="constrained")
        first = curves[curves["model"] == curves["model"].iloc[0]]
        ax.plot(first["threshold"], first["treat_all"], color="black", lw=0.8, ls="--", label="treat all")
        ax.axhline(0.0, color="grey", lw=0.8, label="treat none")
        for (model, present), curve in curves.groupby(["model", "present"], sort=False):
            colour = models.get(model).colour if model in models.names() else None
            ax.plot(
                curve["threshold"],
                curve["net_benefit"],
                lw=1.2,
                color=colour,
                label=f"{model_label(model)} {present}",
            )
        top = float(np.nanmax(curves[["net_benefit", "treat_all"]].to_numpy()))
        ax.set(
            xlim=(0, 1),
            ylim=(-0.05, max(0.05, top * 1.1)),
            xlabel="threshold probability",
            ylabel="net benefit",
        )
        ax.set_title("Decision curve (out-of-fold, fold-averaged)")
        ax.legend(loc="upper right", frameon=False)
        return _save(fig, path, dpi)
