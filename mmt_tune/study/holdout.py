"""Scoring a study's chosen configurations on rows the search never saw: a held-out table, or outer folds.

``python -m mmt_tune.run ... --test-features holdout.parquet``: after the search, each configuration's best
trial is refitted on every row of the study's table (:func:`mmt_tune.training.refit.fit_configuration`) and scored
on the held-out table, which is read before the search only to check it and is never used by it. The
results are ``test.csv`` (one row per configuration: each metric with a 95% bootstrap interval) and
``test_predictions.parquet`` (local: it carries patient IDs); Table 2 shows them beside the CV columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune.errors import InputError
from mmt_tune.metrics import METRIC_FUNCTIONS, all_metrics, brier

TEST_FILE = "test.csv"
TEST_PREDICTIONS = "test_predictions"


def read_holdout(path: str | Path, table: pd.DataFrame, metadata: dict | None = None) -> pd.DataFrame:
    """The held-out table, checked against the study's: the same feature columns and extraction settings
    (when both record them; ``metadata`` is the study table's), labels, no shared patient."""
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.modalities import COLUMN_SEPARATOR

    holdout, theirs = read_feature_table(path)
    ours = (metadata or {}).get("settings_sha256")
    if ours and theirs.get("settings_sha256") and theirs["settings_sha256"] != ours:
        raise InputError(
            f"{path}: extracted with other PyRadiomics settings than --features (settings sha256 "
            f"{theirs['settings_sha256'][:12]} vs {ours[:12]}): extract both with the same settings"
        )
    study_columns = [c for c in table.columns if COLUMN_SEPARATOR in c]
    holdout_columns = [c for c in holdout.columns if COLUMN_SEPARATOR in c]
    lacking = [c for c in study_columns if c not in holdout_columns]
    extra = [c for c in holdout_columns if c not in study_columns]
    if lacking or extra:
        what = f"lacks {lacking[0]}" if lacking else f"has {extra[0]}, which the study's table has not"
        raise InputError(f"{path}: its feature columns differ from --features ({what})")
    shared = sorted(set(holdout["patient_id"].astype(str)) & set(table["patient_id"].astype(str)))
    if shared:
        raise InputError(
            f"{path}: {len(shared)} patient(s) are also in --features (first: {shared[0]}): a held-out "
            "table must hold other patients"
        )
    return holdout


def score_chosen(
    table: pd.DataFrame,
    chosen: Sequence,
    train_index: np.ndarray,
    test_index: np.ndarray,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refit each chosen ``(TrainConfig, cv score, trial_id)`` on ``train_index`` rows and score
    ``test_index`` rows: one summary row per configuration (metrics with 95% bootstrap intervals), and the
    test rows' predictions."""
    from mmt_tune.stats import bootstrap_interval
    from mmt_tune.training.refit import fit_configuration

    rows, predictions = [], []
    y = table["label"].to_numpy(int)[test_index]
    for config, _, trial_id in chosen:
        _, probability = fit_configuration(table, config, train_index, test_index)
        row = {
            "model": config.model,
            "present": "+".join(config.present),
            "trial_id": trial_id,
            "n_test": len(test_index),
        }
        functions = {**METRIC_FUNCTIONS, "brier": brier}  # the Brier score: calibration on held-out rows
        for metric, value in {**all_metrics(y, probability), "brier": brier(y, probability)}.items():
            low, high = bootstrap_interval(y, probability, functions[metric], seed=seed)
            row.update({f"test_{metric}": value, f"test_{metric}_low": low, f"test_{metric}_high": high})
        rows.append(row)
        ids = table.iloc[test_index][[c for c in ("patient_id", "lesion_id") if c in table.columns]]
        predictions.append(
            ids.assign(
                row=np.asarray(test_index),
                model=config.model,
                present=row["present"],
                trial_id=trial_id,
                label=y,
                probability=probability,
            )
        )
    return pd.DataFrame(rows), pd.concat(predictions, ignore_index=True)


def evaluate_holdout(
    table: pd.DataFrame,
    holdout: pd.DataFrame,
    trials: pd.DataFrame,
    modalities: Sequence[str],
    seed: int,
    folder: Path,
) -> pd.DataFrame:
    """Refit every configuration's best trial on all of ``table`` and score ``holdout``; write
    ``test.csv`` and ``test_predictions.parquet`` into ``folder``; return the summary."""
    from mmt_tune._io import atomic_path
    from mmt_tune.records import best_trials, write_tables
    from mmt_tune.training.refit import best_configurations

    best = best_trials(trials)
    if best.empty:
        return pd.DataFrame()
    chosen = [
        (config, score, trial_id)
        for (config, score), trial_id in zip(
            best_configurations(best, modalities, seed), best["trial_id"], strict=True
        )
    ]
    both = pd.concat([table, holdout[table.columns]], ignore_index=True)
    summary, predictions = score_chosen(
        both, chosen, np.arange(len(table)), np.arange(len(table), len(both)), seed
    )
    with atomic_path(folder / TEST_FILE) as tmp:
        summary.to_csv(tmp, index=False)
    write_tables({TEST_PREDICTIONS: predictions}, folder)
    return summary


def format_test(summary: pd.DataFrame) -> str:
    """One line per configuration: its held-out AUC and accuracy with intervals."""
    lines = []
    for _, row in summary.iterrows():
        cells = ", ".join(
            f"{m} {row[f'test_{m}']:.3f} [{row[f'test_{m}_low']:.3f}, {row[f'test_{m}_high']:.3f}]"
            for m in ("auc", "accuracy")
        )
        lines.append(f"  {row['model']}/{row['present']}: {cells} (n={row['n_test']})")
    return "\n".join(lines)
