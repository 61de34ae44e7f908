"""The command line of ``python -m mmt_tune.extract``: PyRadiomics features for every case of a manifest,
as a feature table (around :func:`mmt_tune.radiomics.extract.extract_features`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmt_tune.cli import HelpFormatter, add_quiet, add_verbose, add_version
from mmt_tune.errors import InputError, describe
from mmt_tune.modalities import COLUMN_SEPARATOR

EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.extract",
        formatter_class=HelpFormatter,
        description=(
            "Extract PyRadiomics features for every (case, modality) of a manifest, one Ray task each, "
            "cached by content hash, into a Parquet feature table."
        ),
        epilog=(
            "Exit codes: 0 success; 1 some cases failed (listed in failures.csv beside the output); "
            "2 bad input (manifest, settings or options)."
        ),
    )
    add_version(parser)
    parser.add_argument(
        "--manifest", required=True, type=Path, help="manifest.csv (see docs/design.md, 'Manifest')"
    )
    parser.add_argument(
        "--params",
        required=True,
        help="PyRadiomics settings YAML, or a shipped name: 'fast' (demos/tests) or 'paper' (the paper's filter set)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output feature table (.parquet)")
    parser.add_argument(
        "--address", default=None, help="address of an existing Ray cluster (default: start a local one)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel extractions (default: all local CPUs)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache folder (default: .mmt-cache/radiomics beside --out)",
    )
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even if some cases failed (they are still listed)",
    )
    parser.add_argument(
        "--positive",
        default=None,
        help="the label value of the positive class, when the manifest's labels are not SCLC/NSCLC or 1/0",
    )
    add_quiet(parser)
    add_verbose(parser, "Ray's own logs, warnings and worker output (quiet otherwise)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.data.table import table_shape
    from mmt_tune.radiomics.extract import extract_features

    args = build_parser().parse_args(argv)
    try:
        result = extract_features(
            args.manifest,
            args.params,
            args.out,
            address=args.address,
            workers=args.workers,
            cache_dir=args.cache_dir,
            positive=args.positive,
            progress=not args.no_progress,
            verbose=args.verbose,
        )
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    n_rows, columns = table_shape(result.output)
    n_features = sum(COLUMN_SEPARATOR in c for c in columns)
    if result.up_to_date:
        print(f"{result.output} is up to date ({n_rows} rows x {n_features} features; inputs unchanged)")
    else:
        print(
            f"wrote {n_rows} rows x {n_features} features -> {result.output} "
            f"({result.n_computed} scans extracted"
            + (f" on {len(result.nodes)} nodes" if len(result.nodes) > 1 else "")
            + f", {result.n_cached} from cache)"
        )
    for warning in result.warnings:
        print(
            f"warning: patient {warning['patient_id']}, {warning['modality']}: {warning['warning']}",
            file=sys.stderr,
        )
    if result.failures:
        where = result.output.parent / "failures.csv"
        print(f"{len(result.failures)} scan(s) failed; see {where}:", file=sys.stderr)
        for failure in result.failures[:10]:
            print(f"  {failure['file']}: {failure['error']}", file=sys.stderr)
        if not args.allow_failures:
            return EXIT_FAILURES
    return 0
