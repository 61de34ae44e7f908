"""Checks a study makes before Ray starts: the inputs fit every configuration, a resumed study is the same
study, and no other run uses its folder."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mmt_tune.errors import InputError

if TYPE_CHECKING:
    from mmt_tune.spaces import Configuration, SearchSpace

IDENTITY_FILE = "study.json"
#: What a resumed study must share with the run that started it (--num-samples is checked separately).
IDENTITY_KEYS = (
    "space",
    "space_sha256",
    "features_sha256",
    "configurations",
    "seed",
    "epochs",
    "folds",
    "repeats",
    "outer_folds",
)


def study_space(
    space: str | Path, modalities: Sequence[str] | None, source: str, subsets: int | None = None
) -> SearchSpace:
    """The search space as this feature table (with ``modalities``; ``source`` names it) can run it.

    A space that lists its ``modalities:``, or whose explicit configurations name only the paper's
    sequences, keeps them, and the table must have each (a configuration names the one it lacks); a space of
    rules only (``present: every``) or over other sequences takes the table's. ``subsets`` caps the rules.
    """
    from mmt_tune.modalities import MODALITIES
    from mmt_tune.spaces import declares_modalities, load_space, named_sequences

    if modalities is None:
        return load_space(space, subsets=subsets)
    declared = declares_modalities(space)
    named = named_sequences(space)
    if not declared and (not named or not set(named) <= set(MODALITIES)):
        return load_space(space, modalities=modalities, subsets=subsets)  # the table's own sequences
    try:
        study = load_space(space, subsets=subsets)
    except InputError:
        return load_space(space, modalities=modalities, subsets=subsets)
    for modality in study.modalities:
        if modality not in modalities:
            from mmt_tune.config import TrainConfig

            for c in study.configurations:
                used = TrainConfig.from_options(
                    c.model, c.present, {}, modalities=study.modalities
                ).modalities_used
                if modality in used:
                    raise InputError(
                        f"{source}: configuration {c.key}: feature table has no columns for modality {modality} "
                        f"(its modalities: {', '.join(modalities)})"
                    )
    return study


def check_inputs(space: SearchSpace, table: pd.DataFrame, source: str, overrides: dict) -> None:
    """Validate every configuration against the table: one line naming the configuration."""
    from mmt_tune.config import TrainConfig, accepted_options
    from mmt_tune.training.crossval import check_table

    for configuration in space.configurations:
        options = dict(configuration.fixed)
        options.update({name: d.example() for name, d in configuration.parameters.items()})
        accepted = accepted_options(configuration.model)
        options.update({k: v for k, v in overrides.items() if v is not None and k in accepted})
        try:
            config = TrainConfig.from_options(
                configuration.model, configuration.present, options, modalities=space.modalities
            )
            check_table(table, config)
        except InputError as exc:
            raise InputError(f"{source}: configuration {configuration.key}: {exc}") from None
    for note in table_notes(table, space.configurations[0], overrides):
        print(f"note: {note}", file=sys.stderr)


def table_notes(table: pd.DataFrame, configuration: Configuration, overrides: dict) -> list[str]:
    """What the study will do differently because of the table: grouped folds, fewer SMOTE neighbours."""
    import numpy as np

    from mmt_tune.training.preprocess import make_folds, smote_neighbours

    notes = []
    if table["patient_id"].duplicated().any():
        notes.append(
            f"{table['patient_id'].duplicated().sum()} rows repeat a patient_id: folds are grouped by patient "
            "(stratified group k-fold), so no patient is in two folds"
        )
    folds = overrides.get("folds") or configuration.fixed.get("folds") or 5
    seed = overrides.get("seed") or 0
    wanted = int(configuration.fixed.get("smote_neighbors", 5))
    labels = table["label"].to_numpy()
    smallest = min(smote_neighbours(labels[train], wanted) for train, _ in make_folds(table, folds, seed))
    if smallest < wanted:
        minority = int(np.bincount(labels, minlength=2).min())
        notes.append(
            f"Borderline-SMOTE uses {max(smallest, 0)} neighbours instead of {wanted} in the smallest training "
            f"fold (the minority class has {minority} rows in the table)"
            + ("; no oversampling there" if smallest < 1 else "")
        )
    return notes


def study_identity(
    space: SearchSpace,
    features: str | Path,
    samples: int,
    seed: int,
    epochs: int | None,
    folds: int | None,
    repeats: int | None = None,
) -> dict:
    """The study's identity: search space (name and content), feature table (content hash), budget, seeds."""
    import hashlib

    from mmt_tune.radiomics.cache import file_sha256

    return {
        "space": space.name,
        "space_sha256": hashlib.sha256(Path(space.source).read_bytes()).hexdigest(),
        "features_sha256": file_sha256(Path(features)),
        "configurations": [c.key for c in space.configurations],
        "seed": seed,
        "epochs": epochs,
        "folds": folds,
        "repeats": repeats,
        "samples": samples,
    }


def check_identity(folder: Path, identity: dict, resume: bool) -> None:
    """On --resume, refuse arguments that differ from the ones the study was started with (study.json)."""
    path = folder / IDENTITY_FILE
    if not resume or not path.is_file():
        return
    recorded = json.loads(path.read_text())
    names = {
        "space": "--space",
        "space_sha256": "the search-space file's content",
        "features_sha256": "--features (the table's content)",
        "configurations": "the configurations",
        "seed": "--seed",
        "epochs": "--epochs",
        "folds": "--folds",
        "repeats": "--repeats",
        "outer_folds": "--outer-folds",
    }
    for key in IDENTITY_KEYS:
        if recorded.get(key) != identity.get(key):
            raise InputError(
                f"{folder}: --resume with different {names[key]} than the study was started with "
                f"({recorded.get(key)!r} != {identity.get(key)!r}); use the same arguments, or a new --name"
            )
    if recorded.get("samples") != identity["samples"]:
        raise InputError(
            f"{folder}: --resume cannot change --num-samples (started with {recorded.get('samples')}, "
            f"given {identity['samples']}): Tune keeps a study's trial budget; start a new --name for more trials"
        )


class StudyLock:
    """An exclusive lock on a study's folder for the life of one run (``.lock``, flock; freed if it dies)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.handle = None

    def __enter__(self) -> StudyLock:
        import fcntl

        self.handle = open(self.path, "a+")  # noqa: SIM115 - held open for the run's lifetime
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise InputError(
                f"{self.path.parent}: another run is using this study ({holder}); wait for it to finish, "
                "or choose another --name or --storage"
            ) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
