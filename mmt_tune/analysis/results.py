"""The one place that turns a study's results into tidy DataFrames.

Input is a results folder written by ``python -m mmt_tune.run`` (``trials.parquet`` or ``trials.csv``, and
when present ``losses.parquet``, ``predictions.parquet`` and ``space.json``), or any trials table that
follows the contract of docs/design.md ("Trials table"), as Parquet or CSV, so that a study run elsewhere can be analysed too:

one row per trial x fold with ``study``, ``model``, ``present`` (``T1WI+FLAIR``), ``trial_id``, ``fold``,
``config/<name>`` for every hyperparameter, the metric columns ``accuracy``, ``auc``, ``precision``,
``sensitivity``, ``specificity``, and optionally ``status`` (``ok``, ``error``, ``stopped``).

Problems with the input raise :class:`mmt_tune.errors.InputError` with one line naming the file, and the
row or column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune import models
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.modalities import MODALITIES
from mmt_tune.records import CONFIG_PREFIX, DATA_FILE, STATUSES
from mmt_tune.spaces import Distribution, load_space

REQUIRED = ("model", "present", "trial_id", "fold")


def recorded_option(rows: pd.DataFrame, name: str, default: int) -> int:
    """A run setting the trials table records per row (``config/folds``, ``config/repeats``): its first value
    in ``rows``, or ``default`` when the table does not record it."""
    column = f"{CONFIG_PREFIX}{name}"
    if column in rows.columns and rows[column].notna().any():
        return int(rows[column].dropna().iloc[0])
    return default


@dataclass
class Study:
    """A study's tables. ``space`` maps ``model/present`` to its parameters' bounds (empty when unknown)."""

    source: Path
    trials: pd.DataFrame
    losses: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    space: dict[str, dict[str, Distribution]] = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # data.json: counts, modalities, hashes, phantom or not
    test: pd.DataFrame | None = None  # test.csv (--test-features): held-out metrics per configuration
    robustness: pd.DataFrame | None = None  # robustness.csv: fold metrics per test-time modality subset
    nested: pd.DataFrame | None = None  # nested.csv (--outer-folds): configuration x outer fold scores
    plan: dict = field(default_factory=dict)  # study.json: planned trials per configuration, configurations

    @property
    def modalities(self) -> tuple[str, ...]:
        """The study's modalities: data.json's, else those its configurations name (the paper's order)."""
        if self.data.get("modalities"):
            return tuple(self.data["modalities"])
        named = list(dict.fromkeys(p for value in self.trials["present"] for p in str(value).split("+")))
        named += [p for key in self.space for p in key.partition("/")[2].split("+") if p not in named]
        return MODALITIES if set(named) <= set(MODALITIES) else tuple(named)


def _read_plan(path: Path) -> dict:
    """``samples`` (trials planned per configuration) and ``configurations`` from a study's study.json;
    empty when there is none or it cannot be read (a report still works without it)."""
    import json

    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    samples = recorded.get("samples")
    configurations = recorded.get("configurations")
    return {
        "samples": samples if isinstance(samples, int) and samples > 0 else None,
        "configurations": configurations if isinstance(configurations, list) else None,
    }


def configuration_key(model: str, present: str) -> str:
    return f"{model}/{present}"


def load_study(path: str | Path, space: str | Path | None = None, study: str | None = None) -> Study:
    """Read a results folder or a trials table (Parquet/CSV); ``space`` overrides the folder's ``space.json``
    (a ``space.json`` written by a study, or a search-space YAML). A table holding several studies needs
    ``study`` to choose one."""
    path = Path(path)
    if path.is_dir():
        table = next(
            (path / f"trials.{ext}" for ext in ("parquet", "csv") if (path / f"trials.{ext}").is_file()), None
        )
        if table is None:
            raise InputError(
                f"{path}: no trials.parquet or trials.csv here (give a results folder written by "
                "python -m mmt_tune.run, or a trials table file)"
            )
        folder = path
    elif path.is_file():
        table, folder = path, None
    else:
        raise InputError(f"{path}: no such file or folder")
    data = _read_data(folder / DATA_FILE) if folder is not None else {}
    trials = select_study(read_trials(table, data.get("modalities")), table, study)
    if not ((trials["status"] == "ok") & trials[list(METRICS)].notna().any(axis=1)).any():
        counts = ", ".join(f"{n} {s}" for s, n in trials.groupby("status")["trial_id"].nunique().items())
        raise InputError(f"{table}: no trial completed ({counts or 'no trials'}): nothing to analyse")
    study = Study(source=path, trials=trials, data=data)
    if folder is not None:
        study.losses = _read_optional(folder / "losses.parquet")
        study.predictions = _read_optional(folder / "predictions.parquet")
        study.plan = _read_plan(folder / "study.json")
        if (folder / "test.csv").is_file():
            study.test = pd.read_csv(folder / "test.csv", dtype={"trial_id": str, "present": str})
        if (folder / "nested.csv").is_file():
            study.nested = pd.read_csv(folder / "nested.csv", dtype={"trial_id": str, "present": str})
            outer = _read_optional(folder / "outer_predictions.parquet")
            study.predictions = (
                None if outer is None else outer.assign(trial_id="nested", fold=outer["outer_fold"])
            )
        if (folder / "robustness.csv").is_file():
            study.robustness = pd.read_csv(
                folder / "robustness.csv", dtype={"trial_id": str, "subset": str, "trained": str}
            )
        if (folder / "space.json").is_file() and space is None:
            study.space = read_space(folder / "space.json")
    if space is not None:
        study.space = read_space(space)
    return study


def _read_data(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def read_trials(path: str | Path, modalities: Sequence[str] | None = None) -> pd.DataFrame:
    """A trials table, validated against the contract and normalised (canonical modality order, a status).
    ``modalities``: the study's, when known (data.json); otherwise the names the table uses."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype={"trial_id": str, "present": str, "model": str})
        else:
            raise InputError(f"{path}: a trials table must be .parquet or .csv")
    except InputError:
        raise
    except Exception as exc:  # pyarrow / pandas parser errors: many classes, one message
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read the trials table ({first})") from None
    for column in REQUIRED:
        if column not in frame.columns:
            raise InputError(
                f"{path}: trials table has no {column!r} column (the trials-table contract, docs/design.md)"
            )
    metrics = [m for m in METRICS if m in frame.columns]
    if not metrics:
        raise InputError(f"{path}: trials table has none of the metric columns {', '.join(METRICS)}")
    frame = frame.copy()
    frame["trial_id"] = frame["trial_id"].astype(str)
    frame["model"] = frame["model"].astype(str)
    if modalities is None:
        named = [
            p
            for value in frame["present"]
            if isinstance(value, str)
            for p in value.replace(",", "+").split("+")
        ]
        named = list(dict.fromkeys(p for p in named if p))
        modalities = MODALITIES if set(named) <= set(MODALITIES) else tuple(named)
    frame["present"] = [
        _canonical_present(value, path, i, tuple(modalities)) for i, value in enumerate(frame["present"])
    ]
    frame = _checked_metrics(frame, metrics, path)
    if "status" not in frame.columns:
        frame["status"] = "ok"
    frame["status"] = frame["status"].fillna("ok").astype(str)
    unknown = ~frame["status"].isin(STATUSES)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(
            f"{path}: row {_row(path, row)}: status {frame['status'].iloc[row]!r} is not one of "
            f"{', '.join(STATUSES)}"
        )
    if "study" not in frame.columns:
        frame["study"] = path.stem
    frame["study"] = frame["study"].astype(str)
    keys = ["study", "model", "present", "trial_id", "fold"]
    repeated = frame.duplicated(keys)
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise InputError(
            f"{path}: row {_row(path, row)}: a second row for study {frame['study'].iloc[row]}, "
            f"{frame['model'].iloc[row]}/{frame['present'].iloc[row]}, trial {frame['trial_id'].iloc[row]}, "
            f"fold {frame['fold'].iloc[row]}"
        )
    return frame


def _checked_metrics(frame: pd.DataFrame, metrics: list[str], path: Path) -> pd.DataFrame:
    """The metric columns as numbers in [0, 1] (absent ones NaN); the first bad cell is one error naming
    its row."""
    for metric in metrics:
        values = pd.to_numeric(frame[metric], errors="coerce")
        bad = values.isna() & frame[metric].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path}: row {_row(path, row)}: {metric} is not a number ({frame[metric].iloc[row]!r})"
            )
        frame[metric] = values
    for metric in METRICS:
        if metric not in frame.columns:
            frame[metric] = np.nan
    for metric in metrics:
        outside = (frame[metric] < 0) | (frame[metric] > 1)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise InputError(
                f"{path}: row {_row(path, row)}: {metric} {frame[metric].iloc[row]} is outside [0, 1]"
            )
    return frame


def select_study(trials: pd.DataFrame, path: Path, study: str | None) -> pd.DataFrame:
    """The rows of one study: the only one in the table, or the one ``study`` names."""
    studies = sorted(trials["study"].unique())
    if study is not None:
        if study not in studies:
            raise InputError(f"{path}: no study {study!r} in this table (it has: {', '.join(studies)})")
        return trials[trials["study"] == study].reset_index(drop=True)
    if len(studies) > 1:
        raise InputError(
            f"{path}: the table holds {len(studies)} studies ({', '.join(studies)}); choose one with --study"
        )
    return trials


def _row(path: Path, index: int) -> str:
    """A row number a person finds in the file: CSV line numbers count the header."""
    return str(index + 2) if path.suffix == ".csv" else str(index)


def _canonical_present(value: object, path: Path, index: int, modalities: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{path}: row {_row(path, index)}: present is empty (expected e.g. T1WI+FLAIR)")
    parts = value.replace(",", "+").split("+")
    for part in parts:
        if part not in modalities:
            raise InputError(
                f"{path}: row {_row(path, index)}: present names unknown modality {part!r} "
                f"(the study's: {', '.join(m for m in modalities if m)})"
            )
    return "+".join(m for m in modalities if m in parts)


def _read_optional(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:
        raise InputError(
            f"{path}: cannot read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None


def read_space(path: str | Path) -> dict[str, dict[str, Distribution]]:
    """Parameter bounds per configuration from a study's ``space.json`` or a search-space YAML."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text())
            configurations = raw["configurations"]
            return {
                key: {name: Distribution.from_json(spec) for name, spec in parameters.items()}
                for key, parameters in configurations.items()
            }
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: not a study's space.json ({type(exc).__name__}: {exc})") from None
    # A search-space YAML (or a shipped name), validated by mmt_tune.spaces.
    return {c.key: dict(c.parameters) for c in load_space(path).configurations}


def configurations_in(trials: pd.DataFrame, space: dict | None = None) -> list[tuple[str, str]]:
    """Every (model, present) of the trials table and the space, in the paper's table order."""
    seen = {(m, p) for m, p in zip(trials["model"], trials["present"], strict=True)}
    for key in space or {}:
        model, _, present = key.partition("/")
        seen.add((model, present))
    return sorted(seen, key=table_order)


def table_order(item: tuple[str, str]) -> tuple:
    model, present = item
    parts = present.split("+")
    order = models.names()  # registration order; models this process does not know come last
    rank = order.index(model) if model in order else len(order)
    return (rank, model, len(parts), [MODALITIES.index(p) for p in parts if p in MODALITIES])


def model_label(model: str) -> str:
    return models.label(model)


def baseline_models() -> tuple[str, ...]:
    """The classical baselines every deep configuration is compared with (on the same present modalities)."""
    return models.with_role("baseline")
