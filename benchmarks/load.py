"""Load: a large synthetic cohort through a study, the report, ``fit`` and ``predict``.

A cohort of N patients x 4 sequences x 1,874 features per sequence (the paper's extraction width; float64,
a planted signal in the first 3 features of each sequence) goes through the commands a user runs, each as
its own process as from the shell:

1. ``mmt_tune.run``: a two-configuration study (logistic regression and MFN-VAE on all four sequences),
   2 trials each, 3 folds, 3 epochs, W&B off, one CPU per trial;
2. ``analysis.report`` of that study; 3. ``mmt_tune.fit`` of its best configurations;
4. ``mmt_tune.predict`` of N new patients.

For each command: wall time (process start to exit) and peak resident memory per process (the kernel's
``VmHWM`` of every process the command started, read from /proc every 0.2 s: the command itself, and for
the study its Ray processes, of which the largest trial worker is given), for N = 500 and 5,000 by default here (`--sizes`).
Three repeats per size, the sizes interleaved within each; times as min / median. Run:

    python benchmarks/load.py                # prints the table
    python benchmarks/load.py --save         # and records it in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402

from mmt_tune.analysis.tables import to_markdown  # noqa: E402

SEQUENCES = ("T1", "T1Gd", "T2", "FLAIR")
WIDTH = 1874
SPACE = """name: load
description: load test, logistic regression and MFN-VAE on four sequences
configurations:
  - {model: logreg, present: [T1, T1Gd, T2, FLAIR]}
  - {model: mfnvae, present: [T1, T1Gd, T2, FLAIR]}
parameters:
  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-3}
  C: {distribution: loguniform, low: 1.0e-2, high: 1.0}
fixed:
  epochs: 3
  folds: 3
"""


def cohort(n: int, seed: int, prefix: str = "P") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    blocks = [pd.DataFrame({"patient_id": [f"{prefix}{i:05d}" for i in range(n)], "label": y})]
    for s in SEQUENCES:
        values = rng.standard_normal((n, WIDTH))
        values[:, :3] += 0.8 * y[:, None]
        blocks.append(
            pd.DataFrame(values * 10 + 50, columns=[f"{s}__original_firstorder_F{j}" for j in range(WIDTH)])
        )
    return pd.concat(blocks, axis=1)


class Peaks(threading.Thread):
    """Peak resident memory (VmHWM, MiB) of a process and all its descendants; a process ever titled
    ``ray::ImplicitFunc`` (Tune's function trainable) is a trial worker."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peaks, self.stop = root, {}, threading.Event()

    def _tree(self) -> list[int]:
        parents = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = {self.root}, [self.root]
        while frontier:
            frontier = [p for p, parent in parents.items() if parent in frontier and p not in tree]
            tree.update(frontier)
        return sorted(tree)

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in self._tree():
                try:
                    title = (Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] or b"?").decode()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                hwm = next(
                    (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
                )
                kind = (
                    "worker"
                    if title.startswith("ray::ImplicitFunc")
                    else self.peaks.get(pid, ("other", 0))[0]
                )
                self.peaks[pid] = (kind, max(hwm / 1024, self.peaks.get(pid, ("", 0))[1]))
            time.sleep(0.2)

    def summary(self) -> dict[str, float]:
        own = self.peaks.get(self.root, ("", 0.0))[1]
        workers = [mib for kind, mib in self.peaks.values() if kind == "worker"]  # ever ran a trial
        return {"process": own, "worker": max(workers, default=0.0)}


def measured(cmd: list[str], env: dict) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    peaks = Peaks(proc.pid)
    peaks.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    peaks.stop.set()
    peaks.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{err[-2000:]}")
    return seconds, peaks.summary()


def one_size(n: int, folder: Path, env: dict, repeat: int = 0) -> dict:
    table = folder / f"train{n}.parquet"
    new = folder / f"new{n}.parquet"
    from mmt_tune.data.table import write_feature_table

    meta = {"modalities": list(SEQUENCES), "unit": "patient", "source": "imported"}
    if not table.is_file():  # one cohort per size, the same for every repeat
        write_feature_table(cohort(n, 0), table, meta)
        write_feature_table(cohort(n, 1, prefix="N"), new, meta)
    space = folder / "load.yaml"
    space.write_text(SPACE)
    py = sys.executable
    study = folder / "results" / f"load{n}-{repeat}"
    steps = {
        "run": [
            py,
            "-m",
            "mmt_tune.run",
            "--space",
            str(space),
            "--features",
            str(table),
            "--num-samples",
            "2",
            "--storage",
            str(folder / "results"),
            "--name",
            f"load{n}-{repeat}",
            "--wandb",
            "off",
        ],
        "report": [py, "-m", "analysis.report", str(study)],
        "fit": [py, "-m", "mmt_tune.fit", "--study", str(study), "--features", str(table)],
        "predict": [
            py,
            "-m",
            "mmt_tune.predict",
            "--bundle",
            str(study / "bundle"),
            "--features",
            str(new),
            "--out",
            str(folder / f"p{n}-{repeat}.csv"),
        ],
    }
    row = {"n": n, "repeat": repeat, "table MiB": table.stat().st_size / 2**20}
    for name, cmd in steps.items():
        seconds, peaks = measured(cmd, env)
        row[f"{name} s"] = seconds
        row[f"{name} MiB"] = peaks["process"]
        if name == "run":
            row["run worker MiB"] = peaks["worker"]
        print(f"n={n} {name}: {seconds:.1f} s, peak {peaks}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # sizes interleaved within each repeat
            for n in (int(s) for s in args.sizes.split(",")):
                rows.append(one_size(n, Path(tmp), env, repeat))
    runs = pd.DataFrame(rows)
    # per size: each wall time as min/median over the repeats, each peak memory as its median
    frame = runs.groupby("n", sort=True).median(numeric_only=True).drop(columns="repeat").reset_index()
    fastest = runs.groupby("n", sort=True).min(numeric_only=True).reset_index()
    load = os.getloadavg()
    shown = frame.round(0).astype({c: int for c in frame.columns}).astype({c: str for c in frame.columns})
    for column in [c for c in frame.columns if c.endswith(" s")]:
        shown[column] = [
            f"{lo:.0f} / {med:.0f}" for lo, med in zip(fastest[column], frame[column], strict=True)
        ]
    lines = [
        f"{len(SEQUENCES)} sequences x {WIDTH} features (float64); study: logreg + MFN-VAE on all four, 2 trials "
        "each, 3 folds, 3 epochs, one CPU per trial, one thread per process (OMP/MKL 1, torch 1); "
        f"{args.repeats} repeats, sizes interleaved within each; wall time (s) as min / median, peak = median "
        "VmHWM (MiB) of the command's own process, and for the study the largest Ray trial worker.",
        "",
        to_markdown(shown),
        "",
        f"Growth of the medians from {frame['n'].iloc[0]} to {frame['n'].iloc[-1]} patients "
        f"({frame['n'].iloc[-1] / frame['n'].iloc[0]:.0f}x): "
        + ", ".join(f"{c} {frame[c].iloc[-1] / frame[c].iloc[0]:.1f}x" for c in frame.columns if c != "n")
        + ".",
        f"Load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
    ]
    report("load", "Large cohorts: study, report, fit and predict", lines, args.save)


if __name__ == "__main__":
    main()
