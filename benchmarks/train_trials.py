"""Many trials per process: B trials of one configuration packed as one model vs the same B trials one after
another (each with its folds packed, as a study trains them today), in one process.

MMT-1M (T1WI present) on the 279-patient phantom, 5 folds, ``--epochs`` epochs, B trials differing in lr and
beta (what the paper space searches). Torch threads pinned (``--threads``); the two modes alternate, each
``--repeats`` times after a warm-up; min and median wall time, trials per minute from the median, the load
average before and after. The trials' numbers are identical either way (tests/training/test_trial_packs.py).

    python benchmarks/train_trials.py [--trials 4] [--epochs 100] [--threads 1] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402


def main(argv=None) -> int:
    import torch

    from mmt_tune.config import TrainConfig
    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.training.crossval import train_configuration
    from mmt_tune.training.trial_packs import train_trials

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    table, _ = read_feature_table(phantom_features(progress=False))
    configs = [
        TrainConfig.from_options(
            "mmt1m", ["T1WI"], {"epochs": args.epochs, "lr": 1e-5 * (1 + i), "beta": 1 + 0.1 * i}
        )
        for i in range(args.trials)
    ]
    modes = {
        "one after another": lambda: [train_configuration(table, c) for c in configs],
        f"{args.trials} trials packed": lambda: train_trials(table, configs),
    }
    before = load_average()
    train_trials(table, [TrainConfig.from_options("mmt1m", ["T1WI"], {"epochs": 2})])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, run in modes.items():  # interleaved: both modes see the same machine state
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    after = load_average()
    lines = [
        f"B = {args.trials} MMT-1M trials, 5 folds x {args.epochs} epochs, phantom (279 patients), "
        f"{args.threads} torch thread(s), {args.repeats} interleaved repeats.",
        "",
        "| mode | min (s) | median (s) | trials / min (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, values in seconds.items():
        low, median = min_median(values)
        lines.append(f"| {name} | {low:.1f} | {median:.1f} | {60 * args.trials / median:.2f} |")
    ratio = (
        min_median(seconds["one after another"])[1] / min_median(seconds[f"{args.trials} trials packed"])[1]
    )
    lines += [
        "",
        f"Packed / sequential throughput (medians): {ratio:.2f}x. Before: {before}; after: {after}.",
    ]
    report(
        f"train-trials-{args.trials}-{args.threads}",
        f"Trials packed per process (B={args.trials}, {args.threads} thread)",
        lines,
        args.record,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
