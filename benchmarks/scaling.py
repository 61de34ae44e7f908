"""Scale-out shape: extraction and study throughput on 1, 2 and 3 local Ray nodes (one machine).

Each run builds a ``ray.cluster_utils.Cluster`` like ``cluster.yaml``'s: a head without CPUs (driver only)
and N worker nodes of one CPU each, then
1. extracts a fresh phantom cohort (``--patients`` patients x 3 scans, ``fast`` settings, empty cache);
2. runs a study (``mmt1m`` space: 3 configurations x ``--trials`` trials, ``--epochs`` epochs, 3 folds) on
   the 279-patient phantom features.
All node counts run side by side in one invocation, interleaved (3, 2, 1 nodes, then again), ``--repeats``
times (default 3); min and median of each, ratios from the medians against 1 node, the load average before
and after; one torch and one ITK thread per task. The nodes share this machine's cores, so the figures show
the shape of the scaling (how close to linear until the cores run out), not what separate machines would give.

    python benchmarks/scaling.py [--patients 60] [--trials 4] [--epochs 30] [--nodes 3 2 1] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402


def one_size(
    workers: int, manifest: Path, features: Path, args, work: Path, tag: str
) -> tuple[float, float, int, int]:
    import ray
    from ray.cluster_utils import Cluster

    from mmt_tune.radiomics.extract import extract_features
    from mmt_tune.study.entry import run_study

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        start = time.perf_counter()
        extraction = extract_features(
            manifest,
            "fast",
            work / f"features-{tag}.parquet",
            cache_dir=work / f"cache-{tag}",
            progress=False,
        )
        extract_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = run_study(
            "mmt1m",
            features,
            samples=args.trials,
            epochs=args.epochs,
            folds=3,
            storage=work / "results",
            name=f"scaling-{tag}",
            wandb="off",
            verbose=0,
        )
        study_seconds = time.perf_counter() - start
        return extract_seconds, study_seconds, extraction.n_computed, result.trials["trial_id"].nunique()
    finally:
        ray.shutdown()
        cluster.shutdown()
        os.environ.pop("TUNE_MAX_PENDING_TRIALS_PG", None)  # set per run from the cluster's size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=60, help="phantom patients to extract (x 3 scans)")
    parser.add_argument("--trials", type=int, default=4, help="trials per configuration (3 configurations)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--nodes", type=int, nargs="+", default=[3, 2, 1], help="worker-node counts, run in this order"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every node count")
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"  # inherited by the nodes' workers

    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.synth import PhantomConfig, generate_cohort

    work = Path(tempfile.mkdtemp(prefix="mmt-bench-scaling-"))
    n_sclc = round(args.patients * 100 / 279)
    manifest = generate_cohort(
        work / "cohort", PhantomConfig(n_sclc=n_sclc, n_nsclc=args.patients - n_sclc, seed=1), progress=False
    )
    features = phantom_features(progress=False)
    # Run order: the node counts as given (default largest first, so the 1-node baseline is not the one
    # paying for cold OS caches), interleaved, --repeats times; ratios are against the smallest cluster.
    times: dict[int, list[tuple[float, float]]] = {w: [] for w in args.nodes}
    counts: dict[int, tuple[int, int]] = {}
    before = load_average()
    for repeat in range(args.repeats):
        for workers in args.nodes:
            extract_s, study_s, scans, trials = one_size(
                workers, manifest, features, args, work, f"{workers}-{repeat}"
            )
            times[workers].append((extract_s, study_s))
            counts[workers] = (scans, trials)
            print(workers, repeat, extract_s, study_s, flush=True)
    after = load_average()
    measured = {}
    for workers, pairs in times.items():
        (e_min, e_med), (s_min, s_med) = (min_median([p[i] for p in pairs]) for i in (0, 1))
        scans, trials = counts[workers]
        measured[workers] = (e_min, e_med, s_min, s_med, scans / e_med, trials / s_med * 60)
    base = measured[min(measured)]
    rows = [
        f"| {w} | {e_min:.1f} / {e_med:.1f} | {sps:.2f} | {sps / base[4]:.2f}x | {s_min:.1f} / {s_med:.1f} | "
        f"{tpm:.2f} | {tpm / base[5]:.2f}x |"
        for w, (e_min, e_med, s_min, s_med, sps, tpm) in sorted(measured.items())
    ]
    report(
        "scaling",
        "Extraction and study throughput on 1-3 local nodes",
        [
            f"Head without CPUs + N worker nodes of 1 CPU each, all on this machine. Extraction: {args.patients} "
            f"phantom patients x 3 scans, `fast` settings, cold cache. Study: `mmt1m`, 3 configurations x "
            f"{args.trials} trials, {args.epochs} epochs, 3 folds, 279-patient phantom features, W&B off. "
            f"{args.repeats} interleaved repeats; one torch and one ITK thread per task; rates from the medians.",
            "",
            "| worker nodes | extraction min / median (s) | scans/s | vs 1 node | study min / median (s) | "
            "trials/min | vs 1 node |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"Before: {before}; after: {after}.",
        ],
        args.record,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
