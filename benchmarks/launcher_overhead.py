"""Study launcher: per-trial overhead, with a trivial objective and with real training (issues 4 and 18).

1. Trivial objective (no training): the same trials through ``PerConfigurationSearch`` + Ray Tune (local Ray,
   2 CPUs, started before timing) and through a plain ``optuna`` ask-and-tell loop.
2. Real training: a ``mmt1m`` study on the 279-patient phantom (``--samples`` trials per configuration, 5
   folds x ``--epochs`` epochs) on a 1-CPU Ray instance (one trial at a time, one torch thread, W&B
   offline, no robustness step), vs the same trials' configurations trained one after another with
   :func:`mmt_tune.train.train_configuration` in this process (one torch thread). The difference per trial
   is what the launcher costs a real study: Ray, Tune, the searcher, reports, checkpoints, tables, W&B.
   The same with ``--pack-trials 4``, against the same packs trained with :func:`mmt_tune.batch.train_trials`.

Each pair alternates ``--repeats`` times; min and median, overhead from the medians, load before and after.
Targets: <= 0.5 s per trial (issue 4, trivial objective), <= 0.3 s with real training (issue 18).

    python benchmarks/launcher_overhead.py [--trials-per-configuration 10] [--samples 4] [--epochs 20] [--record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402


def trivial(config: dict) -> None:
    from ray import tune

    tune.report({"auc": 1.0 - abs(config["lr"] - 5e-6) * 1e5 + 0.1 * config["beta"]})


def tune_trivial(space, per_configuration: int, work: Path, name: str) -> float:
    from ray import tune

    from mmt_tune.study.search import PerConfigurationSearch

    searcher = PerConfigurationSearch(space, per_configuration, seed=0)
    tuner = tune.Tuner(
        tune.with_resources(trivial, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=searcher.total_trials,
            metric="auc",
            mode="max",
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(work), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def optuna_trivial(space, per_configuration: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    for i, configuration in enumerate(space.configurations):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=i))
        distributions = configuration.optuna_distributions()
        for _ in range(per_configuration):
            trial = study.ask(distributions)
            study.tell(trial, 1.0 - abs(trial.params["lr"] - 5e-6) * 1e5 + 0.1 * trial.params["beta"])
    return time.perf_counter() - start


def main() -> int:
    import ray
    import torch

    from mmt_tune.batch import train_trials
    from mmt_tune.config import TrainConfig
    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.fitting import trial_options
    from mmt_tune.spaces import load_space
    from mmt_tune.study import run_study
    from mmt_tune.train import train_configuration

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials-per-configuration", type=int, default=10, help="trivial part: trials each")
    parser.add_argument("--samples", type=int, default=4, help="real part: trials per configuration")
    parser.add_argument("--epochs", type=int, default=20, help="real part: epochs per trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = load_space("mmt1m")
    n = args.trials_per_configuration * len(space.configurations)
    work = Path(tempfile.mkdtemp(prefix="mmt-bench-launcher-"))
    before = load_average()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    trivial_times: dict[str, list[float]] = {"tune": [], "optuna": []}
    for r in range(args.repeats):
        trivial_times["tune"].append(tune_trivial(space, args.trials_per_configuration, work, f"trivial{r}"))
        trivial_times["optuna"].append(optuna_trivial(space, args.trials_per_configuration))
    ray.shutdown()

    features = phantom_features(progress=False)
    table, _ = read_feature_table(features)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    real_times: dict[str, list[float]] = {"study": [], "bare": [], "packed study": [], "bare packs": []}
    trials = 0

    def configs_of(rows):
        return [
            TrainConfig.from_options(row["model"], row["present"].split("+"), trial_options(row))
            for _, row in rows.iterrows()
        ]

    for r in range(args.repeats):
        for pack in (1, 4):
            start = time.perf_counter()
            result = run_study(
                "mmt1m",
                features,
                samples=args.samples,
                epochs=args.epochs,
                storage=work / "studies",
                name=f"real{r}-{pack}",
                wandb="offline",
                verbose=0,
                robustness=False,
                pack_trials=pack,
            )
            real_times["study" if pack == 1 else "packed study"].append(time.perf_counter() - start)
            rows = result.trials.groupby("trial_id").head(1)
            trials = len(rows)
            start = time.perf_counter()
            if pack == 1:
                for config in configs_of(rows):
                    train_configuration(table, config)
                real_times["bare"].append(time.perf_counter() - start)
            else:  # the same members in the same packs (trial ids <tune trial>-<j>)
                for _, members in rows.groupby(rows["trial_id"].str.rsplit("-", n=1).str[0]):
                    train_trials(table, configs_of(members))
                real_times["bare packs"].append(time.perf_counter() - start)
    ray.shutdown()
    after = load_average()

    def cells(values: list[float], count: int) -> str:
        low, median = min_median(values)
        return f"{low:.2f} | {median:.2f} | {median / count:.3f}"

    overhead = (min_median(trivial_times["tune"])[1] - min_median(trivial_times["optuna"])[1]) / n
    real = (min_median(real_times["study"])[1] - min_median(real_times["bare"])[1]) / trials
    packed = (min_median(real_times["packed study"])[1] - min_median(real_times["bare packs"])[1]) / trials
    lines = [
        f"Trivial objective: {n} trials over the {len(space.configurations)} configurations of `mmt1m` (local Ray, "
        f"2 CPUs, 1 CPU per trial). Real training: {trials} trials of `mmt1m` on the phantom, 5 folds x "
        f"{args.epochs} epochs, local Ray with 1 CPU (one trial at a time), 1 torch thread, W&B offline. "
        f"{args.repeats} interleaved repeats each.",
        "",
        "| run | min (s) | median (s) | median per trial (s) |",
        "| --- | ---: | ---: | ---: |",
        f"| trivial: plain Optuna loop | {cells(trivial_times['optuna'], n)} |",
        f"| trivial: mmt_tune (Ray Tune + per-configuration Optuna) | {cells(trivial_times['tune'], n)} |",
        f"| real: the trials' configurations trained in one process | {cells(real_times['bare'], trials)} |",
        f"| real: the study | {cells(real_times['study'], trials)} |",
        f"| real: the same packs (4 trials each) trained in one process | {cells(real_times['bare packs'], trials)} |",
        f"| real: the study with `--pack-trials 4` | {cells(real_times['packed study'], trials)} |",
        "",
        f"Launcher overhead per trial: **{overhead:.3f} s** with a trivial objective (target <= 0.5), "
        f"**{real:.3f} s** with real training (target <= 0.3), **{packed:.3f} s** per trial with real training "
        f"and `--pack-trials 4`. Before: {before}; after: {after}.",
    ]
    report("launcher", "Study launcher overhead", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
