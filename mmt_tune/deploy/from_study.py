"""From a finished study to a bundle: the chosen configurations and their refits on all rows.

:func:`study_choices` reads each configuration's best trial (the study's ranking,
:func:`mmt_tune.records.rank_trials`) as a :class:`~mmt_tune.config.TrainConfig`; :func:`fit_all` refits
them (:func:`mmt_tune.training.refit.fit_configuration`) on every row of the table into a
:class:`~mmt_tune.deploy.bundle.Bundle`, leaving out what cannot be saved without pickle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError

if TYPE_CHECKING:
    from mmt_tune.deploy.bundle import Bundle


def study_choices(
    folder: Path, configurations: Sequence[str] | None = None, objective: str = "auc"
) -> tuple[list[tuple[TrainConfig, float]], dict, dict]:
    """Each configuration's best trial of the study in ``folder`` as a :class:`TrainConfig` with its mean
    cross-validated ``objective``; and the study's identity (study.json) and data description (data.json)."""
    from mmt_tune.records import DATA_FILE, TRIALS_TABLE, best_trials
    from mmt_tune.study.guards import IDENTITY_FILE

    table = folder / f"{TRIALS_TABLE}.parquet"
    identity_file = folder / IDENTITY_FILE
    if not table.is_file() or not identity_file.is_file():
        raise InputError(f"{folder}: not a finished study (no {table.name} or {IDENTITY_FILE})")
    identity = json.loads(identity_file.read_text())
    data = json.loads((folder / DATA_FILE).read_text()) if (folder / DATA_FILE).is_file() else {}
    from mmt_tune.training.refit import best_configurations

    trials = pd.read_parquet(table)
    if "outer_fold" in trials.columns:
        raise InputError(
            f"{folder}: a nested study estimates performance; fit the final model from a flat study on all rows "
            "(the same space without --outer-folds)"
        )
    best = best_trials(trials, objective)
    if best.empty:
        raise InputError(f"{table}: no completed trial to refit")
    keys = list(best["model"] + "/" + best["present"])
    if configurations:  # each as the study names it, whatever order its sequences were typed in
        canonical = {_as_set(k): k for k in keys}
        unknown = [c for c in configurations if _as_set(c) not in canonical]
        if unknown:
            raise InputError(f"{folder}: no completed configuration {unknown[0]!r} (have: {', '.join(keys)})")
        configurations = [canonical[_as_set(c)] for c in configurations]
    modalities = tuple(data.get("modalities") or ()) or None
    chosen = best_configurations(best, modalities, identity.get("seed", 0), configurations, objective)
    return chosen, identity, data


def _as_set(key: str) -> tuple[str, frozenset[str]]:
    model, _, present = key.partition("/")
    return model, frozenset(present.split("+"))


def fit_all(
    table: pd.DataFrame,
    chosen: Sequence[tuple[TrainConfig, float | None]],
    members: int = 1,
    log: Callable[[str], None] = print,
) -> Bundle:
    """Fit every chosen configuration on all rows of ``table``; a :class:`~mmt_tune.deploy.bundle.Bundle` of the
    ones that can be saved safely (the others are named in ``log``)."""
    from mmt_tune.deploy.bundle import Bundle, savable
    from mmt_tune.training.refit import fit_configuration

    fitted, scores = {}, {}
    rows = np.arange(len(table))
    for config, score in chosen:
        start = time.perf_counter()
        result, _ = fit_configuration(table, config, rows, members=members)
        if not savable(result):
            log(f"skipped {result.key}: a {config.spec.label} has no pickle-free format (not bundled)")
            continue
        fitted[result.key], scores[result.key] = result, score
        log(
            f"fitted {result.key} on {len(table)} rows x {members} member(s) in {time.perf_counter() - start:.1f} s"
        )
    if not fitted:
        raise InputError("no configuration could be bundled")
    return Bundle(fitted, scores=scores)
