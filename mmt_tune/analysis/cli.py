"""Command-line pieces the analysis commands share (``analysis.importance``, ``analysis.metrics``,
``analysis.report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmt_tune.cli import add_quiet
from mmt_tune.metrics import METRICS


def default_out(path: Path) -> Path:
    """``<results folder>/analysis``, or ``analysis`` beside a trials-table file."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / "analysis"


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse prints the one-line error and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        type=Path,
        help="results folder of python -m mmt_tune.run, or a trials table (.parquet/.csv)",
    )
    parser.add_argument(
        "--space",
        default=None,
        help="search space (a study's space.json or search-space YAML); "
        "default: space.json in the results folder",
    )
    parser.add_argument(
        "--objective", default="auc", choices=METRICS, help="metric whose fold mean is analysed"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/analysis)")
    parser.add_argument("--study", default=None, help="the study to analyse, when the table holds several")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    add_quiet(parser)
    parser.add_argument(
        "--dpi",
        type=positive_int,
        default=None,
        help="PNG resolution (default 300); a PDF is written beside each PNG",
    )
