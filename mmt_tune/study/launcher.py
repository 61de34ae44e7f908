"""Launch a study: every configuration of a search space as its own Optuna study, all in one Ray Tune run.

Every configuration gets its own seeded TPE study and the same budget
(:class:`mmt_tune.study.search.PerConfigurationSearch`). Each trial cross-validates one configuration with
packed folds (:mod:`mmt_tune.study.trainable`). At the end the launcher writes the trials table (one row per
trial x fold, :mod:`mmt_tune.records`) as Parquet and CSV beside the Tune experiment.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mmt_tune.errors import InputError
from mmt_tune.records import (
    DATA_FILE,
    JOURNAL_FILE,
    TRIALS_TABLE,
    TrialRecord,
    best_trials,
    trial_tables,
    trials_table,
    write_space,
    write_tables,
)
from mmt_tune.study.guards import (
    IDENTITY_FILE,
    StudyLock,
    check_identity,
    check_inputs,
    study_identity,
    study_space,
)

if TYPE_CHECKING:
    from ray.tune import ResultGrid
    from ray.tune.experiment import Trial

    from mmt_tune.spaces import SearchSpace


@dataclass(frozen=True)
class StudyOptions:
    """How to run a study (the command line's options, and :func:`run_study`'s keyword arguments)."""

    samples: int = 10  # trials per configuration
    epochs: int | None = None  # override the space's epochs
    folds: int | None = None  # override the folds (default 5)
    repeats: int | None = None  # repeated CV: k-fold splits from this many seeds (default 1)
    seed: int = 0  # folds, samplers, initialisation
    address: str | None = None  # an existing Ray cluster (default: start a local instance)
    storage: str | Path = "results"  # where Tune writes the experiment (a path or a URI)
    name: str | None = None  # experiment name (default: the space's name)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    configurations: Sequence[str] | None = None  # run only these configurations of the space
    checkpoint_every: int = 10  # epochs between a trial's checkpoints
    report_every: int = 10  # epochs between a trial's reports to Tune (every epoch still reaches W&B)
    compile: str | None = None  # a torch.compile backend for every deep trial's training step
    resume: bool = False  # continue the interrupted experiment <storage>/<name>
    wandb: str = "offline"  # off, offline or online
    wandb_project: str = "mmt-tune"
    asha: bool = False  # per-configuration ASHA early stopping
    verbose: int = 1  # Tune's: 0 silent, 1 status tables
    progress: bool = False  # one progress bar of finished trials instead
    phantom: bool = (
        False  # the features are the phantom cohort's (synthetic): data.json and the report say so
    )
    # A held-out table: after the search each configuration's best trial is refitted on all rows and scored
    # on it (test.csv); the search never sees it.
    test_features: str | Path | None = None
    # After the search: the full-modality MFN-VAE's folds scored with every modality subset (robustness.csv),
    # and with modality_dropout > 0 the same configuration retrained with modality dropout beside it.
    robustness: bool = True
    modality_dropout: float = 0.0
    # Nested CV: a study per outer fold on its training rows, the inner-best trials scored on its test rows
    outer_folds: int | None = None
    # Trials per pack: a Tune trial trains up to this many of a configuration's trials as one model
    pack_trials: int = 1


@dataclass
class StudyResult:
    experiment: Path
    trials: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)  # configuration -> first error of its failed trials
    test: pd.DataFrame | None = None  # --test-features: each configuration's held-out metrics (test.csv)
    robustness: pd.DataFrame | None = None  # robustness.csv: metrics per test-time modality subset
    nested: pd.DataFrame | None = None  # --outer-folds: nested.csv (configuration x outer fold scores)

    def failed_configurations(self) -> list[str]:
        """Configurations of which no trial completed."""
        ok = self.trials[self.trials["status"] == "ok"]
        done = set(ok["model"] + "/" + ok["present"])
        every = set(self.trials["model"] + "/" + self.trials["present"])
        return sorted(every - done)

    def best(self, metric: str = "auc") -> pd.DataFrame:
        """Best trial of each configuration (:func:`mmt_tune.records.best_trials`)."""
        return best_trials(self.trials, metric)


@dataclass(frozen=True)
class _Where:
    """Where a study's files go: Tune's experiment, and our tables (local, even for a cloud experiment)."""

    name: str
    storage: str | Path
    experiment: str
    tables: Path

    @property
    def remote(self) -> bool:
        return "://" in str(self.storage)


def run_study(space: str | Path, features: str | Path, **options: Any) -> StudyResult:
    """Run a study and return its trials table (also written to ``<storage>/<name>/trials.{parquet,csv}``).

    ``options`` are the fields of :class:`StudyOptions`. ``resume=True`` continues the experiment
    ``<storage>/<name>`` after an interruption (even SIGKILL): finished trials are kept, unfinished ones
    continue from their last epoch checkpoint, and every configuration's Optuna study continues from its
    saved state.
    """
    from mmt_tune.data.table import describe_table, read_feature_table
    from mmt_tune.modalities import table_modalities

    unknown = set(options) - {f.name for f in fields(StudyOptions)}
    if unknown:
        raise TypeError(f"run_study() got unknown options {sorted(unknown)}")
    opts = StudyOptions(**options)
    table, metadata = read_feature_table(features)
    # The study's modalities are its table's: a configuration's missing modalities are the table's others.
    study = study_space(space, table_modalities(list(table.columns)), str(features))
    if opts.configurations:
        known = {c.key for c in study.configurations}
        unknown_keys = [c for c in opts.configurations if c not in known]
        if unknown_keys:
            raise InputError(f"{study.source}: no configuration {unknown_keys[0]!r} in this space")
        study = replace(
            study, configurations=tuple(c for c in study.configurations if c.key in opts.configurations)
        )
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
    check_inputs(
        study,
        table,
        str(features),
        {"seed": opts.seed, "epochs": opts.epochs, "folds": opts.folds, "repeats": opts.repeats},
    )
    holdout = None
    if opts.test_features is not None and opts.outer_folds:
        raise InputError(
            "--test-features and --outer-folds: choose one way to score rows the search never saw"
        )
    if opts.test_features is not None:
        from mmt_tune.study.holdout import read_holdout

        holdout = read_holdout(opts.test_features, table)
    name = opts.name or study.name
    storage = Path(opts.storage).expanduser().resolve() if "://" not in str(opts.storage) else opts.storage
    remote = "://" in str(storage)
    # Our tables are written with local file I/O: beside the experiment, or under ./results/<name> when Tune
    # stores the experiment in the cloud.
    where = _Where(
        name, storage, f"{storage}/{name}", Path("results", name).resolve() if remote else Path(storage, name)
    )
    from mmt_tune._io import check_writable

    check_writable(where.tables, "results folder" if remote else "--storage")
    identity = study_identity(study, features, opts.samples, opts.seed, opts.epochs, opts.folds, opts.repeats)
    identity["outer_folds"] = opts.outer_folds
    with StudyLock(where.tables):
        check_identity(where.tables, identity, opts.resume)
        if opts.outer_folds:
            from mmt_tune.study.nested import run_nested

            trials, errors, nested = run_nested(
                space, table, metadata, where.tables, identity, opts, run_study
            )
            return StudyResult(where.tables, trials, errors, nested=nested)
        result = _run(study, table, where, identity, opts, describe_table(table, metadata))
        from mmt_tune.study.post_search import after_search

        after_search(result, table, holdout, study.modalities, opts)
        return result


def _start_ray(opts: StudyOptions) -> float:
    """Connect to (or start) Ray; return the GPUs per trial this cluster can honour."""
    import ray

    # A local instance never gains a GPU; a cluster reached by address (--address, or RAY_ADDRESS as set by
    # `ray job submit`) may, through its autoscaler.
    local = not (opts.address or os.environ.get("RAY_ADDRESS"))
    if not opts.verbose:  # the progress bar and the closing summary say what a user needs
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not ray.is_initialized():
        level = logging.INFO if opts.verbose else logging.WARNING
        ray.init(address=opts.address, include_dashboard=False, log_to_driver=False, logging_level=level)
    gpus = opts.gpus_per_trial
    if gpus > 0 and ray.cluster_resources().get("GPU", 0) == 0:
        if local:
            # A GPU request on a GPU-less machine would leave every trial PENDING forever.
            print(
                f"note: --gpus-per-trial {gpus} requested but this machine has no GPU; running trials on CPU",
                file=sys.stderr,
            )
            gpus = 0.0
        else:
            # A cluster (`ray up cluster.yaml`) may scale GPU workers from zero once trials ask for them.
            print(
                "note: the Ray cluster has no GPU node yet; trials stay PENDING until its autoscaler adds one "
                "(use --gpus-per-trial 0 to run on CPUs)",
                file=sys.stderr,
            )
    # With a searcher, Tune keeps one trial pending by default, and a reused actor takes it before any new
    # actor starts: the study would run one trial at a time. Allow as many pending trials as can run at once.
    slots = int(ray.cluster_resources().get("CPU", 1) // max(opts.cpus_per_trial, 1e-9))
    if gpus > 0:
        slots = min(slots, int(ray.cluster_resources().get("GPU", 0) // gpus))
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(1, slots)))
    return gpus


def _with_overrides(study, opts: StudyOptions):
    """The space with --epochs/--folds added to the fixed options of the configurations whose model takes
    them (a baseline has no epochs)."""
    from mmt_tune.config import accepted_options

    overrides = {
        k: v
        for k, v in (("epochs", opts.epochs), ("folds", opts.folds), ("repeats", opts.repeats))
        if v is not None
    }
    configurations = tuple(
        replace(
            c, fixed={**c.fixed, **{k: v for k, v in overrides.items() if k in accepted_options(c.model)}}
        )
        for c in study.configurations
    )
    return replace(study, configurations=configurations)


def _run(
    study: SearchSpace,
    table: pd.DataFrame,
    where: _Where,
    identity: dict,
    opts: StudyOptions,
    description: dict,
) -> StudyResult:
    """The study itself, while this process holds the study's lock and its inputs are checked."""
    from ray import tune

    from mmt_tune import models
    from mmt_tune.study.callbacks import FailedTrials, RefreshTrialsTable, TrialProgress, first_line
    from mmt_tune.study.search import PerConfigurationSearch, study_asha
    from mmt_tune.study.tracking import MODES, Tracking
    from mmt_tune.study.trainable import TrialSettings, run_trial

    if opts.wandb not in MODES:
        raise InputError(f"--wandb must be one of {', '.join(MODES)} (got {opts.wandb!r})")
    # Tune saves the experiment state (finished trials, searcher) only every ~10 s by default; a study killed
    # in between would re-run trials that had finished. Save at most every 2 s instead (cheap at our scale).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # Frequent snapshots are intended (above): no warning each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's classic reporter: silent at verbose 0 (the newer one prints its banner anyway), and its status
    # tables show small values as 1e-06 where the newer one shows the paper's learning rates as "0.".
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    gpus = _start_ray(opts)
    study = _with_overrides(study, opts)
    journal = where.tables / JOURNAL_FILE
    if not opts.resume:
        journal.unlink(missing_ok=True)  # a new study in an old folder: the old trials must not inform TPE
    searcher = PerConfigurationSearch(
        study, opts.samples, metric="auc", mode="max", seed=opts.seed, storage=journal, pack=opts.pack_trials
    )
    if where.remote:
        print(
            f"note: trials/losses/predictions tables go to {where.tables} (Tune's files go to {where.experiment})"
        )
    # Offline runs live beside the experiment (local); `wandb sync <dir>` uploads them when allowed.
    tracking = Tracking(
        mode=opts.wandb, project=opts.wandb_project, study=study.name, dir=str(where.tables / "wandb")
    )
    settings = TrialSettings(
        seed=opts.seed,
        device="cuda" if gpus > 0 else "cpu",
        checkpoint_every=opts.checkpoint_every,
        report_every=opts.report_every,
        compile=opts.compile,
        modalities=study.modalities,
    )
    specs = tuple(models.get(m) for m in dict.fromkeys(c.model for c in study.configurations))
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, table=table, settings=settings, tracking=tracking, specs=specs),
        {"cpu": opts.cpus_per_trial, "gpu": gpus},
    )
    if opts.resume:
        if not tune.Tuner.can_restore(where.experiment):
            raise InputError(f"{where.experiment}: no Tune experiment to resume")
        tuner = tune.Tuner.restore(
            where.experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=study_asha(study, opts.report_every) if opts.asha else None,
                num_samples=searcher.total_trials,
                metric="auc",
                mode="max",
                reuse_actors=True,  # one worker process per slot, not one per trial
                trial_dirname_creator=trial_folder_name,
            ),
            run_config=tune.RunConfig(
                name=where.name,
                storage_path=str(where.storage),
                # Three, not one: Tune's saved experiment state (every 2 s) may still name the previous
                # checkpoint when a study is killed; with one kept, that checkpoint was often deleted already
                # and the resumed trial failed ("does not exist on storage anymore", 1 run in 6 here).
                checkpoint_config=tune.CheckpointConfig(num_to_keep=3),
                callbacks=[
                    RefreshTrialsTable(study.name, lambda: where.tables),
                    FailedTrials(),
                    *([TrialProgress(searcher.total_trials)] if opts.progress else []),
                ],
                verbose=opts.verbose,
                # With --verbose, Tune's classic table (small values such as lr as 1e-06, not "0.").
                progress_reporter=tune.CLIReporter(metric_columns=["epoch", "auc"], max_report_frequency=30)
                if opts.verbose
                else None,
            ),
        )
    write_space(study, where.tables)
    if not opts.resume:
        from mmt_tune._io import write_text_atomic

        write_text_atomic(where.tables / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")
        data = {"phantom": opts.phantom, "features_sha256": identity["features_sha256"], **description}
        write_text_atomic(where.tables / DATA_FILE, json.dumps(data, indent=2) + "\n")
    grid = tuner.fit()
    records = records_from_grid(grid)
    trials = trials_table(records, study.name)
    write_tables({TRIALS_TABLE: trials}, where.tables, csv=True)
    write_tables(trial_tables(records, study.name), where.tables)
    errors: dict[str, str] = {}
    for result in grid:
        if result.error is not None and result.config:
            errors.setdefault(result.config.get("configuration", "?"), first_line(result.error))
    return StudyResult(where.tables, trials, errors)


def trial_folder_name(trial: Trial) -> str:
    """``trial_<id>``: Tune's default folder name repeats every hyperparameter, rounded (``lr=0.0000``)."""
    return f"trial_{trial.trial_id}"


def records_from_grid(grid: ResultGrid) -> list[TrialRecord]:
    """A :class:`TrialRecord` per trial of a finished Tune ``ResultGrid``."""
    return [
        TrialRecord(
            r.config or {},
            r.metrics or {},
            r.error is not None,
            Path(r.path),
            Path(r.checkpoint.path) if r.checkpoint is not None else None,
        )
        for r in grid
    ]
