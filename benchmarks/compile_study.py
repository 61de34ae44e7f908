"""A study of the ``paper`` space's deep configurations with and without ``--compile inductor``, on the CPU.

Six deep configurations of ``paper`` (MMT-2M on T1WI+FLAIR and FLAIR+DWI, MMT-1M on T1WI and DWI, MFN-VAE on
all three and on FLAIR), ``--samples`` trials each, 5 folds x ``--epochs`` epochs, on the breast-cancer table
(569 patients), local Ray with 2 CPUs (1 CPU and 1 torch thread per trial), W&B off, no robustness table.
The two modes alternate, ``--repeats`` times; Ray is started afresh for every run (both pay it), and every
compiled run starts with an empty Inductor kernel cache, so each pays its compiles in full (the first study
on a machine; a later study would find the kernels on disk). Reported: wall time min / median, deep trials
per minute, and the largest difference in out-of-fold probability between the two modes' matching trials
(the same seed gives the same first trials: TPE samples its first 10 at random).

    python benchmarks/compile_study.py [--samples 4] [--epochs 100] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402

CONFIGURATIONS = [
    "mmt2m/T1WI+FLAIR",
    "mmt2m/FLAIR+DWI",
    "mmt1m/T1WI",
    "mmt1m/DWI",
    "mfnvae/T1WI+FLAIR+DWI",
    "mfnvae/FLAIR",
]


def one_study(features: Path, folder: str, name: str, samples: int, epochs: int, backend: str | None):
    import ray

    from mmt_tune.study.entry import run_study

    if backend is not None:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-", dir=folder)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        result = run_study(
            "paper",
            features,
            samples=samples,
            epochs=epochs,
            storage=folder,
            name=name,
            wandb="off",
            verbose=0,
            robustness=False,
            compile=backend,
            configurations=CONFIGURATIONS,
        )
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    return seconds, result


def probabilities(result) -> dict:
    """Out-of-fold probabilities per (configuration, learning rate), the key two modes' trials share."""
    import pandas as pd

    predictions = pd.read_parquet(result.experiment / "predictions.parquet")
    trials = result.trials.drop_duplicates("trial_id").set_index("trial_id")
    out = {}
    for trial_id, rows in predictions.groupby("trial_id"):
        row = trials.loc[trial_id]
        key = (f"{row['model']}/{row['present']}", round(float(row["config/lr"]), 15))
        out[key] = rows.sort_values(["fold", "row"])["probability"].to_numpy()
    return out


def main(argv=None) -> int:
    import numpy as np

    from mmt_tune.data.public import breast_cancer_table
    from mmt_tune.data.table import write_feature_table

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    seconds = {"eager": [], "inductor": []}
    worst = 0.0
    before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        features = Path(folder) / "breast.parquet"
        write_feature_table(breast_cancer_table(), features, {})
        for repeat in range(args.repeats):
            order = ("eager", "inductor") if repeat % 2 == 0 else ("inductor", "eager")
            found = {}
            for mode in order:
                backend = None if mode == "eager" else "inductor"
                took, result = one_study(
                    features, folder, f"{mode}-{repeat}", args.samples, args.epochs, backend
                )
                seconds[mode].append(took)
                found[mode] = probabilities(result)
                print(mode, repeat, f"{took:.1f}s", flush=True)
            shared = set(found["eager"]) & set(found["inductor"])
            for key in shared:
                worst = max(worst, float(np.max(np.abs(found["eager"][key] - found["inductor"][key]))))
    after = load_average()
    trials = args.samples * len(CONFIGURATIONS)
    lines = [
        f"`paper` space, {len(CONFIGURATIONS)} deep configurations ({', '.join(CONFIGURATIONS)}) x "
        f"{args.samples} trials = {trials} trials, 5 folds x {args.epochs} epochs, breast-cancer table (569 "
        f"patients), local Ray with 2 CPUs, 1 CPU and 1 torch thread per trial, {args.repeats} interleaved "
        "repeats, Ray started for each run, every compiled run with an empty Inductor cache.",
        "",
        "| training step | min (s) | median (s) | deep trials / min (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for mode, values in seconds.items():
        low, median = min_median(values)
        label = "eager (default)" if mode == "eager" else "`--compile inductor`"
        lines.append(f"| {label} | {low:.1f} | {median:.1f} | {60 * trials / median:.2f} |")
    ratio = min_median(seconds["eager"])[1] / min_median(seconds["inductor"])[1]
    lines += [
        "",
        f"Throughput, compiled / eager (medians): {ratio:.2f}x. Largest |Δ out-of-fold probability| between "
        f"matching trials: {worst:.1e}. Before: {before}; after: {after}.",
    ]
    report(
        f"compile-study-{args.epochs}",
        f"A paper-space study compiled vs eager ({args.epochs} epochs)",
        lines,
        args.record,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
