"""Study launcher: per-trial overhead, with a trivial objective and with real training.

1. Trivial objective (no training): the same trials through ``PerConfigurationSearch`` + Ray Tune (local Ray,
   2 CPUs, started before timing) and through a plain ``optuna`` ask-and-tell loop.
2. Real training: ``mmt1m`` studies on the 279-patient phantom (1 and ``--samples`` trials per
   configuration, 5 folds x ``--epochs`` epochs) on a 1-CPU Ray instance (one trial at a time, one torch
   thread, W&B offline, no robustness step), reporting every epoch and every ``--report-every`` epochs, vs
   the same trials' configurations trained one after another with
   :func:`mmt_tune.training.crossval.train_configuration` in this process (one torch thread). The difference is what the
   launcher costs a real study (Ray, Tune, the searcher, reports, checkpoints, tables, W&B); the two study
   sizes split it into a fixed cost per study (Tune's start, the first worker's imports, the W&B service,
   the closing tables) and a cost per trial. The larger study also with ``--pack-trials 4``, against the
   same packs trained with :func:`mmt_tune.training.trial_packs.train_trials`.

Each pair alternates ``--repeats`` times; min and median, overhead from the medians, load before and after.
Targets: <= 0.5 s per trial, <= 0.3 s with real training.

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

    from mmt_tune.config import TrainConfig
    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.spaces import load_space
    from mmt_tune.study.entry import run_study
    from mmt_tune.training.crossval import train_configuration
    from mmt_tune.training.refit import trial_options
    from mmt_tune.training.trial_packs import train_trials

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials-per-configuration", type=int, default=10, help="trivial part: trials each")
    parser.add_argument("--samples", type=int, default=4, help="real part: trials per configuration")
    parser.add_argument("--epochs", type=int, default=20, help="real part: epochs per trial")
    parser.add_argument(
        "--report-every", type=int, default=10, help="real part: the reporting interval to compare"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if args.samples < 2:
        parser.error(
            "--samples must be >= 2 (the two study sizes are 1 and --samples trials per configuration)"
        )
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
    # A study of n trials costs its trials' bare training + F (per study: Tune's start, the first worker's
    # imports, the W&B service, the closing tables) + n x m (per trial). Two study sizes give F and m.
    sizes = (1, args.samples)  # trials per configuration (3 configurations)
    arms = {(size, every): [] for size in sizes for every in (1, args.report_every)}
    bare: dict[int, list[float]] = {size: [] for size in sizes}
    packed_times: dict[str, list[float]] = {"packed study": [], "bare packs": []}
    counts: dict[int, int] = {}

    def configs_of(rows):
        return [
            TrainConfig.from_options(row["model"], row["present"].split("+"), trial_options(row))
            for _, row in rows.iterrows()
        ]

    def study(size: int, name: str, **options):
        start = time.perf_counter()
        result = run_study(
            "mmt1m",
            features,
            samples=size,
            epochs=args.epochs,
            storage=work / "studies",
            name=name,
            wandb="offline",
            verbose=0,
            robustness=False,
            **options,
        )
        return time.perf_counter() - start, result.trials.groupby("trial_id").head(1)

    for r in range(args.repeats):
        for size in sizes:
            for every in (1, args.report_every):
                seconds, rows = study(size, f"real{r}-{size}-{every}", report_every=every)
                arms[(size, every)].append(seconds)
            counts[size] = len(rows)
            start = time.perf_counter()
            for config in configs_of(rows):
                train_configuration(table, config)
            bare[size].append(time.perf_counter() - start)
        seconds, rows = study(args.samples, f"real{r}-packed", pack_trials=4)
        packed_times["packed study"].append(seconds)
        start = time.perf_counter()
        for _, members in rows.groupby(rows["trial_id"].str.rsplit("-", n=1).str[0]):
            train_trials(table, configs_of(members))  # the same members in the same packs
        packed_times["bare packs"].append(time.perf_counter() - start)
    ray.shutdown()
    after = load_average()

    def median(values: list[float]) -> float:
        return min_median(values)[1]

    def cells(values: list[float], count: int) -> str:
        low, mid = min_median(values)
        return f"{low:.2f} | {mid:.2f} | {mid / count:.3f}"

    small, large = sizes
    n_small, n_large = counts[small], counts[large]
    overhead = (median(trivial_times["tune"]) - median(trivial_times["optuna"])) / n
    decomposed = {}
    for every in (1, args.report_every):
        o_small = median(arms[(small, every)]) - median(bare[small])
        o_large = median(arms[(large, every)]) - median(bare[large])
        per_trial = (o_large - o_small) / (n_large - n_small)
        decomposed[every] = (o_small - n_small * per_trial, per_trial, o_large / n_large)
    packed = (median(packed_times["packed study"]) - median(packed_times["bare packs"])) / n_large
    lines = [
        f"Trivial objective: {n} trials over the {len(space.configurations)} configurations of `mmt1m` (local Ray, "
        f"2 CPUs, 1 CPU per trial). Real training: `mmt1m` studies of {n_small} and {n_large} trials on the "
        f"phantom, 5 folds x {args.epochs} epochs, local Ray with 1 CPU (one trial at a time), 1 torch thread, "
        f"W&B offline, against the same trials trained one after another in this process (one thread). "
        f"{args.repeats} interleaved repeats each; per-trial figures from the medians.",
        "",
        "| run | min (s) | median (s) | median per trial (s) |",
        "| --- | ---: | ---: | ---: |",
        f"| trivial: plain Optuna loop | {cells(trivial_times['optuna'], n)} |",
        f"| trivial: mmt_tune (Ray Tune + per-configuration Optuna) | {cells(trivial_times['tune'], n)} |",
    ]
    for size, count in ((small, n_small), (large, n_large)):
        lines.append(f"| real, {count} trials: trained in one process | {cells(bare[size], count)} |")
        for every in (1, args.report_every):
            lines.append(
                f"| real, {count} trials: the study, `--report-every {every}` | {cells(arms[(size, every)], count)} |"
            )
    lines += [
        f"| real, {n_large} trials: the same packs of 4 trained in one process | "
        f"{cells(packed_times['bare packs'], n_large)} |",
        f"| real, {n_large} trials: the study with `--pack-trials 4` | {cells(packed_times['packed study'], n_large)} |",
        "",
        "| real training | per study, fixed (s) | per trial (s) | all of it, per trial of the larger study (s) |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| `--report-every {every}` | {fixed:.2f} | {per:.3f} | {whole:.3f} |"
            for every, (fixed, per, whole) in decomposed.items()
        ),
        "",
        f"Launcher overhead per trial: **{overhead:.3f} s** with a trivial objective (target <= 0.5); with real "
        f"training **{decomposed[args.report_every][1]:.3f} s** per trial with `--report-every "
        f"{args.report_every}` and {decomposed[1][1]:.3f} s reporting every epoch (target <= 0.3), plus a fixed "
        f"{decomposed[args.report_every][0]:.1f} s per study; {packed:.3f} s per trial, all included, with "
        f"`--pack-trials 4`. Before: {before}; after: {after}.",
    ]
    report("launcher", "Study launcher overhead", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
