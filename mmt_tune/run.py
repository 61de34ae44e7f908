"""``python -m mmt_tune.run --space mmt1m``: a Ray Tune + Optuna study over a search space.

Every modality configuration of the space is its own optimisation problem (its own seeded TPE study, equal
budget: :class:`mmt_tune.search.PerConfigurationSearch`), all scheduled by one Ray Tune run. Each trial
cross-validates one configuration with packed folds (:mod:`mmt_tune.trainable`). At the end the launcher
writes the tidy trials table (one row per trial x fold, DESIGN.md contract) as Parquet and CSV beside the
Tune experiment, and prints the best trial of each configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS

TRIALS_TABLE = "trials"


def cache_root() -> Path:
    return Path(os.environ.get("MMT_TUNE_CACHE", "~/.cache/mmt-tune")).expanduser()


def phantom_features(patients: int | None = None, progress: bool = True) -> Path:
    """The phantom cohort's feature table, generated and extracted on first use into the cache folder."""
    from mmt_tune.data.extract import extract_features
    from mmt_tune.demo import prepare_phantom

    folder = cache_root() / f"phantom-{patients or 'paper'}"
    manifest = prepare_phantom(folder / "cohort", patients, seed=0, progress=progress)
    return extract_features(manifest, "fast", folder / "features.parquet", progress=progress).output


@dataclass
class StudyResult:
    experiment: Path
    trials: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)  # configuration -> first error of its failed trials

    def failed_configurations(self) -> list[str]:
        """Configurations of which no trial completed."""
        ok = self.trials[self.trials["status"] == "ok"]
        done = set(ok["model"] + "/" + ok["present"])
        every = set(self.trials["model"] + "/" + self.trials["present"])
        return sorted(every - done)

    def best(self, metric: str = "auc") -> pd.DataFrame:
        """Best trial of each configuration by mean ``metric`` over folds, with mean and std of every metric."""
        ok = self.trials[self.trials["status"] == "ok"]
        per_trial = ok.groupby(["model", "present", "trial_id"])[list(METRICS)].agg(["mean", "std"])
        best_ids = per_trial[(metric, "mean")].groupby(level=["model", "present"]).idxmax()
        return per_trial.loc[best_ids.to_list()]


def run_study(
    space: str | Path,
    features: str | Path,
    *,
    samples: int = 10,
    epochs: int | None = None,
    folds: int | None = None,
    seed: int = 0,
    address: str | None = None,
    storage: str | Path = "results",
    name: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    configurations: Sequence[str] | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    wandb: str = "offline",
    wandb_project: str = "mmt-tune",
    asha: bool = False,
    verbose: int = 1,
    progress: bool = False,
) -> StudyResult:
    """Run a study and return its trials table (also written to ``<storage>/<name>/trials.{parquet,csv}``).

    ``resume=True`` continues the experiment ``<storage>/<name>`` after an interruption (even SIGKILL):
    finished trials are kept, unfinished ones continue from their last epoch checkpoint, and every
    configuration's Optuna study continues from its saved state. ``verbose`` is Tune's (0 silent, 1 status
    tables); ``progress`` shows one progress bar of finished trials instead.
    """

    from mmt_tune.data.table import read_feature_table
    from mmt_tune.spaces import SearchSpace, load_space

    study = load_space(space)
    if configurations:
        unknown = [c for c in configurations if c not in {x.key for x in study.configurations}]
        if unknown:
            raise InputError(f"{study.source}: no configuration {unknown[0]!r} in this space")
        study = SearchSpace(
            study.name,
            study.description,
            study.source,
            tuple(c for c in study.configurations if c.key in configurations),
        )
    if samples < 1:
        raise InputError(f"--num-samples must be >= 1 (got {samples})")
    table, _ = read_feature_table(features)
    name = name or study.name
    storage = Path(storage).expanduser().resolve() if "://" not in str(storage) else storage

    check_inputs(study, table, str(features), {"seed": seed, "epochs": epochs, "folds": folds})
    experiment_path = f"{storage}/{name}"
    remote = "://" in str(storage)
    # Our tables are written with local file I/O: beside the experiment, or under ./results/<name> when Tune
    # stores the experiment in the cloud.
    tables_dir = Path("results", name).resolve() if remote else Path(experiment_path)
    from mmt_tune._io import check_writable

    check_writable(tables_dir, "--storage" if not remote else "results folder")
    identity = study_identity(study, features, samples, seed, epochs, folds)
    with StudyLock(tables_dir):
        check_identity(tables_dir, identity, resume)
        return _run_locked(
            study,
            table,
            name,
            storage,
            experiment_path,
            remote,
            tables_dir,
            identity,
            samples=samples,
            epochs=epochs,
            folds=folds,
            seed=seed,
            address=address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            checkpoint_every=checkpoint_every,
            resume=resume,
            wandb=wandb,
            wandb_project=wandb_project,
            asha=asha,
            verbose=verbose,
            progress=progress,
        )


