"""``python -m mmt_tune.fit``: refit a study's chosen configurations on all rows and save them as a bundle.

``python -m mmt_tune.fit --study results/paper --features table.parquet [--configuration mmt2m/T1WI+FLAIR]``
refits each configuration's best trial on every row of the study's feature table (checked against the hash
the study recorded), optionally as an ensemble of ``--members`` seeds, and writes a bundle
(:mod:`mmt_tune.deploy.bundle`) that ``python -m mmt_tune.predict`` applies to new patients.

``python -m mmt_tune.fit --features table.parquet --model mfnvae --present T1WI+FLAIR+DWI [--config c.yaml]``
fits one configuration from a config file instead of a study. The work is :mod:`mmt_tune.deploy.from_study`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmt_tune.cli import HelpFormatter, add_version, command
from mmt_tune.config import TrainConfig
from mmt_tune.deploy.from_study import fit_all, study_choices
from mmt_tune.errors import InputError, describe
from mmt_tune.metrics import METRICS

if TYPE_CHECKING:
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.fit",
        description="Refit a study's best configurations (or one from a config file) on all rows of the "
        "feature table and save them as a bundle for python -m mmt_tune.predict.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--study", type=Path, default=None, help="a study's results folder (results/<name>)")
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        help="the feature table (a study's must match the hash it recorded; default for a phantom study: "
        "the phantom table)",
    )
    parser.add_argument(
        "--configuration", action="append", default=None, help="only this model/present (repeatable)"
    )
    parser.add_argument("--model", default=None, help="without --study: the model to fit")
    parser.add_argument(
        "--present", default=None, help="without --study: its present modalities (T1WI+FLAIR)"
    )
    parser.add_argument("--config", type=Path, default=None, help="without --study: YAML of its options")
    parser.add_argument("--members", type=int, default=1, help="ensemble members (seeds) per configuration")
    parser.add_argument(
        "--objective",
        default="auc",
        choices=METRICS,
        help="metric that ranks a study's trials (as in report)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="bundle folder (default: <study>/bundle)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.cli import parse_present, read_config
    from mmt_tune.data.table import describe_table, modality_columns, read_feature_table
    from mmt_tune.deploy.bundle import save_bundle
    from mmt_tune.modalities import table_modalities
    from mmt_tune.radiomics.cache import file_sha256

    args = build_parser().parse_args(argv)
    try:
        if args.members < 1 or args.threads < 1:
            raise InputError("--members and --threads must be >= 1")
        from mmt_tune._io import check_writable

        if args.out is not None:
            check_writable(args.out.parent, "--out")
        if (args.study is None) == (args.model is None):
            raise InputError("give --study (refit its best trials) or --model/--present (one configuration)")
        features = args.features
        data: dict = {}
        if args.study is not None:
            chosen, identity, data = study_choices(args.study, args.configuration, args.objective)
            if features is None and data.get("phantom"):
                from mmt_tune.data.phantom import phantom_features

                features = phantom_features(progress=False)
            if features is None:
                raise InputError("--features: the study's feature table is needed to refit it")
            if not Path(features).is_file():
                raise InputError(f"{features}: feature table not found")
            if file_sha256(Path(features)) != identity.get("features_sha256"):
                raise InputError(f"{features}: not the table this study was run on (its sha256 differs)")
            out = args.out or args.study / "bundle"
        else:
            if features is None or args.present is None or args.out is None:
                raise InputError("--model needs --present, --features and --out")
            options = read_config(args.config)
            out = args.out
        table, metadata = read_feature_table(features)
        if args.study is None:
            config = TrainConfig.from_options(
                args.model,
                parse_present(args.present),
                options,
                modalities=table_modalities(list(table.columns)),
            )
            chosen = [(config, None)]
        import torch

        torch.set_num_threads(args.threads)
        bundle = fit_all(table, chosen, args.members)
        description = describe_table(table, metadata)
        columns = modality_columns(table, description["modalities"])
        bundle.info = {
            "modalities": description["modalities"],
            "feature_columns": columns,
            "objective": args.objective,
            "training": {k: v for k, v in description.items() if k != "features_per_modality"},
            "features_sha256": file_sha256(Path(features)),
            "settings_sha256": metadata.get("settings_sha256"),
            "phantom": bool(data.get("phantom", False)),
        }
        save_bundle(bundle, out)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    print(f"wrote bundle ({len(bundle.configurations)} configuration(s)) -> {out}")
    print(
        f"score new patients: {command('predict')} --bundle {out} --features new.parquet --out predictions.csv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
