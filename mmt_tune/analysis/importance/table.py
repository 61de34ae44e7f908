"""The paper's Table 3 and the importance tables: layout, and writing them with their figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune.analysis.results import model_label
from mmt_tune.analysis.tables import DASH, TICK, parameter_label, write_csv, write_table
from mmt_tune.metrics import mean_std
from mmt_tune.modalities import MODALITIES

if TYPE_CHECKING:
    from mmt_tune.analysis.importance.types import ConfigurationImportance, ImportanceResult


def importance_frame(result: ImportanceResult) -> pd.DataFrame:
    """``importance.csv``: one row per model x configuration x hyperparameter."""
    rows = []
    for c in result.configurations:
        for name in _ordered({*c.main, *c.cells}, result.modalities):
            spec = c.params.get(name)
            mean, std = c.main.get(name, (np.nan, np.nan))
            rows.append(
                {
                    "model": c.model,
                    "present": c.present,
                    "hyperparameter": name,
                    "engine": result.options.engine,
                    "objective": result.options.objective,
                    "mean": mean,
                    "std": std,
                    "n_trials": c.n_trials,
                    "n_seeds": result.options.seeds if name in c.main else 0,
                    "low": spec.low if spec is not None else np.nan,
                    "high": spec.high if spec is not None else np.nan,
                    "log": bool(spec.log) if spec is not None else False,
                    "note": c.cells.get(name, ""),
                }
            )
    columns = ["model", "present", "hyperparameter", "engine", "objective", "mean", "std", "n_trials"]
    return pd.DataFrame(rows, columns=[*columns, "n_seeds", "low", "high", "log", "note"])


def interactions_frame(result: ImportanceResult) -> pd.DataFrame:
    """``interactions.csv``: the pure pairwise interaction fractions, strongest first per configuration."""
    rows = [
        {"model": c.model, "present": c.present, "first": a, "second": b, "mean": m, "std": s}
        for c in result.configurations
        for (a, b), (m, s) in sorted(c.pairs.items(), key=lambda kv: -kv[1][0])
    ]
    return pd.DataFrame(rows, columns=["model", "present", "first", "second", "mean", "std"])


def table3(result: ImportanceResult) -> pd.DataFrame:
    """The paper's Table 3 layout: rows model x present modalities (ticks), columns the classification
    weight, the reconstruction weight of each modality, then lr and any other searched parameter."""
    modalities = result.modalities
    names = _ordered({n for c in result.configurations for n in (*c.main, *c.cells)}, modalities)
    rows, sums = [], {n: [] for n in names}
    for c in result.configurations:
        row = {"Model": model_label(c.model)}
        row.update({m: TICK if m in c.present.split("+") else "" for m in modalities})
        for name in names:
            if name in c.main:
                row[parameter_label(name)] = mean_std(*c.main[name])
                sums[name].append(c.main[name][0])
            else:
                row[parameter_label(name)] = c.cells.get(name, DASH)
        row["Top interaction"] = _top_pair(c)
        row["Trials"] = str(c.n_trials)
        rows.append(row)
    average = {"Model": "Average", **dict.fromkeys(modalities, "")}
    average.update({parameter_label(n): (f"{np.mean(v):.3f}" if v else DASH) for n, v in sums.items()})
    average["Top interaction"] = ""
    average["Trials"] = ""
    return pd.DataFrame([*rows, average])


def _top_pair(c: ConfigurationImportance) -> str:
    if not c.pairs:
        return DASH
    (a, b), (mean, _) = max(c.pairs.items(), key=lambda kv: kv[1][0])
    return f"{a} × {b}: {mean:.3f}"


def _ordered(names: set[str], modalities: tuple[str, ...] = MODALITIES) -> list[str]:
    """Table 3's column order: beta, alpha per modality, gamma, lr, then the rest alphabetically."""

    def rank(name: str) -> tuple:
        if name == "beta":
            return (0, 0, name)
        if name.startswith("alpha_"):
            modality = name.removeprefix("alpha_")
            return (1, modalities.index(modality) if modality in modalities else 9, name)
        fixed = {"gamma": 2, "kl_weight": 3, "lr": 4}
        return (fixed.get(name, 5), 0, name)

    return sorted(names, key=rank)


def write_importance(
    result: ImportanceResult, out: Path, plots: bool = True, dpi: int | None = None
) -> list[Path]:
    """importance.csv, interactions.csv, table3.{md,csv,tex} and, with ``plots``, the figures (PNG at
    ``dpi``, PDF beside each)."""
    out = Path(out)
    paths = [
        write_csv(importance_frame(result), out / "importance.csv"),
        write_csv(interactions_frame(result), out / "interactions.csv"),
    ]
    caption = (
        f"Hyperparameter importance (fANOVA main-effect fraction of the variance of mean CV "
        f"{result.options.objective.upper()}; mean ± std over {result.spread or f'{result.options.seeds} forest seeds'}; engine "
        f"{result.options.engine})"
    )
    paths += write_table(table3(result), out, "table3", caption, notes=result.all_notes())
    if plots:
        from mmt_tune.analysis import plots as figures

        dpi = dpi or figures.DPI
        for figure, name in (
            (figures.importance_bars, "importance.png"),
            (figures.marginals, "marginals.png"),
        ):
            path = figure(result, out / name, dpi)  # None: no configuration had enough trials to draw
            if path is not None:
                paths.append(path)
    return paths
