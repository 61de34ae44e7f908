"""A study with ``--pack-trials B`` vs one trial per Tune trial (today's launcher), same space, same budget.

The ``mmt1m`` space (3 configurations searching lr, beta, gamma and the reconstruction weights) on the
279-patient phantom, ``--samples`` trials per configuration, 5 folds x ``--epochs`` epochs, one CPU and one
torch thread per Tune trial on a local Ray instance started once before timing. The two launchers alternate,
``--repeats`` times each; min and median wall time of the whole study (Ray already up), trials per minute
from the median, and the load average before and after.

    python benchmarks/study_packs.py [--samples 8] [--epochs 30] [--pack 4] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402


def main(argv=None) -> int:
    import ray

    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.study import run_study

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pack", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    features = phantom_features(progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    trials = 3 * args.samples
    seconds: dict[int, list[float]] = {1: [], args.pack: []}
    before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for pack in seconds:
                start = time.perf_counter()
                result = run_study(
                    "mmt1m",
                    features,
                    samples=args.samples,
                    epochs=args.epochs,
                    storage=folder,
                    name=f"p{pack}-{repeat}",
                    wandb="off",
                    verbose=0,
                    robustness=False,
                    pack_trials=pack,
                )
                seconds[pack].append(time.perf_counter() - start)
                assert result.trials["trial_id"].nunique() == trials
    after = load_average()
    lines = [
        f"`mmt1m` space, {args.samples} trials x 3 configurations = {trials} trials, 5 folds x {args.epochs} "
        f"epochs, phantom (279 patients), local Ray with 2 CPUs, 1 CPU and 1 torch thread per Tune trial, "
        f"{args.repeats} interleaved repeats.",
        "",
        "| launcher | Tune trials | min (s) | median (s) | trials / min (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for pack, values in seconds.items():
        low, median = min_median(values)
        name = "one trial per Tune trial" if pack == 1 else f"`--pack-trials {pack}`"
        lines.append(
            f"| {name} | {-(-trials // pack)} | {low:.1f} | {median:.1f} | {60 * trials / median:.1f} |"
        )
    ratio = min_median(seconds[1])[1] / min_median(seconds[args.pack])[1]
    lines += ["", f"Throughput, packed / today (medians): {ratio:.2f}x. Before: {before}; after: {after}."]
    report("study-packs", f"Study throughput with --pack-trials {args.pack}", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
