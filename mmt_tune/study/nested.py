"""Nested cross-validation: ``python -m mmt_tune.run ... --outer-folds K``.

The best of many trials, scored on the folds that chose it, is optimistic. Nested CV removes that bias:
the rows are split into K stratified outer folds (seeded, by patient); for each outer fold a complete
study runs on its training rows only (the inner CV is the Optuna objective, as in a flat study), then each
configuration's inner-best trial is refitted on all outer training rows and scored on the outer test rows,
which no part of the search saw. The outer scores are the estimate to report; the inner best-trial scores
beside them show the optimism.

Layout: ``<study>/outer_<k>/`` is a complete flat study (its own Tune experiment, trials table, Optuna
journal, W&B runs) on ``outer_<k>/features.parquet`` (the outer training rows; local, like the rest of the
results folder), with ``outer.csv`` once its outer test rows are scored. ``<study>/nested.csv`` (one row per
configuration x outer fold), ``outer_predictions.parquet`` and a combined ``trials.parquet`` with an
``outer_fold`` column sit at the top. ``--resume`` skips scored outer folds and resumes the interrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune.errors import InputError

if TYPE_CHECKING:
    from mmt_tune.study.options import StudyOptions, StudyResult
    from mmt_tune.study.prepare import PreparedStudy

NESTED_FILE = "nested.csv"
OUTER_PREDICTIONS = "outer_predictions"
OUTER_FILE = "outer.csv"


def outer_seed(seed: int) -> int:
    """The outer split's seed: not the inner folds' (which use the study seed on the outer training rows)."""
    return seed + 7_000_001


def run_nested(
    prepared: PreparedStudy, opts: StudyOptions, run_inner: Callable[..., StudyResult] | None = None
) -> StudyResult:
    """Run every outer fold's study and score it (see the module docstring), holding the study folder's lock.

    ``run_inner(prepared, options)`` runs one outer fold's flat study (default: the launcher's
    :func:`~mmt_tune.study.launcher.run_flat`; a test gives a stand-in without Ray)."""
    from mmt_tune._io import write_text_atomic
    from mmt_tune.data.table import describe_table
    from mmt_tune.records import DATA_FILE
    from mmt_tune.study.guards import IDENTITY_FILE, StudyLock, check_identity
    from mmt_tune.study.options import StudyResult
    from mmt_tune.training.preprocess import make_folds

    if run_inner is None:
        from mmt_tune.study.launcher import run_flat as run_inner
    if opts.outer_folds < 2:
        raise InputError(f"--outer-folds must be >= 2 (got {opts.outer_folds})")
    if "://" in str(opts.storage):
        raise InputError("--outer-folds keeps its studies in a local --storage folder")
    table, folder = prepared.table, prepared.where.tables
    with StudyLock(folder):
        check_identity(folder, prepared.identity, opts.resume)
        splits = make_folds(table, opts.outer_folds, outer_seed(opts.seed))
        write_text_atomic(folder / IDENTITY_FILE, json.dumps(prepared.identity, indent=2) + "\n")
        data = {
            "phantom": opts.phantom,
            "features_sha256": prepared.identity["features_sha256"],
            **describe_table(table, prepared.metadata),
            "outer_folds": opts.outer_folds,
        }
        write_text_atomic(folder / DATA_FILE, json.dumps(data, indent=2) + "\n")
        errors: dict[str, str] = {}
        parts = [
            _outer_fold(k, split, prepared, opts, tuple(data["modalities"]), run_inner, errors)
            for k, split in enumerate(splits)
        ]
        trials, nested = _combine(folder, parts)
    return StudyResult(folder, trials, errors, nested=nested)


def _outer_fold(
    k: int,
    split: tuple[np.ndarray, np.ndarray],
    prepared: PreparedStudy,
    opts: StudyOptions,
    modalities: tuple[str, ...],
    run_inner: Callable[..., StudyResult],
    errors: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Outer fold ``k``: its study on the outer training rows, then the chosen configurations refitted on them
    and scored on its test rows (skipped when ``--resume`` finds it scored); its scores, predictions, trials."""
    from mmt_tune._io import atomic_path
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.records import TRIALS_TABLE, best_trials, write_tables
    from mmt_tune.study.holdout import score_chosen
    from mmt_tune.study.prepare import prepare_study
    from mmt_tune.training.refit import best_configurations

    table, folder = prepared.table, prepared.where.tables
    train, test = split
    sub = folder / f"outer_{k}"
    features = sub / "features.parquet"
    done = sub / OUTER_FILE
    if not (opts.resume and done.is_file()):
        sub.mkdir(parents=True, exist_ok=True)
        if not features.is_file():
            write_feature_table(table.iloc[train].reset_index(drop=True), features, prepared.metadata)
        inner = replace(
            opts,
            outer_folds=None,
            name=sub.name,
            storage=folder,
            resume=opts.resume and (sub / "study.json").is_file(),
            test_features=None,
            robustness=False,
        )
        if opts.progress:
            print(f"outer fold {k + 1}/{opts.outer_folds}: study on {len(train)} rows, scored on {len(test)}")
        inner_study = prepare_study(prepared.source, features, inner)
        # its folder is outer_<k>, its name the study's: one study column and W&B group for every outer fold
        inner_study = replace(inner_study, space=replace(inner_study.space, name=prepared.space.name))
        result = run_inner(inner_study, inner)
        errors.update(result.errors)
        best = best_trials(result.trials)
        if best.empty:
            raise InputError(f"outer fold {k}: no trial completed: {next(iter(result.errors.values()), '?')}")
        chosen = [
            (config, score, trial_id)
            for (config, score), trial_id in zip(
                best_configurations(best, modalities, opts.seed), best["trial_id"], strict=True
            )
        ]
        summary, outer_predictions = score_chosen(table, chosen, train, test, opts.seed)
        summary["inner_auc_mean"] = best["auc_mean"].to_numpy()
        ok = result.trials[result.trials["status"] == "ok"]
        counts = ok.groupby(["model", "present"])["trial_id"].nunique()
        summary["n_trials"] = [
            int(counts.get((m, p), 0)) for m, p in zip(best["model"], best["present"], strict=True)
        ]
        summary.insert(0, "outer_fold", k)
        write_tables({OUTER_PREDICTIONS: outer_predictions.assign(outer_fold=k)}, sub)
        with atomic_path(done) as tmp:
            summary.to_csv(tmp, index=False)
    return (
        pd.read_csv(done, dtype={"trial_id": str, "present": str}),
        pd.read_parquet(sub / f"{OUTER_PREDICTIONS}.parquet"),
        pd.read_parquet(sub / f"{TRIALS_TABLE}.parquet").assign(outer_fold=k),
    )


