"""Train and evaluate one configuration (model x present modalities x hyperparameters) over k folds.

``python -m mmt_tune.train --features F.parquet --model mmt1m --present T1WI [--config cfg.yaml] [--out DIR]``

For every fold the in-fold pipeline (:mod:`mmt_tune.preprocess`) is fitted on that fold's training rows; then
a deep model's k folds train *packed*, as one batched model (:mod:`mmt_tune.packed`), and a classical
baseline fits one scikit-learn estimator per fold. ``packed=False`` trains the folds one after another
through the same code with one slice each; both give the same fold metrics for the same seed.

This module has no Ray imports: the Tune trainable calls :func:`train_configuration`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from mmt_tune import models
from mmt_tune.cli import add_version
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.folds import prepare_folds
from mmt_tune.metrics import METRICS, all_metrics, summary_line
from mmt_tune.modalities import table_modalities
from mmt_tune.packed import EpochInfo, Layout, fit_packed, resolve_device
from mmt_tune.preprocess import FoldData, make_repeated_folds, modality_columns_of


@dataclass
class TrainResult:
    folds: pd.DataFrame  # one row per fold: fold, sizes, the five metrics
    losses: pd.DataFrame  # one row per (epoch, fold, split): every loss term and the weighted total
    predictions: pd.DataFrame  # out-of-fold positive-class probability of every row
    selected: dict[int, dict[str, list[str]]]  # fold -> modality -> selected feature columns
    seconds: float = 0.0
    # subsets=: one row per (test-time modality subset, fold) with the five metrics (the robustness table)
    subset_folds: pd.DataFrame | None = None

    def summary(self) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation over folds of each metric."""
        return {m: (float(self.folds[m].mean()), float(self.folds[m].std(ddof=0))) for m in METRICS}


# ----------------------------------------------------------------------------------------------- training
def train_configuration(
    table: pd.DataFrame,
    config: TrainConfig,
    *,
    packed: bool = True,
    on_epoch: Callable[[int, EpochInfo], None] | None = None,
    resume: dict | None = None,
    subsets: Sequence[tuple[str, ...]] = (),
) -> TrainResult:
    """Cross-validate ``config`` on ``table`` (a feature table); see the module docstring.

    ``subsets``: for a model that scores any subset of its modalities (MFN-VAE), also score every fold's
    validation rows with only these modalities given (the others dropped at test time), in
    :attr:`TrainResult.subset_folds`.

    ``on_epoch(epoch, info)`` is called after every epoch with an :class:`~mmt_tune.packed.EpochInfo`;
    ``info.state()`` returns a checkpoint of the packed training state, which ``resume=`` continues from (the folds and preprocessing are recomputed from
    the same seeds; the weights, optimizer moments, noise counters and loss history come from the state).
    """
    if resume is not None and not packed:
        raise ValueError("resume= continues packed training only")
    start = time.perf_counter()
    columns, splits = check_table(table, config)
    fold_data = prepare_folds(table, config, columns, splits)
    if config.baseline:
        from mmt_tune.models.baselines import fit_predict

        groups = [fold_data]
        probabilities = fit_predict(
            config.spec.estimator, config.model_options, fold_data, config.present, config.seed
        )
        outcomes = [(probabilities, pd.DataFrame(columns=["epoch", "fold", "split"]))]
    else:
        layout = Layout.of(fold_data, config, columns)
        groups = [fold_data] if packed else [[fd] for fd in fold_data]
        outcomes = [
            fit_packed(group, config, on_epoch, resume, layout, return_model=bool(subsets))
            for group in groups
        ]
        if subsets:
            subset_folds = _score_subsets(config, groups, [o[2] for o in outcomes], layout, subsets)
            outcomes = [o[:2] for o in outcomes]

    if not subsets or config.baseline:
        subset_folds = None
    result = fold_results(table, config, groups, outcomes)
    result.seconds = time.perf_counter() - start
    result.subset_folds = subset_folds
    return result


