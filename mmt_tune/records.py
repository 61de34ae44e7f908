"""The trials table: written by the launcher, read by the analysis; its contract and "best trial" live here.

One row per trial x fold: ``study``, ``model``, ``present`` (modalities joined by ``+``), ``trial_id``,
``config/<option>`` for every searched or fixed option, ``fold``, the five metrics and ``status`` (``ok``,
``error`` for a failed trial, ``stopped`` for one the scheduler stopped before its final report; those two
are one row without fold or metrics). Beside it: ``losses`` and ``predictions`` (per epoch and out-of-fold,
from each finished trial's final checkpoint) and ``space.json`` (each configuration's searched distributions).

Nothing here imports torch or Ray: the analysis reads these files on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mmt_tune.metrics import METRICS

if TYPE_CHECKING:
    from mmt_tune.spaces import SearchSpace

TRIALS_TABLE = "trials"
SPACE_FILE = "space.json"
#: Optuna's journal storage of every configuration's study (:func:`mmt_tune.study.search.open_storage`).
JOURNAL_FILE = "optuna.journal"
#: What the study's data was: counts, modalities, hashes, and whether it was the phantom (no IDs, no paths).
DATA_FILE = "data.json"
CONFIG_PREFIX = "config/"
#: Trial statuses of the contract: finished, failed, stopped early by the scheduler.
STATUSES = ("ok", "error", "stopped")
#: Keys of a trial's config that name its configuration rather than set an option.
TRIAL_KEYS = ("configuration", "model", "present", "pack")


@dataclass
class TrialRecord:
    """What the trials table needs of one trial, from a finished ``ResultGrid`` or a live Tune ``Trial``."""

    config: dict
    metrics: dict
    failed: bool
    path: Path
    outputs: Path | None = None  # the final checkpoint's folder: losses.csv, predictions.csv

    @property
    def trial_id(self) -> str:
        return str(self.metrics.get("trial_id", self.path.name))


def members(record: TrialRecord) -> list[TrialRecord]:
    """A pack's members as records of their own (``<trial>-<j>``, its parameters, its metrics); any other
    record as itself (:mod:`mmt_tune.study.packs`)."""
    pack = record.config.get("pack")
    if not pack:
        return [record]
    base = {k: v for k, v in record.config.items() if k != "pack"}
    scores = json.loads(record.metrics.get("members") or "[]")
    return [
        TrialRecord(
            {**base, **params},
            {**(scores[j] if j < len(scores) else {}), "trial_id": f"{record.trial_id}-{j}"},
            record.failed,
            record.path,
            record.outputs,
        )
        for j, params in enumerate(pack)
    ]


def trials_table(records: Sequence[TrialRecord], study: str) -> pd.DataFrame:
    """One row per trial x fold; a trial that failed, or that ASHA stopped early, is one row with status
    'error' or 'stopped' and no metrics. A pack's members are trials of their own."""
    rows = []
    for record in [m for r in records for m in members(r)]:
        config = record.config
        base = {
            "study": study,
            "model": config.get("model"),
            "present": "+".join(config.get("present", [])),
            "trial_id": record.trial_id,
        }
        base.update({f"{CONFIG_PREFIX}{k}": v for k, v in config.items() if k not in TRIAL_KEYS})
        folds = json.loads(record.metrics.get("fold_metrics") or "[]")
        if record.failed or not folds:  # an error, or stopped early by ASHA before its final report
            status = "error" if record.failed else "stopped"
            rows.append({**base, "fold": None, **{m: float("nan") for m in METRICS}, "status": status})
            continue
        for fold in folds:
            where = {"fold": int(fold["fold"]), "repeat": int(fold.get("repeat", 0))}
            rows.append({**base, **where, **{m: fold[m] for m in METRICS}, "status": "ok"})
    return pd.DataFrame(rows)