def _combine(folder: Path, parts: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``nested.csv``, the combined trials table (with ``outer_fold``) and outer predictions at the top."""
    from mmt_tune._io import atomic_path
    from mmt_tune.records import TRIALS_TABLE, write_tables

    nested = pd.concat([p[0] for p in parts], ignore_index=True)
    with atomic_path(folder / NESTED_FILE) as tmp:
        nested.to_csv(tmp, index=False)
    combined = pd.concat([p[2] for p in parts], ignore_index=True)
    write_tables({TRIALS_TABLE: combined}, folder, csv=True)
    write_tables({OUTER_PREDICTIONS: pd.concat([p[1] for p in parts], ignore_index=True)}, folder)
    if (folder / "outer_0" / "space.json").is_file():
        (folder / "space.json").write_text((folder / "outer_0" / "space.json").read_text())
    return combined, nested


def nested_summary(nested: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: outer AUC mean ± std over outer folds, the inner best-trial AUC, the optimism."""
    grouped = nested.groupby(["model", "present"], sort=False)
    out = grouped.agg(
        outer_auc=("test_auc", "mean"),
        outer_auc_std=("test_auc", lambda v: float(np.std(v))),
        inner_auc=("inner_auc_mean", "mean"),
        outer_folds=("outer_fold", "nunique"),
    ).reset_index()
    out["optimism"] = out["inner_auc"] - out["outer_auc"]
    return out