def fold_results(
    table: pd.DataFrame, config: TrainConfig, groups: list[list[FoldData]], outcomes: list
) -> TrainResult:
    """A :class:`TrainResult` from each group's folds and its ``(probabilities, history)``."""
    fold_rows, loss_frames, prediction_rows = [], [], []
    for group, (probabilities, history) in zip(groups, outcomes, strict=True):
        loss_frames.append(history)
        for fd, prob in zip(group, probabilities, strict=True):
            fold_rows.append(
                {
                    "fold": fd.fold,
                    "repeat": fd.fold // config.folds,
                    "n_train": len(fd.y_train) - fd.n_synthetic,
                    "n_synthetic": fd.n_synthetic,
                    "n_val": len(fd.y_val),
                    **all_metrics(fd.y_val, prob),
                }
            )
            for row, label, p in zip(fd.val_index, fd.y_val, prob, strict=True):
                prediction_rows.append(
                    {
                        "row": int(row),
                        "repeat": fd.fold // config.folds,
                        "fold": fd.fold,
                        "label": int(label),
                        "probability": float(p),
                    }
                )
    predictions = (
        pd.DataFrame(prediction_rows).sort_values(["repeat", "row"], kind="stable").reset_index(drop=True)
    )
    ids = table.iloc[predictions["row"]][[c for c in ("patient_id", "lesion_id") if c in table.columns]]
    predictions = pd.concat([ids.reset_index(drop=True), predictions], axis=1)
    return TrainResult(
        folds=pd.DataFrame(fold_rows).sort_values("fold").reset_index(drop=True),
        losses=pd.concat(loss_frames)
        .sort_values(["epoch", "fold", "split"], kind="stable")
        .reset_index(drop=True),
        predictions=predictions,
        selected={fd.fold: fd.selected for group in groups for fd in group},
    )


def _score_subsets(config: TrainConfig, groups, trained, layout: Layout, subsets) -> pd.DataFrame:
    """Each fold's validation metrics with only a subset of the modalities given to the trained model."""
    import torch

    from mmt_tune.packed import pack

    if not config.spec.subsets:
        raise InputError(f"{config.model} cannot score a subset of its modalities")
    device = resolve_device(config.device)
    rows = []
    for group, model in zip(groups, trained, strict=True):
        for subset in subsets:
            if not subset or not set(subset) <= set(config.present):
                raise InputError(f"subset {'+'.join(subset)}: not a subset of {'+'.join(config.present)}")
            x = {
                m: pack([fd.val[m] for fd in group], device, layout.val_rows, layout.features[m])
                for m in subset
            }
            with torch.no_grad():
                probabilities = torch.softmax(model(x)["logits"], dim=-1)[..., 1].cpu().numpy()
            for i, fd in enumerate(group):
                rows.append(
                    {
                        "subset": "+".join(subset),
                        "fold": fd.fold,
                        "repeat": fd.fold // config.folds,
                        **all_metrics(fd.y_val, probabilities[i, : len(fd.y_val)]),
                    }
                )
    return pd.DataFrame(rows)


def check_table(table: pd.DataFrame, config: TrainConfig) -> tuple[dict[str, list[str]], list]:
    """Everything about ``table`` that would make ``config`` fail, as one :class:`InputError`; returns the
    modality columns and the folds. A study calls it for every configuration before Ray starts."""
    config.validate()
    columns = modality_columns_of(table, config.modalities_used)
    for modality in config.present:
        if table[columns[modality]].isna().all(axis=1).all():
            raise InputError(f"feature table: modality {modality} is NaN in every row")
    return columns, make_repeated_folds(table, config.folds, config.seed, config.repeats)


# ----------------------------------------------------------------------------------------------- CLI
def parse_present(text: str) -> tuple[str, ...]:
    parts = tuple(p for p in text.replace(",", "+").split("+") if p)
    return parts


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


def read_config(path: Path | None) -> dict:
    """A ``--config`` YAML of options (empty without one); one :class:`InputError` line when it is missing,
    not YAML or not a mapping."""
    from mmt_tune._io import parse_yaml

    if path is None:
        return {}
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    options = parse_yaml(path.read_text(), str(path)) or {}
    if not isinstance(options, dict):
        raise InputError(f"{path}: expected a mapping of option: value")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.train",
        description="Cross-validate one configuration (model x present modalities x hyperparameters).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
        help="compile the training step with torch.compile (meant for inductor on a GPU; on a CPU compiling "
        "takes about as long as a whole trial, docs/commands.md)",
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
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
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
        write_outputs(result, config, args.out)
        print(f"wrote folds.csv, losses.csv, predictions.csv, config.yaml -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
