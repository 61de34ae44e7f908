"""``python -m mmt_tune.run --space mmt1m``: run a hyperparameter study from the command line.

Every modality configuration of the space is its own optimisation problem (its own seeded TPE study, equal
budget), all scheduled by one Ray Tune run (:mod:`mmt_tune.study`). At the end the trials table is written
beside the Tune experiment and the best trial of each configuration is printed. Exit status: 0 when every
configuration has a completed trial, 1 when one has none, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mmt_tune.cli import HelpFormatter, add_quiet, add_verbose, add_version, command
from mmt_tune.errors import InputError, describe
from mmt_tune.metrics import METRICS, mean_std
from mmt_tune.records import JOURNAL_FILE, TRIALS_TABLE
from mmt_tune.study.entry import run_study
from mmt_tune.study.options import StudyOptions, StudyResult


def _table_modalities(features: Path | None) -> tuple[str, ...] | None:
    """The modalities of a feature table from its Parquet schema (None: no table, or not readable yet)."""
    if features is None or not Path(features).is_file():
        return None
    try:
        import pyarrow.parquet as pq

        from mmt_tune.modalities import table_modalities

        return table_modalities(pq.read_schema(features).names) or None
    except Exception:  # not Parquet: run_study reports it with the file's name
        return None


PHANTOM_NOTE = (
    "note: no --features given: this study ran on the PHANTOM cohort (synthetic images made by mmt-tune), not "
    "on patient data; its data.json and report say so. Give --features your_table.parquet for your cohort."
)


def format_best(result: StudyResult) -> str:
    """The best trial of each configuration, mean ± std over folds of every metric, one line each."""
    lines = [f"{'configuration':<22} {'trial':<12} " + " ".join(f"{m:>16}" for m in METRICS)]
    for _, row in result.best().iterrows():
        cells = " ".join(mean_std(row[f"{m}_mean"], row[f"{m}_std"]).rjust(16) for m in METRICS)
        lines.append(f"{row['model'] + '/' + row['present']:<22} {str(row['trial_id']):<12} {cells}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.run",
        description="Run a hyperparameter study: every configuration of a search space gets its own Optuna "
        "study and the same number of trials, all in one Ray Tune run.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument(
        "--space",
        required=True,
        help="search space: a shipped name (mmt1m, mmt2m, mfnvae, paper, paper-wide) or a YAML path",
    )
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        help="feature table (default: the phantom cohort, generated and extracted on first use "
        "into $MMT_TUNE_CACHE or ~/.cache/mmt-tune)",
    )
    parser.add_argument(
        "--subsets",
        type=_subsets,
        default=None,
        metavar="all|N",
        help="how far a space's rules (present: every, as in paper and paper-wide) expand: sets of at most N "
        "sequences plus the set of all; default: every subset on up to 4 sequences, sets of 1 or 2 "
        "sequences and all of them on 5 or 6 (a rule with missing:, such as MMT's, is not capped)",
    )
    parser.add_argument("--num-samples", type=int, default=10, help="trials per configuration")
    parser.add_argument("--epochs", type=int, default=None, help="override the space's epochs")
    parser.add_argument("--folds", type=int, default=None, help="cross-validation folds (default 5)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repeated CV: every trial runs k folds x this many seeded splits; the objective and Table 2 "
        "average them all (default 1)",
    )
    _run_arguments(parser)
    _trial_arguments(parser)
    _estimate_arguments(parser)
    return parser


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how the study runs: seed, Ray, storage, resources, tracking, ASHA."""
    parser.add_argument("--seed", type=int, default=0, help="study seed: folds, samplers, initialisation")
    parser.add_argument("--address", default=None, help="existing Ray cluster (default: start a local one)")
    parser.add_argument("--storage", default="results", help="where Tune writes the experiment (path or URI)")
    parser.add_argument(
        "--name",
        default=None,
        help="the study's name: its folder, its trials table's study column, its report and W&B group "
        "(default: the space file's stem, e.g. my-space for my-space.yaml, or a shipped space's name)",
    )
    parser.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs each trial holds; trials run at once = the cluster's CPUs / this",
    )
    parser.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="fraction of a GPU per trial; on a local instance without GPU, trials run on CPU instead; on a cluster (--address) they wait for GPU nodes",
    )
    parser.add_argument(
        "--wandb",
        choices=["off", "offline", "online"],
        default="offline",
        help="Weights & Biases tracking, one run per trial: offline (default; files under the experiment), "
        "online (needs an API key) or off",
    )
    parser.add_argument("--wandb-project", default="mmt-tune", help="W&B project")
    parser.add_argument(
        "--asha",
        action="store_true",
        help="stop unpromising trials early (ASHA on the per-epoch validation AUC, within each configuration)",
    )


