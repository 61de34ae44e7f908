"""Table 2 of a nested study (``--outer-folds``): outer-fold scores, with the optimism of the inner estimate.

Each configuration's row is its inner-best trial of every outer fold, refitted on the outer training rows
and scored on the outer test rows: mean ± std over the K outer folds and a 95% corrected resampled t
interval (n_test / n_train = 1 / (K - 1)). Beside it, the non-nested estimate (the inner best trials' own
mean CV AUC, what a flat study reports) and the optimism (non-nested minus nested).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmt_tune.metrics import METRICS


def nested_frames(nested: pd.DataFrame, order: list[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best, folds) in the shapes :class:`~mmt_tune.analysis.metrics.MetricsResult` takes: one row per
    configuration, and one "fold" per outer fold (``config/folds`` = K for the interval)."""
    k = int(nested["outer_fold"].nunique())
    folds = nested.rename(columns={f"test_{m}": m for m in METRICS}).assign(
        fold=nested["outer_fold"], trial_id="nested", status="ok", **{"config/folds": k}
    )
    rows = []
    for model, present in order:
        group = folds[(folds["model"] == model) & (folds["present"] == present)]
        if group.empty:
            continue
        row = {
            "model": model,
            "present": present,
            "trial_id": "nested",
            "n_trials": int(group["n_trials"].sum()),
            "trials_label": _trials_label(group["n_trials"]),
        }
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = float(group[m].mean()), float(group[m].std(ddof=0))
        row["n_folds"] = len(group)
        row["inner_auc_mean"] = float(group["inner_auc_mean"].mean())
        row["optimism"] = row["inner_auc_mean"] - row["auc_mean"]
        rows.append(row)
    return pd.DataFrame(rows), folds


def _trials_label(per_outer: pd.Series) -> str:
    """Trials per outer fold: ``6 x 3`` when every outer fold ran as many, else ``6+5+6``."""
    counts = [int(n) for n in per_outer]
    return f"{counts[0]} x {len(counts)}" if len(set(counts)) == 1 else "+".join(map(str, counts))


def nested_cells(best: pd.Series) -> dict[str, str]:
    inner = best.get("inner_auc_mean", np.nan)
    if pd.isna(inner):
        return {}
    return {"Non-nested AUC": f"{inner:.3f}", "Optimism": f"{best['optimism']:+.3f}"}


def nested_note(nested: pd.DataFrame) -> str:
    k = int(nested["outer_fold"].nunique())
    return (
        f"nested CV, {k} outer folds: every metric is the outer test score of each configuration's inner-best "
        "trial refitted on the outer training rows (mean ± std over outer folds); 'Non-nested AUC' is those "
        "trials' own inner CV AUC, what a flat study reports; 'Optimism' = non-nested − nested"
    )
