"""Extraction throughput: ``mmt_tune.extract`` vs PyRadiomics' own batch command line, side by side.

Both tools run as command lines on the same phantom scans with the same settings file and the same number of
workers, timed from process start to exit (imports, Ray or multiprocessing start-up, and output writing
included). Three runs per repeat, interleaved in this order: ours with an empty cache (cold),
``pyradiomics <csv> -j N``, ours again (cached); ``--repeats`` (default 3) times; min and median of each, the
load average before and after. Every process runs with one ITK/BLAS thread per worker
(``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1``, ``OMP_NUM_THREADS=1``), so N workers use N cores in both tools.
The script also checks that both tools produced the same feature values.

    python benchmarks/extract_throughput.py                 # default phantom cohort (279 patients, 837 scans)
    python benchmarks/extract_throughput.py --patients 60 --params paper --record

Targets: cold >= 0.9x the PyRadiomics CLI's throughput; cached >= 50x faster than cold.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, min_median, report, timed  # noqa: E402

from mmt_tune.data.synth import PhantomConfig, config_from_args, generate_cohort  # noqa: E402
from mmt_tune.data.synth import build_parser as synth_parser  # noqa: E402
from mmt_tune.modalities import MODALITIES  # noqa: E402
from mmt_tune.radiomics.settings import load_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--patients", type=int, default=None, help="phantom cohort size (default: the paper's 279)"
    )
    parser.add_argument(
        "--params", default="fast", help="settings: fast, paper or a YAML path (default fast)"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers for both tools (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the three runs")
    parser.add_argument(
        "--default-threads",
        action="store_true",
        help="also time the CLI with ITK's default threads (a thread per core in every worker)",
    )
    parser.add_argument("--record", action="store_true", help="write the figures into benchmarks/RESULTS.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmt-bench-extract-"))
    try:
        synth_args = ["--out", str(work / "cohort")] + (
            ["--patients", str(args.patients)] if args.patients else []
        )
        config: PhantomConfig = config_from_args(synth_parser().parse_args(synth_args))
        manifest = generate_cohort(work / "cohort", config, progress=False)
        settings = load_settings(args.params)
        params = work / "params.yaml"
        params.write_text(settings.text)
        rows = list(csv.DictReader(manifest.open()))
        batch = work / "pyradiomics-batch.csv"  # PyRadiomics' batch format: one (Image, Mask) per line
        with batch.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Image", "Mask"])
            for row in rows:
                for modality in MODALITIES:
                    writer.writerow(
                        [
                            work / "cohort" / row[f"{modality}_image"],
                            work / "cohort" / row[f"{modality}_mask"],
                        ]
                    )
        n_scans = len(rows) * len(MODALITIES)
        bin_dir = Path(sys.executable).parent
        ours = [
            sys.executable,
            "-m",
            "mmt_tune.extract",
            "--manifest",
            str(manifest),
            "--params",
            str(params),
            "--out",
            str(work / "ours" / "features.parquet"),
            "--workers",
            str(args.workers),
            "--no-progress",
        ]
        theirs = [
            str(bin_dir / "pyradiomics"),
            str(batch),
            "-p",
            str(params),
            "-j",
            str(args.workers),
            "-o",
            str(work / "pyradiomics.csv"),
            "-f",
            "csv",
        ]

        env = dict(os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1", OMP_NUM_THREADS="1")
        cold, cli, cached, cli_default = [], [], [], []
        before = load_average()
        for _ in range(args.repeats):
            shutil.rmtree(work / "ours", ignore_errors=True)
            cold.append(timed(ours, env=env))
            cli.append(timed(theirs, env=env))
            cached.append(timed(ours, env=env))
            if args.default_threads:
                cli_default.append(timed(theirs))
        after = load_average()
        _check_same_features(work / "ours" / "features.parquet", work / "pyradiomics.csv", rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    (m_cold, t_cold), (m_cli, t_cli), (m_cached, t_cached) = (min_median(x) for x in (cold, cli, cached))
    rate = lambda seconds: n_scans / len(MODALITIES) / (seconds / 60)  # noqa: E731  (cases/min)
    lines = [
        f"Cohort: {len(rows)} phantom patients x {len(MODALITIES)} modalities = {n_scans} scans; settings "
        f"`{args.params}`; {args.workers} workers, one ITK thread each; {args.repeats} interleaved repeats "
        "(cold, CLI, cached); ratios and rates from the medians.",
        "",
        "| run | min (s) | median (s) | cases/min | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| PyRadiomics CLI (`pyradiomics batch.csv -j {args.workers}`) | {m_cli:.1f} | {t_cli:.1f} | {rate(t_cli):.0f} | 1.00x (baseline) |",
        f"| mmt_tune.extract, cold cache | {m_cold:.1f} | {t_cold:.1f} | {rate(t_cold):.0f} | {t_cli / t_cold:.2f}x the CLI's throughput |",
        f"| mmt_tune.extract, cached re-run | {m_cached:.1f} | {t_cached:.1f} | {rate(t_cached):.0f} | {t_cold / t_cached:.0f}x faster than cold |",
    ]
    if cli_default:
        low, median = min_median(cli_default)
        lines.append(
            f"| PyRadiomics CLI, ITK's default threads (a thread per core per worker) | {low:.1f} | {median:.1f} "
            f"| {rate(median):.0f} | {t_cli / median:.2f}x the pinned CLI's throughput |"
        )
    lines += ["", f"Before: {before}; after: {after}."]
    report(f"extract-{args.params}", f"Extraction throughput (settings `{args.params}`)", lines, args.record)
    return 0


def _check_same_features(ours_path: Path, theirs_path: Path, rows: list[dict]) -> None:
    """Both tools must have computed the same values (else the comparison would be meaningless)."""
    ours = pd.read_parquet(ours_path)
    theirs = pd.read_csv(theirs_path)
    features = [c for c in theirs.columns if c.startswith("original_")]
    for i, row in enumerate(rows[:5]):
        for j, modality in enumerate(MODALITIES):
            expected = theirs.iloc[i * len(MODALITIES) + j][features].astype(float).to_numpy()
            got = ours.loc[ours["patient_id"] == row["patient_id"], [f"{modality}__{f}" for f in features]]
            np.testing.assert_allclose(
                got.to_numpy()[0], expected, rtol=1e-9, err_msg=f"{row['patient_id']} {modality}"
            )


if __name__ == "__main__":
    sys.exit(main())
