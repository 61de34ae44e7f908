"""``python -m analysis.importance``: the command line of the importance analysis."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from mmt_tune.analysis.cli import add_common_arguments, default_out
from mmt_tune.analysis.importance.study import ENGINES, importance
from mmt_tune.analysis.importance.table import table3, write_importance
from mmt_tune.analysis.importance.types import ImportanceOptions
from mmt_tune.analysis.results import load_study
from mmt_tune.cli import HelpFormatter, add_version
from mmt_tune.errors import InputError, describe


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.importance",
        description="Hyperparameter importance (fANOVA) per model and modality configuration: the paper's "
        "Table 3 as Markdown, CSV and LaTeX, with bar and main-effect plots.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    add_common_arguments(parser)
    defaults = ImportanceOptions()
    parser.add_argument(
        "--engine", default=defaults.engine, choices=ENGINES, help="fanova package or Optuna's evaluator"
    )
    parser.add_argument("--seeds", type=int, default=defaults.seeds, help="random-forest seeds (mean ± std)")
    parser.add_argument("--trees", type=int, default=defaults.n_trees, help="trees per forest")
    parser.add_argument(
        "--min-samples-leaf", type=int, default=None, help="fanova leaf size (default: max(1, trials // 200))"
    )
    parser.add_argument(
        "--min-trials",
        type=int,
        default=defaults.min_trials,
        help="configurations with fewer complete trials are noted, not analysed",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=defaults.pair_candidates,
        help="interactions among this many strongest parameters (fanova engine)",
    )
    parser.add_argument(
        "--workers",
        "--jobs",
        dest="jobs",
        type=int,
        default=None,
        help="worker processes (default: CPU count)",
    )
    return parser


def options_from(args: argparse.Namespace) -> ImportanceOptions:
    return replace(
        ImportanceOptions(),
        objective=args.objective,
        engine=args.engine,
        seeds=args.seeds,
        n_trees=args.trees,
        min_samples_leaf=args.min_samples_leaf,
        min_trials=args.min_trials,
        pair_candidates=args.pairs,
        jobs=args.jobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mmt_tune._io import output_unit

    try:
        study = load_study(args.results, args.space, args.study)
        result = importance(study, options_from(args), progress=not args.no_progress)
        out = args.out or default_out(args.results)
        with output_unit():  # every table and figure replaced together, or none
            write_importance(result, out, plots=not args.no_plots, dpi=args.dpi)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    from mmt_tune.analysis.tables import to_markdown

    print(to_markdown(table3(result), result.all_notes()))
    print(f"wrote importance.csv, interactions.csv, table3.md/.csv/.tex and figures -> {out}")
    return 0