def _trial_arguments(parser: argparse.ArgumentParser) -> None:
    """How each trial runs: resume, checkpoints, compile, reports, output."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted experiment <storage>/<name> (finished trials are kept)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="epochs between a trial's checkpoints (what a resumed trial continues from)",
    )
    parser.add_argument(
        "--compile",
        default=None,
        metavar="BACKEND",
        help="compile every deep trial's training step with torch.compile, once per shape and worker (inductor "
        "on this 2-core CPU: 1.15-1.7x faster epochs after a 12-26 s compile, numbers close to but not eager's; "
        "where it cannot compile, a note and eager training; docs/commands.md)",
    )
    parser.add_argument(
        "--report-every",
        type=int,
        default=10,
        help="epochs between a trial's reports to Tune (default 10; checkpoints and the last epoch always "
        "report; a report is a round trip to the driver; every epoch's losses still reach W&B and the tables)",
    )
    add_verbose(parser, "Ray's and Tune's own logs, warnings and status tables instead of one progress bar")
    add_quiet(parser, "no progress bar (the closing summary still prints)")


def _estimate_arguments(parser: argparse.ArgumentParser) -> None:
    """What follows or replaces the plain search: held-out table, nested CV, packs, robustness, smoke test."""
    parser.add_argument(
        "--test-features",
        type=Path,
        default=None,
        help="held-out table (other patients, same feature columns): after the search each configuration's "
        "best trial is refitted on all --features rows and scored on it (test.csv, Table 2's test columns)",
    )
    parser.add_argument(
        "--outer-folds",
        type=int,
        default=None,
        help="nested CV: a study per outer fold on its training rows; each configuration's inner-best trial "
        "refitted and scored on the outer test rows (nested.csv; the estimate to report)",
    )
    parser.add_argument(
        "--pack-trials",
        type=int,
        default=1,
        help="train up to this many trials of a configuration as one batched model in one Tune trial (deep "
        "configurations searching only lr, weight decay, KL warm-up and loss weights; TPE asks for them "
        "together, with a constant liar), sized down where a larger pack would leave a trial slot idle; 1 "
        "(default): one trial per Tune trial. 4 measured 1.3x the throughput on a 2-core CPU, but a pack's "
        "members reach W&B and the trials table only when the pack ends, and --asha needs 1 (docs/commands.md)",
    )
    parser.add_argument(
        "--no-robustness",
        action="store_true",
        help="skip the missing-modality robustness table (the full-modality MFN-VAE's folds scored with "
        "every modality subset; one extra cross-validation after the search)",
    )
    parser.add_argument(
        "--modality-dropout",
        type=float,
        default=0.0,
        help="also retrain the full-modality MFN-VAE with this modality-dropout rate for the robustness "
        "table (0: off)",
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="tiny study: 2 configurations x 2 trials, 2 folds, 2 epochs, 60-patient phantom",
    )


def _subsets(value: str) -> int | None:
    from mmt_tune.space_rules import parse_subsets

    try:
        return parse_subsets(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--subsets: ")) from None


def study_options(args: argparse.Namespace, configurations: list[str] | None = None) -> StudyOptions:
    """The command line's options as the study's :class:`StudyOptions` (flag names differ where the
    command line says what a user does: ``--num-samples``, ``--no-robustness``, ``--verbose``)."""
    return StudyOptions(
        samples=args.num_samples,
        epochs=args.epochs,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        address=args.address,
        storage=args.storage,
        name=args.name,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        configurations=configurations,
        subsets=args.subsets,
        checkpoint_every=args.checkpoint_every,
        report_every=args.report_every,
        compile=args.compile,
        resume=args.resume,
        wandb=args.wandb,
        wandb_project=args.wandb_project,
        asha=args.asha,
        verbose=1 if args.verbose else 0,
        phantom=args.features is None,
        progress=not (args.verbose or args.no_progress),
        test_features=args.test_features,
        robustness=not args.no_robustness,
        modality_dropout=args.modality_dropout,
        outer_folds=args.outer_folds,
        pack_trials=args.pack_trials,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from mmt_tune.study.guards import study_space

        # Fail fast, before any data work: the space against the table's modalities (its schema only).
        space = study_space(args.space, _table_modalities(args.features), str(args.features), args.subsets)
        configurations = None
        if args.smoke_test:
            args.num_samples, args.epochs, args.folds = 2, args.epochs or 2, args.folds or 2
            configurations = [c.key for c in space.configurations[:2]]
        if args.features is None:
            from mmt_tune.data.phantom import phantom_features

            print(PHANTOM_NOTE, file=sys.stderr)
            features = phantom_features(60 if args.smoke_test else None)
        else:
            features = args.features
        result = run_study(args.space, features, study_options(args, configurations))
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    failed = result.failed_configurations()
    if result.nested is not None:
        from mmt_tune.study.nested import nested_summary

        print(
            f"\nnested CV, study {result.experiment.name}: outer-fold AUC of each configuration's inner-best trial"
        )
        print(nested_summary(result.nested).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    elif not result.trials.empty and (result.trials["status"] == "ok").any():
        print(f"\nbest trial per configuration (mean ± std over folds), study {result.experiment.name}:")
        print(format_best(result))
    folder = result.experiment
    if result.test is not None and not result.test.empty:
        from mmt_tune.study.holdout import format_test

        print(f"\nheld-out table ({args.test_features.name}), best trials refitted on all --features rows:")
        print(format_test(result.test))
    if args.features is None:
        print(f"\n{PHANTOM_NOTE}")
    print(f"\ntrials table: {folder / (TRIALS_TABLE + '.parquet')} (+ .csv)")
    print(f"report:       {command('report')} {folder}")
    print(f"Optuna:       optuna-dashboard {folder / JOURNAL_FILE}")
    if failed:
        first = next((result.errors[c] for c in failed if c in result.errors), "see the trials' error files")
        print(
            f"error: no trial of {len(failed)} configuration(s) completed ({', '.join(failed)}); "
            f"first error: {first}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
