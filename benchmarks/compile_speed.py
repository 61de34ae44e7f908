"""Eager vs compiled (``--compile inductor``) training on the CPU: time per epoch, compile time, agreement.

For MMT-2M (T1WI+FLAIR), MMT-1M (T1WI) and MFN-VAE (all three), at the default width and at twice it
(``d_model`` 128 for MMT, ``latent`` 64 for MFN-VAE, ``hidden`` 256 for both: the paper gives no width and
searches none, so this is the widest we train), as one trial (its 5 folds packed) and as a pack of 4 trials
(20 slices), on the breast-cancer table (569 patients) and the phantom (279). One torch thread, in one
process; each cell trains ``--epochs`` epochs eagerly and compiled, the two alternating, ``--repeats`` times.

- Time per epoch: the median over epochs 2..E of a run (epoch 1 holds the compile); min and median of those
  medians over the repeats.
- Compile: the compiled run's first epoch minus its median epoch, in the first repeat. Inductor's kernel
  cache starts empty (a fresh ``TORCHINDUCTOR_CACHE_DIR``), so it is the cost on a machine that has not
  compiled the shape before; later repeats reuse the step compiled in this process (no compile at all).
- Agreement: the largest difference between the compiled and the eager run's out-of-fold probabilities.

    python benchmarks/compile_speed.py [--epochs 8] [--repeats 3] [--tables breast,phantom] [--record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report  # noqa: E402

MODELS = {"mmt2m": ["T1WI", "FLAIR"], "mmt1m": ["T1WI"], "mfnvae": ["T1WI", "FLAIR", "DWI"]}
WIDE = {
    "mmt2m": {"d_model": 128, "hidden": 256},
    "mmt1m": {"d_model": 128, "hidden": 256},
    "mfnvae": {"latent": 64, "hidden": 256},
}


def run_cell(table, model, width, trials, epochs, backend):
    """Seconds per epoch (list), and the out-of-fold probabilities, of one run."""
    import numpy as np

    from mmt_tune.config import TrainConfig
    from mmt_tune.training.trial_packs import train_trials

    options = {"epochs": epochs, **(WIDE[model] if width == "wide" else {})}
    configs = [
        TrainConfig.from_options(model, MODELS[model], {**options, "lr": 1e-4 * (1 + i)}, compile=backend)
        for i in range(trials)
    ]
    stamps = [time.perf_counter()]
    results = train_trials(table, configs, on_epoch=lambda epoch, info: stamps.append(time.perf_counter()))
    epoch_seconds = list(np.diff(stamps))
    probabilities = np.concatenate([r.predictions["probability"].to_numpy() for r in results])
    return epoch_seconds, probabilities


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tables", default="breast,phantom")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")  # before torch is imported
    import numpy as np
    import torch

    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.public import breast_cancer_table
    from mmt_tune.data.table import read_feature_table
    from mmt_tune.training.compiled import prepare

    torch.set_num_threads(1)
    prepare()
    tables = {
        "breast": lambda: breast_cancer_table(),
        "phantom": lambda: read_feature_table(phantom_features(progress=False))[0],
    }
    cells = [
        (name, model, width, trials)
        for name in args.tables.split(",")
        for model in MODELS
        for width in ("default", "wide")
        for trials in (1, 4)
    ]
    loaded = {name: tables[name]() for name in args.tables.split(",")}
    before = load_average()
    epoch = {(c, mode): [] for c in cells for mode in ("eager", "inductor")}
    compile_s, agreement = {}, {}
    for repeat in range(args.repeats):
        for cell in cells:
            name, model, width, trials = cell
            order = ("eager", "inductor") if repeat % 2 == 0 else ("inductor", "eager")
            probabilities = {}
            for mode in order:
                seconds, probabilities[mode] = run_cell(
                    loaded[name], model, width, trials, args.epochs, None if mode == "eager" else "inductor"
                )
                typical = statistics.median(seconds[1:])
                epoch[(cell, mode)].append(typical)
                if mode == "inductor" and repeat == 0:
                    compile_s[cell] = seconds[0] - typical
            agreement[cell] = max(
                agreement.get(cell, 0.0),
                float(np.max(np.abs(probabilities["eager"] - probabilities["inductor"]))),
            )
            print(cell, {m: round(epoch[(cell, m)][-1], 4) for m in order}, flush=True)
    after = load_average()
    lines = [
        f"Per-epoch time, eager vs `--compile inductor`, {args.epochs} epochs per run (median of epochs 2..E), "
        f"{args.repeats} interleaved repeats in one process, 1 torch thread, torch {torch.__version__}, "
        "device cpu. Compile: the first compiled epoch minus a typical one, with an empty Inductor cache. "
        "|Δp|: the largest difference in out-of-fold probability between the two runs.",
        "",
        "| table | model | width | trials packed | eager s/epoch min / median | compiled s/epoch min / median "
        "| speed-up (medians) | compile (s) | max abs Δp |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in cells:
        name, model, width, trials = cell
        e_min, e_med = min_median(epoch[(cell, "eager")])
        c_min, c_med = min_median(epoch[(cell, "inductor")])
        lines.append(
            f"| {name} | {model} | {width} | {trials} | {e_min:.3f} / {e_med:.3f} | {c_min:.3f} / {c_med:.3f} "
            f"| {e_med / c_med:.2f}x | {compile_s[cell]:.1f} | {agreement[cell]:.1e} |"
        )
    lines += ["", f"Before: {before}; after: {after}."]
    report("compile-speed", "Eager vs compiled training on the CPU", lines, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
