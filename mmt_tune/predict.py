"""``python -m mmt_tune.predict --bundle B --features new.parquet --out predictions.csv``: score new patients.

Each row is scored by the bundle's model for exactly the sequences it has (:mod:`mmt_tune.deploy.routing`);
the table must have the bundle's feature columns for every sequence it has, and was best extracted with the
same settings (checked through the hash in the table's metadata, :mod:`mmt_tune.deploy.validation`). With
labels, the external-validation metrics are printed with 95% bootstrap intervals and written beside the
predictions (``<out>.metrics.json``) with a calibration plot (``<out>.calibration.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mmt_tune.cli import HelpFormatter, add_version
from mmt_tune.deploy.bundle import load_bundle
from mmt_tune.deploy.routing import predict_table
from mmt_tune.deploy.validation import calibration_plot, check_features, read_table, validation
from mmt_tune.errors import InputError, describe
from mmt_tune.metrics import METRICS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.predict",
        description="Score new patients with a bundle (python -m mmt_tune.fit), each by the model for the "
        "modalities it has; with labels, external-validation metrics with 95% intervals.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder")
    parser.add_argument("--features", type=Path, required=True, help="table to score (.parquet or .csv)")
    parser.add_argument("--out", type=Path, required=True, help="predictions CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed of the intervals")
    return parser


def _repeated(predictions: pd.DataFrame) -> bool:
    """Whether a patient (or lesion) appears in two scored rows; says so: its validation metrics would count
    that patient twice."""
    keys = [c for c in ("patient_id", "lesion_id") if c in predictions.columns]
    scored = predictions[predictions["probability"].notna()]
    repeated = scored[scored.duplicated(keys, keep=False)]
    if repeated.empty:
        return False
    print(
        f"note: {len(repeated)} scored rows repeat a {' and '.join(keys)} (first: "
        f"{repeated[keys[0]].iloc[0]}): no validation metrics, each patient must count once (predictions are "
        "written; remove the repeats, or give lesion-level rows a lesion_id)",
        file=sys.stderr,
    )
    return True


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import check_output_file, output_unit

    args = build_parser().parse_args(argv)
    try:
        check_output_file(args.out, "--out")
        bundle = load_bundle(args.bundle)
        table, metadata, labelled = read_table(args.features)
        notes = check_features(table, metadata, bundle, str(args.features))
        predictions = predict_table(bundle, table)
        scored = predictions["probability"].notna()
        if not scored.any():
            first = next((r for r in predictions["reason"] if r), "?")
            raise InputError(f"{args.features}: no row could be scored (row 1: {first})")
        report = validation(predictions, args.seed) if labelled and not _repeated(predictions) else None
        with output_unit():  # the predictions, metrics and figure appear together or not at all
            _write(predictions, report, args.out)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    _summary(predictions, report, args.out)
    return 0


def _write(predictions: pd.DataFrame, report: dict | None, out: Path) -> None:
    from mmt_tune._io import atomic_path, write_text_atomic

    with atomic_path(out) as tmp:
        predictions.to_csv(tmp, index=False)
    if report is not None:
        base = out.with_suffix("")
        write_text_atomic(f"{base}.metrics.json", json.dumps(report, indent=2) + "\n")
        calibration_plot(predictions, Path(f"{base}.calibration.png"))


def _summary(predictions: pd.DataFrame, report: dict | None, out: Path) -> None:
    scored = predictions["probability"].notna()
    used = predictions[scored].groupby(["model", "reads"]).size()
    print(f"scored {int(scored.sum())} of {len(predictions)} rows -> {out}")
    for (key, reads), count in used.items():
        print(f"  {count:>5} by {key} (reading {reads})")
    refused = predictions[~scored]
    for reason, count in refused.groupby("reason").size().items():
        print(f"  {count:>5} refused: {reason}")
    if report is None:
        return
    base = out.with_suffix("")
    cells = ", ".join(
        f"{m} {report[m]['value']:.3f} [{report[m]['ci95'][0]:.3f}, {report[m]['ci95'][1]:.3f}]"
        for m in METRICS
    )
    print(f"external validation ({report['n']} rows, 95% bootstrap CI): {cells}")
    if report["positives"] in (0, report["n"]):
        print(
            "note: the scored rows hold one class only: AUC, and the interval of any rate that needs both "
            "classes, are undefined (nan)",
            file=sys.stderr,
        )
    cal = report["calibration"]
    if cal["slope"] is not None:
        print(
            f"calibration: intercept {cal['intercept']:+.2f}, slope {cal['slope']:.2f}, Brier {report['brier']:.3f}"
        )
    print(f"wrote {base}.metrics.json, {base}.calibration.png")


if __name__ == "__main__":
    sys.exit(main())