def _run_locked(
    study,
    table,
    name,
    storage,
    experiment_path,
    remote,
    tables_dir,
    identity,
    *,
    samples,
    epochs,
    folds,
    seed,
    address,
    cpus_per_trial,
    gpus_per_trial,
    checkpoint_every,
    resume,
    wandb,
    wandb_project,
    asha,
    verbose,
    progress,
) -> StudyResult:
    """The study itself, while this process holds the study's lock and its inputs are checked."""
    import ray
    from ray import tune

    from mmt_tune.search import PerConfigurationSearch
    from mmt_tune.spaces import SearchSpace
    from mmt_tune.trainable import run_trial

    # Tune saves the experiment state (finished trials, searcher) only every ~10 s by default; a study killed
    # in between would re-run trials that had finished. Save at most every 2 s instead (cheap at our scale).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # Frequent snapshots are intended (above): no warning each time.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A local instance never gains a GPU; a cluster reached by address (--address, or RAY_ADDRESS as set by
    # `ray job submit`) may, through its autoscaler.
    local = not (address or os.environ.get("RAY_ADDRESS"))
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    if gpus_per_trial > 0 and ray.cluster_resources().get("GPU", 0) == 0:
        if local:
            # A GPU request on a GPU-less machine would leave every trial PENDING forever.
            print(
                f"note: --gpus-per-trial {gpus_per_trial} requested but this machine has no GPU; "
                "running trials on CPU",
                file=sys.stderr,
            )
            gpus_per_trial = 0.0
        else:
            # A cluster (`ray up cluster.yaml`) may scale GPU workers from zero once trials ask for them.
            print(
                "note: the Ray cluster has no GPU node yet; trials stay PENDING until its autoscaler adds one "
                "(use --gpus-per-trial 0 to run on CPUs)",
                file=sys.stderr,
            )
    # With a searcher, Tune keeps one trial pending by default, and a reused actor takes it before any new
    # actor starts: the study would run one trial at a time. Allow as many pending trials as can run at once.
    slots = int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_trial, 1e-9))
    if gpus_per_trial > 0:
        slots = min(slots, int(ray.cluster_resources().get("GPU", 0) // gpus_per_trial))
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(1, slots)))
    overrides = {
        "seed": seed,
        "device": "cuda" if gpus_per_trial > 0 else "cpu",
        "checkpoint_every": checkpoint_every,
    }
    overrides.update({k: v for k, v in (("epochs", epochs), ("folds", folds)) if v is not None})
    from mmt_tune.search import TRIAL_KEYS
    from mmt_tune.config import accepted_options

    def applicable(model: str) -> dict:
        """The overrides a model takes (a baseline has no epochs; run settings go to every trial)."""
        return {k: v for k, v in overrides.items() if k in TRIAL_KEYS or k in accepted_options(model)}

    study = SearchSpace(
        study.name,
        study.description,
        study.source,
        tuple(
            type(c)(c.model, c.present, c.parameters, {**c.fixed, **applicable(c.model)})
            for c in study.configurations
        ),
    )
    searcher = PerConfigurationSearch(study, samples, metric="auc", mode="max", seed=seed)
    from mmt_tune.tracking import MODES, Tracking

    if wandb not in MODES:
        raise InputError(f"--wandb must be one of {', '.join(MODES)} (got {wandb!r})")
    if remote:
        print(
            f"note: trials/losses/predictions tables go to {tables_dir} (Tune's files go to {experiment_path})"
        )
    # Offline runs live beside the experiment (local); `wandb sync <dir>` uploads them when allowed.
    tracking = Tracking(
        mode=wandb,
        project=wandb_project,
        study=study.name,
        dir=str(tables_dir / "wandb"),
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, table=table, tracking=tracking),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    if resume:
        if not tune.Tuner.can_restore(experiment_path):
            raise InputError(f"{experiment_path}: no Tune experiment to resume")
        tuner = tune.Tuner.restore(
            experiment_path, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_asha(study, asha),
                num_samples=searcher.total_trials,
                metric="auc",
                mode="max",
                reuse_actors=True,  # one worker process per slot, not one per trial
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                # Three, not one: Tune's saved experiment state (every 2 s) may still name the previous
                # checkpoint when a study is killed; with one kept, that checkpoint was often deleted already
                # and the resumed trial failed ("does not exist on storage anymore", 1 run in 6 here).
                checkpoint_config=tune.CheckpointConfig(num_to_keep=3),
                callbacks=[
                    refresh_callback(study.name, lambda: tables_dir),
                    *([progress_callback(searcher.total_trials)] if progress else []),
                ],
                verbose=verbose,
            ),
        )
    write_space(study, tables_dir)
    if not resume:
        from mmt_tune._io import write_text_atomic

        write_text_atomic(tables_dir / IDENTITY_FILE, json.dumps(identity, indent=2) + "\n")
    grid = tuner.fit()
    experiment = tables_dir
    records = records_from_grid(grid)
    trials = trials_table(records, study.name)
    write_tables({TRIALS_TABLE: trials}, experiment, csv=True)
    write_tables(trial_tables(records, study.name), experiment)
    errors = {}
    for result in grid:
        if result.error is not None and result.config:
            errors.setdefault(result.config.get("configuration", "?"), _first_line(result.error))
    return StudyResult(experiment, trials, errors)


