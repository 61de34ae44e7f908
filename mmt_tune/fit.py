"""``python -m mmt_tune.fit``: refit a study's chosen configurations on all rows and save them as a bundle.

``python -m mmt_tune.fit --study results/paper --features table.parquet [--configuration mmt2m/T1WI+FLAIR]``
refits each configuration's best trial (the study's ranking, :func:`mmt_tune.study.records.rank_trials`)
on every row of the study's feature table (checked against the hash the study recorded), preprocessing and
model, optionally as an ensemble of ``--members`` seeds, and writes a bundle (:mod:`mmt_tune.bundle`) that
``python -m mmt_tune.predict`` applies to new patients.

``python -m mmt_tune.fit --features table.parquet --model mfnvae --present T1WI+FLAIR+DWI [--config c.yaml]``
fits one configuration from a config file instead of a study.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mmt_tune.cli import add_version
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError

if TYPE_CHECKING:
    from mmt_tune.bundle import Bundle


def study_choices(
    folder: Path, configurations: Sequence[str] | None = None, objective: str = "auc"
) -> tuple[list[tuple[TrainConfig, float]], dict, dict]:
    """Each configuration's best trial of the study in ``folder`` as a :class:`TrainConfig` with its mean
    cross-validated ``objective``; and the study's identity (study.json) and data description (data.json)."""
    from mmt_tune.study.guards import IDENTITY_FILE
    from mmt_tune.study.records import DATA_FILE, TRIALS_TABLE, best_trials

    table = folder / f"{TRIALS_TABLE}.parquet"
    identity_file = folder / IDENTITY_FILE
    if not table.is_file() or not identity_file.is_file():
        raise InputError(f"{folder}: not a finished study (no {table.name} or {IDENTITY_FILE})")
    identity = json.loads(identity_file.read_text())
    data = json.loads((folder / DATA_FILE).read_text()) if (folder / DATA_FILE).is_file() else {}
    from mmt_tune.fitting import best_configurations

    trials = pd.read_parquet(table)
    if "outer_fold" in trials.columns:
        raise InputError(
            f"{folder}: a nested study estimates performance; fit the final model from a flat study on all rows "
            "(the same space without --outer-folds)"
        )
    best = best_trials(trials, objective)
    if best.empty:
        raise InputError(f"{table}: no completed trial to refit")
    keys = list(best["model"] + "/" + best["present"])
    if configurations:
        unknown = [c for c in configurations if c not in keys]
        if unknown:
            raise InputError(f"{folder}: no completed configuration {unknown[0]!r} (have: {', '.join(keys)})")
    modalities = tuple(data.get("modalities") or ()) or None
    chosen = best_configurations(best, modalities, identity.get("seed", 0), configurations, objective)
    return chosen, identity, data


def fit_all(
    table: pd.DataFrame,
    chosen: Sequence[tuple[TrainConfig, float | None]],
    members: int = 1,
    log: Callable[[str], None] = print,
) -> Bundle:
    """Fit every chosen configuration on all rows of ``table``; a :class:`~mmt_tune.bundle.Bundle` of the
    ones that can be saved safely (the others are named in ``log``)."""
    from mmt_tune.bundle import Bundle, savable
    from mmt_tune.fitting import fit_configuration

    fitted, scores = {}, {}
    rows = np.arange(len(table))
    for config, score in chosen:
        start = time.perf_counter()
        result, _ = fit_configuration(table, config, rows, members=members)
        if not savable(result):
            log(f"skipped {result.key}: a {config.spec.label} has no pickle-free format (not bundled)")
            continue
        fitted[result.key], scores[result.key] = result, score
        log(
            f"fitted {result.key} on {len(table)} rows x {members} member(s) in {time.perf_counter() - start:.1f} s"
        )
    if not fitted:
        raise InputError("no configuration could be bundled")
    return Bundle(fitted, scores=scores)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.fit",
        description="Refit a study's best configurations (or one from a config file) on all rows of the "
        "feature table and save them as a bundle for python -m mmt_tune.predict.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    parser.add_argument("--objective", default="auc", help="metric that ranks a study's trials")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="bundle folder (default: <study>/bundle)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.bundle import save_bundle
    from mmt_tune.data.table import describe_table, modality_columns, read_feature_table
    from mmt_tune.modalities import table_modalities
    from mmt_tune.radiomics.cache import file_sha256
    from mmt_tune.train import parse_present, read_config

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
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote bundle ({len(bundle.configurations)} configuration(s)) -> {out}")
    print(
        f"score new patients: python -m mmt_tune.predict --bundle {out} --features new.parquet --out predictions.csv"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