def trial_tables(records: Sequence[TrialRecord], study: str) -> dict[str, pd.DataFrame]:
    """Per-epoch loss curves and out-of-fold predictions of every finished trial, one table each."""
    tables: dict[str, list[pd.DataFrame]] = {"losses": [], "predictions": []}
    for record in records:
        for name, frames in tables.items():
            path = record.outputs / f"{name}.csv" if record.outputs is not None else None
            if not record.failed and path is not None and path.is_file():
                frame = pd.read_csv(path, dtype={"patient_id": str, "lesion_id": str})
                if "member" in frame.columns:  # a pack: one trial per member
                    frame = frame.assign(trial_id=[f"{record.trial_id}-{j}" for j in frame.pop("member")])
                    frame.insert(0, "trial_id", frame.pop("trial_id"))
                else:
                    frame.insert(0, "trial_id", record.trial_id)
                frame.insert(0, "present", "+".join(record.config.get("present", [])))
                frame.insert(0, "model", record.config.get("model"))
                frame.insert(0, "study", study)
                frames.append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items() if frames}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, csv: bool = False) -> None:
    """Each table as ``<name>.parquet`` (and ``.csv``), written atomically."""
    from mmt_tune._io import atomic_path

    for name, frame in tables.items():
        with atomic_path(folder / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        if csv:
            with atomic_path(folder / f"{name}.csv") as tmp:
                frame.to_csv(tmp, index=False)


def write_space(space: SearchSpace, folder: Path) -> None:
    """``space.json``: each configuration's searched parameters with their true bounds and scales.

    The trials table holds only the sampled values; the importance analysis needs the bounds and log scales
    the sampler used (fANOVA integrates over them) and reads them back with
    :meth:`mmt_tune.spaces.Distribution.from_json`.
    """
    from mmt_tune._io import write_text_atomic

    spec = {
        "study": space.name,
        "configurations": {
            c.key: {name: d.to_json() for name, d in c.parameters.items()} for c in space.configurations
        },
    }
    write_text_atomic(folder / SPACE_FILE, json.dumps(spec, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ reading
def complete_trials(trials: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Rows of trials that finished (status ok) with the objective defined on every fold."""
    ok = trials[trials["status"] == "ok"]
    keys = ["model", "present", "trial_id"]
    incomplete = ok[objective].isna().groupby([ok[k] for k in keys]).transform("any")
    return ok[~incomplete.to_numpy(dtype=bool)]


def per_trial(trials: pd.DataFrame, objective: str = "auc") -> pd.DataFrame:
    """One row per complete trial: model, present, trial_id, its hyperparameters, and mean/std of each metric
    over folds (``<metric>_mean``, ``<metric>_std``; population std, ddof=0, as the trainer reports it)."""
    complete = complete_trials(trials, objective)
    keys = ["model", "present", "trial_id"]
    configs = [c for c in trials.columns if c.startswith(CONFIG_PREFIX)]
    grouped = complete.groupby(keys, sort=False)
    metrics = grouped[list(METRICS)]
    means, stds = metrics.mean(), metrics.std(ddof=0)
    stats = pd.concat(
        [means.add_suffix("_mean"), stds.add_suffix("_std"), grouped[objective].count().rename("n_folds")],
        axis=1,
    )
    stats = stats[[c for m in METRICS for c in (f"{m}_mean", f"{m}_std")] + ["n_folds"]]
    if configs:
        stats = stats.join(grouped[configs].first())
    return stats.reset_index()


def rank_trials(candidates: pd.DataFrame, objective: str = "auc") -> pd.DataFrame:
    """Trials of :func:`per_trial` best first: the highest mean ``objective`` over folds; ties go to the
    smaller spread over folds, then the smaller trial id. The one definition of "best trial"."""
    return candidates.sort_values(
        [f"{objective}_mean", f"{objective}_std", "trial_id"], ascending=[False, True, True], kind="stable"
    )


def best_trials(trials: pd.DataFrame, objective: str = "auc") -> pd.DataFrame:
    """The best complete trial of each configuration (rows of :func:`per_trial`, ranked by
    :func:`rank_trials`), sorted by model and present modalities."""
    per = per_trial(trials, objective)
    if per.empty:
        return per
    best = rank_trials(per, objective).groupby(["model", "present"], sort=False).head(1)
    return best.sort_values(["model", "present"], kind="stable").reset_index(drop=True)
