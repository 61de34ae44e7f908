"""``python -m mmt_tune.train``: cross-validate one configuration from the command line.

``python -m mmt_tune.train --features F.parquet --model mmt1m --present T1WI [--config cfg.yaml] [--out DIR]``
prints the fold table and, with ``--out``, writes folds.csv, losses.csv, predictions.csv and the resolved
config.yaml. The work is :func:`mmt_tune.training.crossval.train_configuration`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from mmt_tune import models
from mmt_tune.cli import HelpFormatter, add_version, parse_present, read_config
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError, describe
from mmt_tune.metrics import METRICS, summary_line
from mmt_tune.modalities import table_modalities
from mmt_tune.training.crossval import TrainResult, train_configuration
from mmt_tune.training.trainer import resolve_device


def write_outputs(result: TrainResult, config: TrainConfig, out: Path) -> None:
    """folds.csv, losses.csv, predictions.csv and the resolved config.yaml, each written atomically."""
    import yaml

    from mmt_tune._io import atomic_path, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("folds", result.folds),
        ("losses", result.losses),
        ("predictions", result.predictions),
    ):
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    resolved = asdict(config)
    resolved["present"] = list(config.present)
    write_text_atomic(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))


def format_folds(result: TrainResult) -> str:
    """The fold table, then mean ± std over folds of every metric."""
    frame = result.folds[["fold", "repeat", "n_train", "n_synthetic", "n_val", *METRICS]]
    table = frame.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    return f"{table}\nmean ± std: {summary_line(result.summary())}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.train",
        description="Cross-validate one configuration (model x present modalities x hyperparameters).",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--features", required=True, type=Path, help="feature table (.parquet)")
    parser.add_argument(
        "--model",
        required=True,
        choices=list(models.names()),
        help="a registered model (deep or a classical baseline)",
    )
    parser.add_argument("--present", required=True, help="present modalities, e.g. T1WI or T1WI+FLAIR")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML of hyperparameters (lr, alpha_<MOD>, beta, gamma, d_model, k, ...)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 200, the paper's)")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeated CV: k-fold splits from this many seeds (default 1)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="study seed: folds, SMOTE, initialisation (default 0)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument(
        "--compile",
        default=None,
        metavar="BACKEND",
        help="compile the training step with torch.compile (inductor on this 2-core CPU: 1.15-1.7x faster epochs "
        "after a 12-26 s compile; where it cannot compile, a note and eager training; docs/commands.md)",
    )
    parser.add_argument("--sequential", action="store_true", help="train folds one by one instead of packed")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads: 1 (as a one-CPU study trial) is bit-exact packed vs sequential and, on a "
        "busy machine, many times faster than torch's default of one per core",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for folds.csv, losses.csv, predictions.csv"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.data.table import read_feature_table

    args = build_parser().parse_args(argv)
    from mmt_tune._io import output_unit

    if args.threads < 1:
        print(f"error: --threads must be >= 1 (got {args.threads})", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    try:
        options = read_config(args.config)
        table, _ = read_feature_table(args.features)
        try:
            config = TrainConfig.from_options(
                args.model,
                parse_present(args.present),
                options,
                modalities=table_modalities(list(table.columns)),
                epochs=args.epochs,
                folds=args.folds,
                repeats=args.repeats,
                seed=args.seed,
                device=args.device,
                compile=args.compile,
            )
        except InputError as exc:
            raise InputError(f"{args.config}: {exc}" if args.config else str(exc)) from None
        resolve_device(config.device)
        if table["patient_id"].duplicated().any():
            print(
                "note: some rows repeat a patient_id: folds are grouped by patient (stratified group k-fold)",
                file=sys.stderr,
            )
        result = train_configuration(table, config, packed=not args.sequential)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    how = (
        "scikit-learn"
        if config.baseline
        else f"x {config.epochs} epochs, {'sequential' if args.sequential else 'packed'}"
    )
    print(
        f"{config.model} present={'+'.join(config.present)}: {config.folds} folds"
        f"{f' x {config.repeats} repeats' if config.repeats > 1 else ''} ({how}) in {result.seconds:.1f} s"
    )
    print(format_folds(result))
    if args.out is not None:
        with output_unit():  # the four files replaced together, or none
            write_outputs(result, config, args.out)
        print(f"wrote folds.csv, losses.csv, predictions.csv, config.yaml -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
