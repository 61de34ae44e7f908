"""A study with ``--pack-trials B`` vs one trial per Tune trial (today's launcher), same space, same budget.

A space (default ``mmt1m``: 3 configurations searching lr, beta, gamma and the reconstruction weights; or
``--space paper`` with ``--configurations``) on the 279-patient phantom, ``--samples`` trials per
configuration, 5 folds x ``--epochs`` epochs, one CPU and one torch thread per Tune trial on a local Ray
instance (2 CPUs) started once before timing. Today's launcher: one trial per Tune trial, a report every
epoch (``--report-every 1``, the setting before reports were thinned); the new one: packs of ``--pack`` trials and the
default reporting. The two alternate, ``--repeats`` times each; min and median wall time of the whole study
(Ray already up), trials per minute from the median, and the load average before and after.

    python benchmarks/study_packs.py [--samples 8] [--epochs 30] [--pack 4] [--repeats 3] [--record]
    python benchmarks/study_packs.py --space paper --epochs 200 --samples 4 --configurations \
        mmt2m/T1WI+FLAIR mmt1m/T1WI mfnvae/T1WI+FLAIR+DWI mfnvae/T1WI logreg/T1WI+FLAIR+DWI forest/T1WI+FLAIR+DWI
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
    from mmt_tune.study.entry import run_study

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--space", default="mmt1m")
    parser.add_argument("--configurations", nargs="*", default=None, help="only these (default: all)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pack", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--table", choices=["phantom", "breast"], default="phantom")
    parser.add_argument(
        "--baseline-report-every",
        type=int,
        default=1,
        help="reports of the one-trial-per-Tune-trial launcher (1: as before reports were thinned; 10: today)",
    )
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    if args.table == "breast":
        from mmt_tune.data.public import breast_cancer_table
        from mmt_tune.data.table import write_feature_table

        features = Path(tempfile.mkdtemp()) / "breast.parquet"
        write_feature_table(breast_cancer_table(), features, {})
    else:
        features = phantom_features(progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    from mmt_tune.spaces import load_space

    n_configurations = len(args.configurations or load_space(args.space).configurations)
    seconds: dict[int, list[float]] = {1: [], args.pack: []}
    before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for pack in seconds:
                start = time.perf_counter()
                result = run_study(
                    args.space,
                    features,
                    samples=args.samples,
                    epochs=args.epochs,
                    storage=folder,
                    name=f"p{pack}-{repeat}",
                    wandb="off",
                    verbose=0,
                    robustness=False,
                    pack_trials=pack,
                    configurations=args.configurations,
                    **({"report_every": args.baseline_report_every} if pack == 1 else {}),
                )
                seconds[pack].append(time.perf_counter() - start)
                trials = result.trials["trial_id"].nunique()
    after = load_average()
    chosen = f" ({', '.join(args.configurations)})" if args.configurations else ""
    lines = [
        f"`{args.space}` space{chosen}, {args.samples} trials x {n_configurations} configurations = {trials} "
        f"trials, 5 folds x {args.epochs} epochs, "
        f"{'phantom (279 patients)' if args.table == 'phantom' else 'breast-cancer table (569 patients)'}, local "
        f"Ray with 2 CPUs, 1 CPU and 1 torch thread per Tune trial, W&B off, {args.repeats} interleaved repeats. "
        f"One trial per Tune trial: a report every {args.baseline_report_every} epoch(s); packed: the launcher "
        "fits the pack size to the 2 trial slots, a pack reports (and checkpoints) every 10 epochs and at its end.",
        "",
        "| launcher | min (s) | median (s) | trials / min (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for pack, values in seconds.items():
        low, median = min_median(values)
        name = "today: one trial per Tune trial" if pack == 1 else f"`--pack-trials {pack}`"
        lines.append(f"| {name} | {low:.1f} | {median:.1f} | {60 * trials / median:.1f} |")
    ratio = min_median(seconds[1])[1] / min_median(seconds[args.pack])[1]
    lines += ["", f"Throughput, packed / today (medians): {ratio:.2f}x. Before: {before}; after: {after}."]
    section = "study-packs" if args.space == "mmt1m" else f"study-packs-{args.space}"
    if args.table == "breast":
        section += "-breast"
    title = f"Study throughput with --pack-trials {args.pack} (`{args.space}`, {args.epochs} epochs)"
    report(section, title, lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