IDENTITY_FILE = "study.json"
#: What a resumed study must share with the run that started it (--num-samples is checked separately).
IDENTITY_KEYS = ("space", "space_sha256", "features_sha256", "configurations", "seed", "epochs", "folds")


def study_identity(study, features, samples: int, seed: int, epochs, folds) -> dict:
    """The study's identity: search space (name and content), feature table (content hash), budget, seeds."""
    import hashlib

    from mmt_tune.data.extract import file_sha256

    return {
        "space": study.name,
        "space_sha256": hashlib.sha256(Path(study.source).read_bytes()).hexdigest(),
        "features_sha256": file_sha256(Path(features)),
        "configurations": [c.key for c in study.configurations],
        "seed": seed,
        "epochs": epochs,
        "folds": folds,
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


def _first_line(error: BaseException) -> str:
    """The root cause of a trial's error in one line (Tune wraps it in its own exception types)."""
    cause = error
    while getattr(cause, "cause", None) is not None or cause.__cause__ is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def check_inputs(study, table: pd.DataFrame, source: str, overrides: dict) -> None:
    """Validate every configuration against the table before Ray starts: one line naming the configuration."""
    from mmt_tune.search import TRIAL_KEYS
    from mmt_tune.config import TrainConfig, accepted_options
    from mmt_tune.train import check_table

    for configuration in study.configurations:
        options = {k: v for k, v in configuration.fixed.items() if k not in TRIAL_KEYS}
        options.update({name: d.example() for name, d in configuration.parameters.items()})
        accepted = accepted_options(configuration.model)
        options.update({k: v for k, v in overrides.items() if v is not None and k in accepted})
        try:
            check_table(table, TrainConfig.from_options(configuration.model, configuration.present, options))
        except InputError as exc:
            raise InputError(f"{source}: configuration {configuration.key}: {exc}") from None
    for note in table_notes(table, study.configurations[0], overrides):
        print(f"note: {note}", file=sys.stderr)


def table_notes(table: pd.DataFrame, configuration, overrides: dict) -> list[str]:
    """What the study will do differently because of the table: grouped folds, fewer SMOTE neighbours."""
    import numpy as np

    from mmt_tune.preprocess import make_folds, smote_neighbours

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


def records_from_grid(grid) -> list[TrialRecord]:
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


def _asha(study, enabled: bool):
    """Per-configuration ASHA over the trial's reports (one per epoch, plus the final one), or None."""
    if not enabled:
        return None
    from mmt_tune.search import per_configuration_asha

    epochs = max(int(c.fixed.get("epochs", 200)) for c in study.configurations)
    return per_configuration_asha(max_t=epochs + 1, grace_period=max(1, epochs // 10))


def trials_table(records: Sequence[TrialRecord], study: str) -> pd.DataFrame:
    """One row per trial x fold (DESIGN.md "Trials table"); a trial that failed, or that ASHA stopped early,
    is one row with status 'error' or 'stopped' and no metrics."""
    from mmt_tune.search import TRIAL_KEYS

    rows = []
    for record in records:
        config = record.config
        base = {
            "study": study,
            "model": config.get("model"),
            "present": "+".join(config.get("present", [])),
            "trial_id": record.trial_id,
        }
        base.update({f"config/{k}": v for k, v in config.items() if k not in TRIAL_KEYS})
        folds = json.loads(record.metrics.get("fold_metrics") or "[]")
        if record.failed or not folds:  # an error, or stopped early by ASHA before its final report
            status = "error" if record.failed else "stopped"
            rows.append({**base, "fold": None, **{m: float("nan") for m in METRICS}, "status": status})
            continue
        for fold in folds:
            rows.append({**base, "fold": int(fold["fold"]), **{m: fold[m] for m in METRICS}, "status": "ok"})
    return pd.DataFrame(rows)


def trial_tables(records: Sequence[TrialRecord], study: str) -> dict[str, pd.DataFrame]:
    """Per-epoch loss curves and out-of-fold predictions of every finished trial, one table each."""
    tables: dict[str, list[pd.DataFrame]] = {"losses": [], "predictions": []}
    for record in records:
        for name, frames in tables.items():
            path = record.outputs / f"{name}.csv" if record.outputs is not None else None
            if not record.failed and path is not None and path.is_file():
                frame = pd.read_csv(path, dtype={"patient_id": str, "lesion_id": str})
                frame.insert(0, "trial_id", record.trial_id)
                frame.insert(0, "present", "+".join(record.config.get("present", [])))
                frame.insert(0, "model", record.config.get("model"))
                frame.insert(0, "study", study)
                frames.append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items() if frames}


SPACE_FILE = "space.json"


def write_space(study, folder: Path) -> None:
    """``space.json``: each configuration's searched parameters with their true bounds and scales.

    The trials table holds only the sampled values; the importance analysis needs the bounds and log scales
    the sampler used (fANOVA integrates over them), and reads them from this file.
    """
    from mmt_tune._io import write_text_atomic

    spec = {
        "study": study.name,
        "configurations": {
            c.key: {
                name: {"distribution": d.kind, "low": d.low, "high": d.high, "values": d.values}
                for name, d in c.parameters.items()
            }
            for c in study.configurations
        },
    }
    write_text_atomic(folder / SPACE_FILE, json.dumps(spec, indent=2) + "\n")


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, csv: bool = False) -> None:
    """Each table as ``<name>.parquet`` (and ``.csv``), written atomically."""
    from mmt_tune._io import atomic_path

    for name, frame in tables.items():
        with atomic_path(folder / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        if csv:
            with atomic_path(folder / f"{name}.csv") as tmp:
                frame.to_csv(tmp, index=False)


def refresh_callback(study: str, folder_of: Callable[[], Path]):
    """A Tune callback that rewrites the trials table each time a trial ends, so it is current mid-study."""
    from ray import tune

    class RefreshTrialsTable(tune.Callback):
        def _refresh(self, trials, current, failed: bool) -> None:
            # Tune calls these hooks before it marks ``current`` as ended, so it is added explicitly.
            ended = [t for t in trials if t.status in ("TERMINATED", "ERROR") and t is not current]
            records = [
                TrialRecord(t.config, t.last_result or {}, t.status == "ERROR", Path(t.local_path))
                for t in ended
            ]
            records.append(
                TrialRecord(current.config, current.last_result or {}, failed, Path(current.local_path))
            )
            write_tables({TRIALS_TABLE: trials_table(records, study)}, folder_of(), csv=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._refresh(trials, trial, failed=False)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._refresh(trials, trial, failed=True)

    return RefreshTrialsTable()


def progress_callback(total: int):
    """A Tune callback that shows finished trials as one tqdm bar (set from Tune's own trial list, so a
    resumed study starts at the trials it already has)."""
    from ray import tune
    from tqdm.auto import tqdm

    class TrialProgress(tune.Callback):
        bar = None  # created when the run starts: Tune pickles its callbacks with the experiment, a bar can't be

        def setup(self, **info):
            self.bar = tqdm(total=total, desc="trials", unit="trial")

        def _update(self, trials, current) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, desc="trials", unit="trial")
            ended = {id(t) for t in trials if t.status in ("TERMINATED", "ERROR")} | {id(current)}
            self.bar.n = len(ended)
            self.bar.refresh()

        def __getstate__(self):
            return {}

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._update(trials, trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._update(trials, trial)

        def on_experiment_end(self, trials, **info):
            if self.bar is not None:
                self.bar.close()

    return TrialProgress()


def format_best(result: StudyResult) -> str:
    best = result.best()
    lines = [f"{'configuration':<22} {'trial':<12} " + " ".join(f"{m:>16}" for m in METRICS)]
    for (model, present, trial_id), row in best.iterrows():
        cells = " ".join(f"{row[(m, 'mean')]:.3f} ± {row[(m, 'std')]:.3f}".rjust(16) for m in METRICS)
        lines.append(f"{model + '/' + present:<22} {str(trial_id):<12} {cells}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.run",
        description="Run a hyperparameter study: every configuration of a search space gets its own Optuna "
        "study and the same number of trials, all in one Ray Tune run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--space",
        required=True,
        help="search space: a shipped name (mmt1m, mmt2m, mfnvae, paper, paper-wide) or a YAML path",
    )
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        help="feature table (default: the phantom cohort, generated and extracted on first use "
        "into $MMT_TUNE_CACHE or ~/.cache/mmt-tune)",
    )
    parser.add_argument("--num-samples", type=int, default=10, help="trials per configuration")
    parser.add_argument("--epochs", type=int, default=None, help="override the space's epochs")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="study seed: folds, samplers, initialisation")
    parser.add_argument("--address", default=None, help="existing Ray cluster (default: start a local one)")
    parser.add_argument("--storage", default="results", help="where Tune writes the experiment (path or URI)")
    parser.add_argument("--name", default=None, help="experiment name (default: the space's name)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="fraction of a GPU per trial; on a local instance without GPU, trials run on CPU instead; on a cluster (--address) they wait for GPU nodes",
    )
    parser.add_argument(
        "--wandb",
        choices=["off", "offline", "online"],
        default="offline",
        help="Weights & Biases tracking, one run per trial: offline (default; files under the experiment), "
        "online (needs an API key) or off",
    )
    parser.add_argument("--wandb-project", default="mmt-tune", help="W&B project")
    parser.add_argument(
        "--asha",
        action="store_true",
        help="stop unpromising trials early (ASHA on the per-epoch validation AUC, within each configuration)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted experiment <storage>/<name> (finished trials are kept)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="epochs between a trial's checkpoints (what a resumed trial continues from)",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="tiny study: 2 configurations x 2 trials, 2 folds, 2 epochs, 60-patient phantom",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from mmt_tune.spaces import load_space

        space = load_space(args.space)  # fail fast, before any data work
        configurations = None
        if args.smoke_test:
            args.num_samples, args.epochs, args.folds = 2, args.epochs or 2, args.folds or 2
            configurations = [c.key for c in space.configurations[:2]]
        features = args.features or phantom_features(60 if args.smoke_test else None)
        result = run_study(
            args.space,
            features,
            samples=args.num_samples,
            epochs=args.epochs,
            folds=args.folds,
            seed=args.seed,
            address=args.address,
            storage=args.storage,
            name=args.name,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            configurations=configurations,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            wandb=args.wandb,
            wandb_project=args.wandb_project,
            asha=args.asha,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = result.failed_configurations()
    if not result.trials.empty and (result.trials["status"] == "ok").any():
        print(f"\nbest trial per configuration (mean ± std over folds), study {space.name}:")
        print(format_best(result))
    print(f"\ntrials table: {result.experiment / (TRIALS_TABLE + '.parquet')} (+ .csv)")
    if failed:
        first = next((result.errors[c] for c in failed if c in result.errors), "see the trials' error files")
        print(
            f"error: no trial of {len(failed)} configuration(s) completed ({', '.join(failed)}); "
            f"first error: {first}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
