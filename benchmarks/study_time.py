"""How long the full ``paper`` study takes on this machine, from a slice: every configuration once.

The ``paper`` space (27 configurations: 13 deep, 14 baselines) with ``--samples`` trials each (default 1),
its own 200 epochs and 5 folds, on the breast-cancer table (569 patients), local Ray with all CPUs (1 CPU
and 1 torch thread per trial), W&B off, no robustness table. The slice's wall time W (Ray already up) gives
the full study's: 50 trials per configuration take about 50 / samples x (W - F) + F, F the launcher's fixed
cost per study (4.5 s, benchmarks/RESULTS.md "Study launcher"): trials are handed out round-robin, so every
batch of 27 has the slice's mix. The study's own printed estimate is shown beside it.

    python benchmarks/study_time.py [--samples 1] [--epochs 200] [--compile inductor] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, report  # noqa: E402

FIXED_S = 4.5
FULL = 50


def main(argv=None) -> int:
    import os

    import ray

    from mmt_tune.data.public import breast_cancer_table
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.entry import run_study

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="default: the space's (200)")
    parser.add_argument("--compile", default=None)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    before = load_average()
    with tempfile.TemporaryDirectory() as folder:
        features = Path(folder) / "breast.parquet"
        write_feature_table(breast_cancer_table(), features, {})
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        err = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stderr(err):
            result = run_study(
                "paper",
                features,
                samples=args.samples,
                epochs=args.epochs,
                storage=folder,
                name="slice",
                wandb="off",
                verbose=0,
                robustness=False,
                compile=args.compile,
            )
        wall = time.perf_counter() - start
        trials = result.trials["trial_id"].nunique()
        ray.shutdown()
    after = load_average()
    estimate = next((line for line in err.getvalue().splitlines() if line.startswith("estimate:")), "(none)")
    full = FULL / args.samples * (wall - FIXED_S) + FIXED_S
    lines = [
        f"`paper` space, all 27 configurations x {args.samples} trial(s) = {trials} trials, 5 folds x "
        f"{args.epochs or 200} epochs, breast-cancer table (569 patients), local Ray with {os.cpu_count()} "
        f"CPUs, 1 CPU and 1 torch thread per trial, W&B off, training step "
        f"{'eager' if args.compile is None else f'compiled ({args.compile})'}; one run.",
        "",
        f"Slice: {wall / 60:.1f} min. Full study ({FULL} trials per configuration, 1,350 trials), extrapolated "
        f"as {FULL}/{args.samples} x (slice - {FIXED_S} s) + {FIXED_S} s: **{full / 3600:.1f} h**. "
        f'The study\'s own estimate, printed after its first trials: "{estimate}".',
        "",
        f"Before: {before}; after: {after}.",
    ]
    report("study-time", "How long the full paper study takes here", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
