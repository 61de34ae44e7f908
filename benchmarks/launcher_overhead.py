"""Study launcher: per-trial overhead vs a plain Optuna loop, and study throughput on the phantom cohort.

1. Overhead: the same number of trials of a trivial objective (no training) through ``PerConfigurationSearch``
   + Ray Tune (one local Ray instance, started before timing) and through a plain ``optuna`` loop; the
   difference per trial is what the launcher costs. Target (issue 4): <= 0.5 s per trial.
2. Throughput: a real study (``mmt1m`` space, default 2 trials per configuration, 200 epochs, 5 folds) on the
   279-patient phantom cohort, in trials per minute.

    python benchmarks/launcher_overhead.py [--trials-per-configuration 10] [--epochs 200] [--record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402


def trivial(config: dict) -> None:
    from ray import tune

    tune.report({"auc": 1.0 - abs(config["lr"] - 5e-6) * 1e5 + 0.1 * config["beta"]})


def main() -> int:
    import optuna
    import ray
    from ray import tune

    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.spaces import load_space
    from mmt_tune.study import run_study
    from mmt_tune.study.search import PerConfigurationSearch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials-per-configuration", type=int, default=10, help="overhead part: trials each")
    parser.add_argument(
        "--study-trials", type=int, default=2, help="throughput part: trials per configuration"
    )
    parser.add_argument("--epochs", type=int, default=200, help="throughput part: epochs per trial")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    space = load_space("mmt1m")
    n = args.trials_per_configuration * len(space.configurations)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="mmt-bench-launcher-"))
    searcher = PerConfigurationSearch(space, args.trials_per_configuration, seed=0)
    tuner = tune.Tuner(
        tune.with_resources(trivial, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=n, metric="auc", mode="max", reuse_actors=True
        ),
        run_config=tune.RunConfig(name="overhead", storage_path=str(work), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    t_tune = time.perf_counter() - start

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    for i, configuration in enumerate(space.configurations):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=i))
        distributions = configuration.optuna_distributions()
        for _ in range(args.trials_per_configuration):  # Optuna's ask-and-tell loop
            trial = study.ask(distributions)
            study.tell(trial, 1.0 - abs(trial.params["lr"] - 5e-6) * 1e5 + 0.1 * trial.params["beta"])
    t_optuna = time.perf_counter() - start
    overhead = (t_tune - t_optuna) / n

    features = phantom_features(progress=False)
    start = time.perf_counter()
    result = run_study(
        "mmt1m",
        features,
        samples=args.study_trials,
        epochs=args.epochs,
        storage=work / "study",
        name="throughput",
        wandb="offline",
    )
    t_study = time.perf_counter() - start
    n_study = result.trials["trial_id"].nunique()
    ray.shutdown()

    lines = [
        f"Overhead: {n} trials of a trivial objective over the {len(space.configurations)} configurations of "
        f"`mmt1m` (local Ray, 2 CPUs, 1 CPU per trial).",
        "",
        "| launcher | wall time (s) | per trial (s) |",
        "| --- | ---: | ---: |",
        f"| plain Optuna loop (baseline) | {t_optuna:.2f} | {t_optuna / n:.3f} |",
        f"| mmt_tune (Ray Tune + per-configuration Optuna) | {t_tune:.2f} | {t_tune / n:.3f} |",
        f"| **launcher overhead per trial** | | **{overhead:.3f}** (target <= 0.5) |",
        "",
        f"Throughput: `mmt1m` study on the 279-patient phantom cohort, {n_study} trials x 5 folds x "
        f"{args.epochs} epochs, W&B offline: {t_study:.0f} s, {n_study / (t_study / 60):.2f} trials/min.",
    ]
    report("launcher", "Study launcher overhead and throughput", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
