"""Packed vs sequential cross-validated training: one trial, side by side in one run.

One trial = 5 folds x 200 epochs on the 279-patient phantom cohort (``fast`` features), for MMT-1M (present
T1WI) and MFN-VAE (all three modalities). "Sequential" trains the folds one after another through the same
code with one model slice each; "packed" trains the five folds as one batched model. Both get the same
preprocessing, seeds and fold metrics (checked). Wall time covers preprocessing and training.

    python benchmarks/train_packed.py [--epochs 200] [--repeats 3] [--threads 1] [--device cpu|cuda] [--record]
    python benchmarks/train_packed.py --scaling [--epochs 20] [--record]

Method: torch's intra-op threads are pinned (``--threads``, default 1, as a one-CPU Ray trial runs), the two
modes alternate (sequential, packed, sequential, ...) ``--repeats`` times in one process, and the table gives
the minimum and the median of each with the load average before and after (``uptime``'s numbers), so that a
busy machine shows in the record instead of in the ratio.

Target: packed >= 4x faster than sequential on a 2-core CPU.

``--scaling`` explains the ratio: it times one epoch for pack sizes k = 1, 2, 5, 10 (the five folds, repeated
for k = 10), fits ``epoch(k) = fixed + k * per_fold`` (fixed: per-operation dispatch, autograd and Python
work, paid once per step whatever k; per_fold: arithmetic that grows with k), and prints the speed-up that
this cost model allows for k = 5, ``5 (fixed + per_fold) / (fixed + 5 per_fold)``. It also profiles a packed
run to measure the matrix products' share of per_fold, the one part no restructuring of the element-wise work
can remove, and prints the ceiling that would remain if everything else per fold were free.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402

from mmt_tune.config import TrainConfig  # noqa: E402
from mmt_tune.data.phantom import prepare_phantom  # noqa: E402
from mmt_tune.data.table import read_feature_table  # noqa: E402
from mmt_tune.training.crossval import train_configuration

CASES = [("mmt1m", ("T1WI",)), ("mfnvae", ("T1WI", "FLAIR", "DWI"))]
PACK_SIZES = (1, 2, 5, 10)
MATMULS = {"aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"}


def scaling(table, config: TrainConfig, repeats: int = 3) -> dict:
    """Per-epoch seconds by pack size, the fitted cost model and the matmul share (see module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    from mmt_tune.training.preprocess import make_folds, modality_columns_of, preprocess_fold
    from mmt_tune.training.trainer import (
        fit_packed,  # the packed trainer itself: pack sizes other than the fold count
    )

    columns = modality_columns_of(table, config.modalities_used)
    folds = [
        preprocess_fold(table, columns, train, val, config.preprocess, random_state=f, fold=f)
        for f, (train, val) in enumerate(make_folds(table, config.folds, config.seed))
    ]
    runs: dict[int, list[float]] = {k: [] for k in PACK_SIZES}
    for _ in range(repeats):  # interleaved: this machine's timings drift by +-20%
        for k in PACK_SIZES:
            start = time.perf_counter()
            fit_packed((folds * 2)[:k], config, None)
            runs[k].append((time.perf_counter() - start) / config.epochs)
    per_epoch = {k: min_median(v)[1] for k, v in runs.items()}  # medians
    fastest = {k: min_median(v)[0] for k, v in runs.items()}
    per_fold, fixed = np.polyfit(PACK_SIZES, [per_epoch[k] for k in PACK_SIZES], 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fit_packed(folds, config, None)
    matmul = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMULS) / 1e6
    matmul_per_fold = matmul / len(folds) / config.epochs
    k = len(folds)
    return {
        "per_epoch": per_epoch,
        "fastest": fastest,
        "fixed": fixed,
        "per_fold": per_fold,
        "matmul_per_fold": matmul_per_fold,
        "model_ratio": k * (fixed + per_fold) / (fixed + k * per_fold),
        "matmul_ceiling": k * (fixed + matmul_per_fold) / (fixed + k * matmul_per_fold),
        "measured_ratio": k * per_epoch[1] / per_epoch[k],
    }


def main_scaling(table, args) -> int:
    sizes = " | ".join(f"k={k} min / median (ms)" for k in PACK_SIZES)
    lines = [
        f"Per-epoch time by pack size k ({args.epochs} epochs, min / median of 3 interleaved runs), "
        f"{args.cohort}, device `{args.device}`, torch {torch.__version__}, {torch.get_num_threads()} "
        "thread(s). Fit (on the medians): epoch(k) = fixed + k x per-fold. Ceiling: the k=5 speed-up the fit allows; matmul ceiling: the "
        "same if all per-fold work except the matrix products were free.",
        "",
        f"| model | {sizes} | fixed (ms) | per fold (ms) | matmul per fold (ms) | speed-up k=5 (measured) "
        "| ceiling | matmul ceiling |",
        "| --- |" + " ---: |" * (len(PACK_SIZES) + 6),
    ]
    before = load_average()
    for model, present in CASES:
        config = TrainConfig.from_options(model, present, {}, epochs=args.epochs, device=args.device)
        r = scaling(table, config)
        times = " | ".join(f"{r['fastest'][k] * 1e3:.0f} / {r['per_epoch'][k] * 1e3:.0f}" for k in PACK_SIZES)
        lines.append(
            f"| {model} ({'+'.join(present)}) | {times} | {r['fixed'] * 1e3:.0f} | {r['per_fold'] * 1e3:.1f} | "
            f"{r['matmul_per_fold'] * 1e3:.1f} | {r['measured_ratio']:.2f}x | {r['model_ratio']:.2f}x | "
            f"{r['matmul_ceiling']:.2f}x |"
        )
        print(lines[-1], flush=True)
    lines += ["", f"Before: {before}; after: {load_average()}."]
    report(
        f"train-scaling-{args.device}", f"Where the packed speed-up goes ({args.device})", lines, args.record
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=Path, default=None, help="feature table (default: phantom cohort)")
    parser.add_argument("--epochs", type=int, default=None, help="default 200; 20 with --scaling")
    parser.add_argument("--scaling", action="store_true", help="cost model by pack size instead (see above)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (pinned)")
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    features = args.features
    if features is None:
        from mmt_tune.radiomics.extract import extract_features

        work = Path(tempfile.gettempdir()) / "mmt-bench-phantom"
        manifest = prepare_phantom(work / "phantom", None, 0, progress=False)
        features = extract_features(manifest, "fast", work / "features.parquet", progress=False).output
    table, _ = read_feature_table(features)
    args.cohort = f"{len(table)} " + (
        "phantom patients (`fast` features)" if args.features is None else "rows"
    )
    if args.scaling:
        args.epochs = args.epochs or 20
        return main_scaling(table, args)
    args.epochs = args.epochs or 200

    before = load_average()
    lines = [
        f"One trial: 5 folds x {args.epochs} epochs, {args.cohort}, device `{args.device}`, torch "
        f"{torch.__version__}, {torch.get_num_threads()} intra-op thread(s); sequential and packed alternate, "
        f"{args.repeats} runs each in one process; wall time includes preprocessing.",
        "",
        "| model | sequential min / median (s) | packed min / median (s) | speed-up (medians) | trials/min packed "
        "| max fold ΔAUC |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for model, present in CASES:
        config = TrainConfig.from_options(model, present, {}, epochs=args.epochs, device=args.device)
        times: dict[str, list[float]] = {"sequential": [], "packed": []}
        results = {}
        for _ in range(args.repeats):
            for mode in ("sequential", "packed"):
                start = time.perf_counter()
                results[mode] = train_configuration(table, config, packed=mode == "packed")
                times[mode].append(time.perf_counter() - start)
        # With one intra-op thread the two modes agree bit for bit; with several, a reduction may be split
        # differently for 1 and 5 folds and rounding differences can grow, so report how far they drift apart.
        drift = float(np.max(np.abs(results["sequential"].folds["auc"] - results["packed"].folds["auc"])))
        (s_min, s_med), (p_min, p_med) = min_median(times["sequential"]), min_median(times["packed"])
        lines.append(
            f"| {model} ({'+'.join(present)}) | {s_min:.1f} / {s_med:.1f} | {p_min:.1f} / {p_med:.1f} | "
            f"{s_med / p_med:.2f}x | {60 / p_med:.2f} | {drift:.3f} |"
        )
        print(lines[-1], flush=True)
    lines += ["", f"Before: {before}; after: {load_average()}."]
    report(f"train-{args.device}", f"Packed vs sequential training ({args.device})", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
