"""Everything a study checks and decides before Ray starts: :func:`prepare_study`.

The feature table is read, the space fitted to its sequences (and cut to ``--configuration``), the options
and every configuration checked against the table, the held-out table read, and the study's folders and
identity fixed. A bad input is one :class:`~mmt_tune.errors.InputError` here, never a failed trial later.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from mmt_tune.errors import InputError
from mmt_tune.spaces import SearchSpace
from mmt_tune.study.guards import check_inputs, study_identity, study_space
from mmt_tune.study.options import StudyOptions, Where


@dataclass
class PreparedStudy:
    """A checked study, ready to run flat (:func:`mmt_tune.study.launcher.run_flat`) or nested."""

    space: SearchSpace  # fitted to the table's sequences and cut to the chosen configurations
    source: str | Path  # the space as given (a shipped name or a YAML path)
    features: Path
    table: pd.DataFrame
    metadata: dict
    where: Where
    identity: dict
    holdout: pd.DataFrame | None = None


def prepare_study(space: str | Path, features: str | Path, opts: StudyOptions) -> PreparedStudy:
    """Read and check a study's inputs (see the module docstring)."""
    from mmt_tune._io import check_writable
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.modalities import table_modalities

    check_options(opts)
    table, metadata = read_feature_table(features)
    # The study's modalities are its table's: a configuration's missing modalities are the table's others.
    study = study_space(space, table_modalities(list(table.columns)), str(features), opts.subsets)
    for note in study.notes:
        print(f"note: {note}", file=sys.stderr)
    study = _chosen(study, opts)
    check_inputs(
        study,
        table,
        str(features),
        {"seed": opts.seed, "epochs": opts.epochs, "folds": opts.folds, "repeats": opts.repeats},
    )
    holdout = None
    if opts.test_features is not None:
        from mmt_tune.study.holdout import read_holdout

        holdout = read_holdout(opts.test_features, table, metadata)
    study = replace(study, name=study_name(space, study, opts.name))
    where = study_folders(study.name, opts.storage)
    check_writable(where.tables, "results folder" if where.remote else "--storage")
    identity = study_identity(study, features, opts.samples, opts.seed, opts.epochs, opts.folds, opts.repeats)
    identity["outer_folds"] = opts.outer_folds
    return PreparedStudy(study, space, Path(features), table, metadata, where, identity, holdout)


def check_options(opts: StudyOptions) -> None:
    """The options that are wrong whatever the table: one line each."""
    for flag, value in (
        ("--num-samples", opts.samples),
        ("--pack-trials", opts.pack_trials),
        ("--report-every", opts.report_every),
    ):
        if value < 1:
            raise InputError(f"{flag} must be >= 1 (got {value})")
    if opts.compile is not None:
        from mmt_tune.training.trainer import check_compile_backend

        check_compile_backend(opts.compile)  # before Ray starts, not once per failed trial
    if opts.pack_trials > 1 and opts.asha:
        raise InputError(
            "--pack-trials: a pack has no per-trial intermediate results, ASHA has nothing to stop early"
        )
    if not 0.0 <= opts.modality_dropout < 1.0:
        raise InputError(f"--modality-dropout must be in [0, 1) (got {opts.modality_dropout})")
    if opts.test_features is not None and opts.outer_folds:
        raise InputError(
            "--test-features and --outer-folds: choose one way to score rows the search never saw"
        )


def _chosen(study: SearchSpace, opts: StudyOptions) -> SearchSpace:
    """The space cut to ``--configuration`` (all of it without)."""
    if not opts.configurations:
        return study
    chosen = set()
    for key in opts.configurations:  # its sequences in any order
        try:
            chosen.add(study.configuration(key).key)
        except KeyError:
            raise InputError(f"{study.source}: no configuration {key!r} in this space") from None
    return replace(study, configurations=tuple(c for c in study.configurations if c.key in chosen))


def study_name(space: str | Path, study: SearchSpace, name: str | None) -> str:
    """One name for the study's folder, its trials table's ``study`` column, its report and its W&B group:
    ``--name``, else the space file's stem (``my-space.yaml`` -> ``my-space``), else the space's ``name:``
    (a shipped space, given by name, is its own stem)."""
    if name:
        return name
    path = Path(str(space))
    if path.suffix in (".yaml", ".yml"):
        return path.stem
    return study.name


def study_folders(name: str, storage: str | Path) -> Where:
    """Where a study's files go. Our tables are written with local file I/O: beside the experiment, or under
    ./results/<name> when Tune stores the experiment in the cloud."""
    remote = "://" in str(storage)
    storage = storage if remote else Path(storage).expanduser().resolve()
    tables = Path("results", name).resolve() if remote else Path(storage, name)
    return Where(name, storage, f"{storage}/{name}", tables)
