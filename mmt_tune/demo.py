"""``python -m mmt_tune.demo``: the README's demo on the phantom cohort (no data needed).

1. Generates the phantom cohort (reused when it already exists with the same configuration).
2. Extracts its radiomics features with the real PyRadiomics on a local Ray instance (cached).
3. Prints a signal check: the cross-validated AUC of a plain logistic regression per modality subset (a
   baseline, not the paper's model: it shows what signal the features carry before any study).
4. Runs a small study of every model and modality configuration (the ``demo`` search space: all 13 rows of
   the paper's Table 2 and the two baselines on each modality subset, 30 epochs, 3 folds) with Ray Tune +
   Optuna, W&B offline, and writes the report:
   Table 2, Table 3, the comparisons and the figures, with an ``index.html``. An interrupted demo resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmt_tune.cli import HelpFormatter, add_quiet, add_verbose, add_version
from mmt_tune.data.phantom import prepare_phantom
from mmt_tune.errors import InputError, describe
from mmt_tune.modalities import MODALITIES

if TYPE_CHECKING:
    from mmt_tune.analysis.report import Report


def signal_check(features: Path, folds: int = 5, seed: int = 0) -> list[tuple[str, float, float]]:
    """Cross-validated AUC (mean, std over folds) of a logistic regression per modality subset."""
    from itertools import combinations

    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mmt_tune.data.table import modality_columns, read_feature_table

    table, _ = read_feature_table(features)
    columns = modality_columns(table)
    y = table["label"].to_numpy()
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rows = []
    for size in range(1, len(MODALITIES) + 1):
        for subset in combinations(MODALITIES, size):
            X = table[[c for m in subset for c in columns[m]]].to_numpy()
            # Every step is fitted inside the training folds only (Pipeline + cross_val_score).
            model = make_pipeline(
                SimpleImputer(), StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)
            )
            scores = cross_val_score(model, X, y, cv=cv, scoring="roc_auc")
            rows.append(("+".join(subset), float(np.mean(scores)), float(np.std(scores))))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.demo",
        description="Run the demo on the phantom cohort: generate it, extract features, check the signal, "
        "run a small study of every model and write Table 2, Table 3 and the figures.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder")
    parser.add_argument("--patients", type=int, default=None, help="cohort size (default: the paper's 279)")
    parser.add_argument("--seed", type=int, default=0, help="phantom cohort seed")
    parser.add_argument("--params", default="fast", help="PyRadiomics settings: fast, paper, or a YAML path")
    parser.add_argument("--workers", type=int, default=None, help="parallel extractions (default: all CPUs)")
    parser.add_argument("--space", default="demo", help="search space of the study step")
    parser.add_argument(
        "--num-samples",
        "--samples",
        dest="samples",
        type=int,
        default=10,
        help="trials per configuration in the study step (run's --num-samples)",
    )
    parser.add_argument("--skip-study", action="store_true", help="stop after the signal check")
    add_quiet(parser, "no progress bars")
    add_verbose(parser, "Ray's and Tune's own logs, warnings and status tables (quiet otherwise)")
    return parser


def run_demo_study(
    features: Path, out: Path, space: str, samples: int, seed: int, progress: bool, verbose: bool = False
) -> Report:
    """The study step: run (or resume) the study under ``out/results/<space>`` and write its report."""
    from ray import tune

    from mmt_tune.analysis.importance.types import ImportanceOptions
    from mmt_tune.analysis.report import write_report
    from mmt_tune.analysis.results import load_study
    from mmt_tune.study.entry import run_study

    experiment = (out / "results" / space).resolve()
    resume = experiment.is_dir() and tune.Tuner.can_restore(str(experiment))
    if resume:
        print(f"      resuming the study in {experiment} (finished trials are kept)")
    result = run_study(
        space,
        features,
        samples=samples,
        seed=seed,
        storage=out / "results",
        name=space,
        resume=resume,
        verbose=1 if verbose else 0,
        progress=progress and not verbose,
        phantom=True,
    )
    # Each configuration has `samples` trials; analyse it when at least that many finished.
    options = ImportanceOptions(min_trials=min(samples, ImportanceOptions().min_trials))
    return write_report(load_study(result.experiment), out / "report", options=options, progress=progress)


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune.radiomics.extract import extract_features

    args = build_parser().parse_args(argv)
    progress = not args.no_progress
    start = time.perf_counter()
    try:
        print(f"[1/4] phantom cohort -> {args.out / 'phantom'}")
        manifest = prepare_phantom(args.out / "phantom", args.patients, args.seed, progress)
        print(f"[2/4] radiomics features ({args.params} settings) -> {args.out / 'features.parquet'}")
        result = extract_features(
            manifest,
            args.params,
            args.out / "features.parquet",
            workers=args.workers,
            progress=progress,
            verbose=args.verbose,
        )
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    if result.failures:
        print(
            f"error: {len(result.failures)} scan(s) failed; see {args.out / 'failures.csv'}", file=sys.stderr
        )
        return 1
    state = "up to date" if result.up_to_date else f"{result.n_computed} extracted, {result.n_cached} cached"
    print(f"      {len(result.table)} patients, {result.table.shape[1] - 2} features ({state})")
    print("[3/4] signal check: 5-fold CV AUC of a logistic regression (a baseline, not the paper's model)")
    print(f"      {'modalities':<18} {'AUC':>12}")
    for subset, mean, std in signal_check(result.output, seed=args.seed):
        print(f"      {subset:<18} {mean:6.3f} ± {std:.3f}")
    if not args.skip_study:
        from mmt_tune.analysis.comparisons import headline
        from mmt_tune.analysis.importance.table import table3
        from mmt_tune.analysis.tables import to_markdown

        print(
            f"[4/4] study: {args.samples} trials x every configuration of the {args.space!r} space (Ray Tune + Optuna)"
        )
        try:
            report = run_demo_study(
                result.output, args.out, args.space, args.samples, args.seed, progress, args.verbose
            )
        except (InputError, OSError) as exc:
            print(f"error: {describe(exc)}", file=sys.stderr)
            return 2
        print("\nTable 2: best trial per configuration (mean ± std over folds)\n")
        notes = [line for line in [headline(report.metrics)] if line] + report.metrics.notes
        print(to_markdown(report.metrics.table2(), notes))
        print("Table 3: hyperparameter importance (fANOVA main effects, mean ± std over forest seeds)\n")
        print(to_markdown(table3(report.importance), report.importance.all_notes()))
        print(f"report with figures: {report.index}")
    print(f"done in {time.perf_counter() - start:.0f} s; outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
