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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mmt_tune.errors import InputError
from mmt_tune.records import (
    DATA_FILE,
    JOURNAL_FILE,
    TRIALS_TABLE,
    TrialRecord,
    trial_tables,
    trials_table,
    write_space,
    write_tables,
)
from mmt_tune.study.guards import IDENTITY_FILE, StudyLock, check_identity
from mmt_tune.study.options import StudyOptions, StudyResult, Where

if TYPE_CHECKING:
    from ray.tune import ResultGrid
    from ray.tune.experiment import Trial

    from mmt_tune.spaces import SearchSpace
    from mmt_tune.study.prepare import PreparedStudy


def run_flat(prepared: PreparedStudy, opts: StudyOptions) -> StudyResult:
    """Run a checked study (:func:`mmt_tune.study.prepare.prepare_study`) as one Tune run, then what follows
    the search (held-out scores, robustness), holding the study folder's lock throughout."""
    from mmt_tune.data.table import describe_table
    from mmt_tune.study.post_search import after_search

    where = prepared.where
    with StudyLock(where.tables):
        check_identity(where.tables, prepared.identity, opts.resume)
        description = describe_table(prepared.table, prepared.metadata)
        result = _run(prepared.space, prepared.table, where, prepared.identity, opts, description)
        after_search(result, prepared.table, prepared.holdout, prepared.space.modalities, opts)
        return result


def _slots(opts: StudyOptions, gpus: float) -> int:
    """How many trials the cluster runs at once (its CPUs, or GPUs, over what one trial holds)."""
    import ray

    resources = ray.cluster_resources()
    by_cpu = int(resources.get("CPU", 1) // max(opts.cpus_per_trial, 1e-9))
    by_gpu = int(resources.get("GPU", 0) // gpus) if gpus > 0 else by_cpu
    return max(1, min(by_cpu, by_gpu))


def _start_ray(opts: StudyOptions) -> float:
    """Connect to (or start) Ray; return the GPUs per trial this cluster can honour."""
    import ray

    # A local instance never gains a GPU; a cluster reached by address (--address, or RAY_ADDRESS as set by
    # `ray job submit`) may, through its autoscaler.
    local = not (opts.address or os.environ.get("RAY_ADDRESS"))
    if not opts.verbose:  # the progress bar and the closing summary say what a user needs
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # Ray's notice that token authentication is on (it is; nothing to do) on every start, not for users
    if not opts.verbose:
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
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
    where: Where,
    identity: dict,
    opts: StudyOptions,
    description: dict,
) -> StudyResult:
    """The study itself, while this process holds the study's lock and its inputs are checked."""
    from ray import tune

    from mmt_tune import models
    from mmt_tune.study.options import TrialSettings
    from mmt_tune.study.search import PerConfigurationSearch
    from mmt_tune.study.tracking import MODES, Tracking
    from mmt_tune.study.trainable import run_trial

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
    slots = _slots(opts, gpus)
    searcher = PerConfigurationSearch(
        study,
        opts.samples,
        metric="auc",
        mode="max",
        seed=opts.seed,
        storage=journal,
        pack=opts.pack_trials,
        slots=slots,
    )
    fitted = searcher.fitted_pack
    if fitted is not None and fitted < opts.pack_trials:
        print(
            f"note: --pack-trials {opts.pack_trials}: packs of {fitted} instead, so that every one of the "
            f"{slots} trial slots stays busy (a larger pack would leave one idle)",
            file=sys.stderr,
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
    tuner = _tuner(trainable, searcher, study, where, opts)
    write_space(study, where.tables)
    if not opts.resume:
        from mmt_tune._io import write_text_atomic

        write_text_atomic(where.tables / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")
        data = {"phantom": opts.phantom, "features_sha256": identity["features_sha256"], **description}
        write_text_atomic(where.tables / DATA_FILE, json.dumps(data, indent=2) + "\n")
    return _collect(tuner.fit(), study.name, where)


def _tuner(trainable, searcher, study: SearchSpace, where: Where, opts: StudyOptions):
    """A new Tuner for the study, or the interrupted one restored (``--resume``)."""
    from ray import tune

    from mmt_tune.study.callbacks import FailedTrials, RefreshTrialsTable, StudyEstimate, TrialProgress
    from mmt_tune.study.search import study_asha

    if opts.resume:
        if not tune.Tuner.can_restore(where.experiment):
            raise InputError(f"{where.experiment}: no Tune experiment to resume")
        return tune.Tuner.restore(
            where.experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    return tune.Tuner(
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
                StudyEstimate(searcher.total_trials, max(searcher.slots or 1, len(study.configurations))),
            ],
            verbose=opts.verbose,
            # With --verbose, Tune's classic table (small values such as lr as 1e-06, not "0.").
            progress_reporter=tune.CLIReporter(metric_columns=["epoch", "auc"], max_report_frequency=30)
            if opts.verbose
            else None,
        ),
    )


def _collect(grid, name: str, where: Where) -> StudyResult:
    """The finished run's tables, written beside the experiment, and each configuration's first error."""
    from mmt_tune.study.callbacks import first_line

    records = records_from_grid(grid)
    trials = trials_table(records, name)
    write_tables({TRIALS_TABLE: trials}, where.tables, csv=True)
    write_tables(trial_tables(records, name), where.tables)
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
