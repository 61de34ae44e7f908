"""Train and evaluate one configuration (model x present modalities x hyperparameters) over k folds.

``python -m mmt_tune.train --features F.parquet --model mmt1m --present T1WI [--config cfg.yaml] [--out DIR]``

For every fold the in-fold pipeline (:mod:`mmt_tune.preprocess`) is fitted on that fold's training rows; then
the k folds train *packed*: one batched model whose slice f is fold f's model (:mod:`mmt_tune.models.blocks`),
each slice with its own data, row masks, SMOTE output, random streams and optimizer state
(:class:`mmt_tune.optim.MaskedAdamW`). ``packed=False`` trains the folds one after another through the same
code with one slice each; both give the same fold metrics for the same seed. The inner loop never copies to
the host; losses are accumulated on the device and fetched once per epoch only when early stopping needs them.

This module has no Ray imports: the Tune trainable calls :func:`train_configuration`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmt_tune import models
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS, all_metrics
from mmt_tune.preprocess import (
    FoldData,
    inner_split,
    make_folds,
    modality_columns_of,
    preprocess_fold,
)


@dataclass
class TrainResult:
    folds: pd.DataFrame  # one row per fold: fold, sizes, the five metrics
    losses: pd.DataFrame  # one row per (epoch, fold, split): every loss term and the weighted total
    predictions: pd.DataFrame  # out-of-fold positive-class probability of every row
    selected: dict[int, dict[str, list[str]]]  # fold -> modality -> selected feature columns
    seconds: float = 0.0

    def summary(self) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation over folds of each metric."""
        return {m: (float(self.folds[m].mean()), float(self.folds[m].std(ddof=0))) for m in METRICS}


# ----------------------------------------------------------------------------------------------- training
def train_configuration(
    table: pd.DataFrame,
    config: TrainConfig,
    *,
    packed: bool = True,
    on_epoch: Callable[[int, dict], None] | None = None,
    resume: dict | None = None,
) -> TrainResult:
    """Cross-validate ``config`` on ``table`` (a feature table); see the module docstring.

    ``on_epoch(epoch, info)`` is called after every epoch; ``info["state"]()`` returns a checkpoint of the
    packed training state, which ``resume=`` continues from (the folds and preprocessing are recomputed from
    the same seeds; the weights, optimizer moments, noise counters and loss history come from the state).
    """
    if resume is not None and not packed:
        raise ValueError("resume= continues packed training only")
    start = time.perf_counter()
    columns, splits = check_table(table, config)
    fold_data = []
    for f, (train, val) in enumerate(splits):
        monitor = None
        if config.early_stopping:
            train, monitor = inner_split(table, train, config.early_stopping_fraction, config.seed * 1000 + f)
        fold_data.append(
            preprocess_fold(
                table,
                columns,
                train,
                val,
                config.preprocess,
                random_state=config.seed * 1000 + f,
                fold=f,
                monitor_index=monitor,
            )
        )
    if config.baseline:
        from mmt_tune.models.baselines import fit_predict

        groups = [fold_data]
        probabilities = fit_predict(
            config.spec.estimator, config.model_options, fold_data, config.present, config.seed
        )
        outcomes = [(probabilities, pd.DataFrame(columns=["epoch", "fold", "split"]))]
    else:
        layout = _Layout.of(fold_data, config, columns)
        groups = [fold_data] if packed else [[fd] for fd in fold_data]
        outcomes = [_fit(group, config, on_epoch, resume, layout) for group in groups]

    fold_rows, loss_frames, prediction_rows = [], [], []
    for group, (probabilities, history) in zip(groups, outcomes, strict=True):
        loss_frames.append(history)
        for fd, prob in zip(group, probabilities, strict=True):
            fold_rows.append(
                {
                    "fold": fd.fold,
                    "n_train": len(fd.y_train) - fd.n_synthetic,
                    "n_synthetic": fd.n_synthetic,
                    "n_val": len(fd.y_val),
                    **all_metrics(fd.y_val, prob),
                }
            )
            for row, label, p in zip(fd.val_index, fd.y_val, prob, strict=True):
                prediction_rows.append(
                    {"row": int(row), "fold": fd.fold, "label": int(label), "probability": float(p)}
                )
    predictions = pd.DataFrame(prediction_rows).sort_values("row", kind="stable").reset_index(drop=True)
    ids = table.iloc[predictions["row"]][[c for c in ("patient_id", "lesion_id") if c in table.columns]]
    predictions = pd.concat([ids.reset_index(drop=True), predictions], axis=1)
    return TrainResult(
        folds=pd.DataFrame(fold_rows).sort_values("fold").reset_index(drop=True),
        losses=pd.concat(loss_frames)
        .sort_values(["epoch", "fold", "split"], kind="stable")
        .reset_index(drop=True),
        predictions=predictions,
        selected={fd.fold: fd.selected for fd in fold_data},
        seconds=time.perf_counter() - start,
    )


def check_table(table: pd.DataFrame, config: TrainConfig) -> tuple[dict[str, list[str]], list]:
    """Everything about ``table`` that would make ``config`` fail, as one :class:`InputError`; returns the
    modality columns and the folds. A study calls it for every configuration before Ray starts."""
    config.validate()
    columns = modality_columns_of(table, config.modalities_used)
    for modality in config.present:
        if table[columns[modality]].isna().all(axis=1).all():
            raise InputError(f"feature table: modality {modality} is NaN in every row")
    return columns, make_folds(table, config.folds, config.seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
    return device


@dataclass(frozen=True)
class _Layout:
    """Padded sizes shared by *all* folds of a configuration, packed or not.

    A fold trained alone is padded exactly as inside the pack: the same feature widths (so its parameters
    are initialised from the same draws), the same number of steps per epoch (so it consumes its noise stream
    in the same pieces) and the same validation length (so masked means sum in the same order). None of them
    depends on feature values: the width is the number of features selection may keep (``k``, or all of a
    modality's columns if fewer), and row counts follow from the labels. So a fold's model cannot change
    when other folds' features do (the missing-modality test relies on it).
    """

    features: dict[str, int]
    steps: int
    val_rows: int
    monitor_rows: int

    @classmethod
    def of(cls, fold_data: Sequence[FoldData], config: TrainConfig, columns: Mapping[str, list]) -> _Layout:
        used = config.modalities_used
        return cls(
            features={m: min(config.preprocess.k_for(m), len(columns[m])) for m in used},
            steps=max(math.ceil(len(fd.y_train) / config.batch_size) for fd in fold_data),
            val_rows=max(len(fd.y_val) for fd in fold_data),
            monitor_rows=max(len(fd.y_monitor) if fd.y_monitor is not None else 0 for fd in fold_data),
        )


def _pack(
    arrays: Sequence[np.ndarray], device: torch.device, rows: int | None = None, cols: int | None = None
) -> torch.Tensor:
    """Stack per-fold arrays into one zero-padded tensor ``[k, rows, cols]`` (or ``[k, rows]``)."""
    rows = rows or max(a.shape[0] for a in arrays)
    cols = cols or (max(a.shape[1] for a in arrays) if arrays[0].ndim == 2 else None)
    shape = (len(arrays), rows) + ((cols,) if arrays[0].ndim == 2 else ())
    out = np.zeros(shape, dtype=np.float32)
    for i, a in enumerate(arrays):
        out[(i, slice(0, a.shape[0])) + ((slice(0, a.shape[1]),) if a.ndim == 2 else ())] = a
    return torch.from_numpy(out).to(device)


def _row_mask(counts: Sequence[int], device: torch.device, length: int | None = None) -> torch.Tensor:
    length = length or max(counts)
    return (torch.arange(length)[None, :] < torch.tensor(counts)[:, None]).float().to(device)


def _schedule(
    counts: Sequence[int],
    epochs: int,
    batch: int,
    generators: Sequence[torch.Generator],
    device: torch.device,
    steps: int | None = None,
):
    """All batches of all epochs, drawn up front: indices ``[E, S, k, B]``, row masks, active ``[E, S, k]``.

    Fold f's epoch is a fresh permutation of its own rows cut into ``ceil(n_f / B)`` batches; steps past its
    last batch are inactive for that fold (no update), exactly as if it trained alone.
    """
    steps = steps or max(math.ceil(n / batch) for n in counts)
    index = torch.zeros(epochs, steps, len(counts), batch, dtype=torch.long)
    rows = torch.zeros(epochs, steps, len(counts), batch)
    for e in range(epochs):
        for f, (n, g) in enumerate(zip(counts, generators, strict=True)):
            order = torch.randperm(n, generator=g)
            padded = torch.zeros(steps * batch, dtype=torch.long)
            padded[:n] = order
            index[e, :, f] = padded.view(steps, batch)
            rows[e, :, f] = (torch.arange(steps * batch) < n).float().view(steps, batch)
    return index.to(device), rows.to(device), (rows.sum(-1) > 0).to(device)


def _build_model(config: TrainConfig, n_models: int, feature_dims: dict[str, int]):
    """The registered model's packed module, with its default options under the configured ones."""
    spec = config.spec
    return spec.build(n_models, feature_dims, config.present, {**spec.options, **config.model_options})


def _fit(
    group: list[FoldData],
    config: TrainConfig,
    on_epoch,
    resume: dict | None = None,
    layout: _Layout | None = None,
):
    """Train the folds of ``group`` packed; return their validation probabilities and loss history."""
    from mmt_tune.models.blocks import initialize
    from mmt_tune.models.losses import loss_terms, weighted_total
    from mmt_tune.optim import MaskedAdamW

    device = resolve_device(config.device)
    k = len(group)
    folds = [fd.fold for fd in group]
    used = config.modalities_used
    if layout is None:  # benchmarks call _fit directly: pad to what this group needs
        widths = {m: max(fd.train[m].shape[1] for fd in group) for m in config.modalities_used}
        layout = _Layout.of(group, config, {m: [None] * w for m, w in widths.items()})
    width = layout.features
    train_x = {m: _pack([fd.train[m] for fd in group], device, cols=width[m]) for m in used}
    val_x = {m: _pack([fd.val[m] for fd in group], device, layout.val_rows, width[m]) for m in used}
    feature_mask = {m: _row_mask([fd.train[m].shape[1] for fd in group], device, width[m]) for m in used}
    train_y = _pack([fd.y_train.astype(np.float32) for fd in group], device)
    val_y = _pack([fd.y_val.astype(np.float32) for fd in group], device, layout.val_rows)
    n_train = [len(fd.y_train) for fd in group]
    val_rows = _row_mask([len(fd.y_val) for fd in group], device, layout.val_rows)
    if config.early_stopping:
        length = layout.monitor_rows
        monitor_x = {m: _pack([fd.monitor[m] for fd in group], device, length, width[m]) for m in used}
        monitor_y = _pack([fd.y_monitor.astype(np.float32) for fd in group], device, length)
        monitor_rows = _row_mask([len(fd.y_monitor) for fd in group], device, length)

    # Independent random streams per fold, identical whether the fold trains packed or alone.
    def generators(stream: int, on: torch.device) -> list[torch.Generator]:
        return [
            torch.Generator(device=on).manual_seed(config.seed * 100_003 + f * 101 + stream) for f in folds
        ]

    model = _build_model(config, k, dict(width))
    initialize(model, generators(0, torch.device("cpu")))
    model.to(device)
    model.noise.seed([config.seed * 100_003 + f * 101 + 2 for f in folds], device)
    optimizer = MaskedAdamW(model, k, lr=config.lr, weight_decay=config.weight_decay)
    index, batch_rows, active = _schedule(
        n_train, config.epochs, config.batch_size, generators(1, torch.device("cpu")), device, layout.steps
    )
    active = active.cpu().numpy()  # the schedule is known up front: per-step masks stay on the host
    inputs = list(config.present)
    targets = list(config.reconstructed)
    fold_axis = torch.arange(k, device=device)[:, None]

    term_names: list[str] | None = None
    train_history, val_history, monitor_history = [], [], []
    running = torch.ones(k, dtype=torch.bool, device=device)
    running_host = np.ones(k, dtype=bool)
    best_loss = torch.full((k,), float("inf"), device=device)
    best_state = None
    patience_left = np.full(k, config.early_stopping or 0)
    last_epoch = np.full(k, config.epochs - 1)  # the last epoch each fold trained (early stopping)
    n_rows = torch.tensor(n_train, dtype=torch.float32, device=device)[:, None]
    start_epoch = 0
    if resume is not None:
        if resume["folds"] != folds or resume["model"] != config.model:
            raise ValueError("the checkpoint belongs to another configuration")
        optimizer.flat.copy_(resume["flat"].to(device))
        optimizer.optimizer.load_state_dict(resume["adamw"])
        model.noise.load_state_dict(resume["noise"])
        train_history = [t.to(device) for t in resume["train_history"]]
        val_history = [t.to(device) for t in resume["val_history"]]
        monitor_history = [t.to(device) for t in resume.get("monitor_history", [])]
        term_names = resume["terms"]
        best_loss = resume["best_loss"].to(device)
        best_state = None if resume["best_state"] is None else resume["best_state"].to(device)
        patience_left, running_host = resume["patience_left"], resume["running"]
        last_epoch = resume.get("last_epoch", last_epoch)
        running = torch.from_numpy(running_host).to(device)
        start_epoch = resume["epoch"] + 1

    def snapshot(epoch: int) -> dict:
        """Everything needed to continue after ``epoch`` (on the CPU, ready for torch.save)."""
        return {
            "epoch": epoch,
            "folds": folds,
            "model": config.model,
            "terms": term_names,
            "flat": _to_cpu(optimizer.flat),
            "adamw": _to_cpu(optimizer.optimizer.state_dict()),  # a copy: AdamW updates its state in place
            "noise": model.noise.state_dict(),
            "train_history": [t.cpu() for t in train_history],
            "val_history": [t.cpu() for t in val_history],
            "monitor_history": [t.cpu() for t in monitor_history],
            "best_loss": best_loss.cpu(),
            "best_state": None if best_state is None else best_state.cpu(),
            "patience_left": patience_left.copy(),
            "running": running_host.copy(),
            "last_epoch": last_epoch.copy(),
        }

    for epoch in range(start_epoch, config.epochs):
        weights = _epoch_weights(config, epoch)
        model.train()
        epoch_sum = None
        for step in range(index.shape[1]):
            idx = index[epoch, step]  # [k, B]
            rows = batch_rows[epoch, step] * running[:, None]
            batch_x = {m: train_x[m][fold_axis, idx] for m in used}
            out = model({m: batch_x[m] for m in inputs})
            terms = loss_terms(
                out, train_y[fold_axis, idx], {m: batch_x[m] for m in targets}, rows, feature_mask
            )
            total = weighted_total(terms, weights)
            optimizer.zero_grad()
            total.sum().backward()
            optimizer.step(active[epoch, step] & running_host)
            stacked = torch.stack([*terms.values(), total], dim=1).detach() * rows.sum(1, keepdim=True)
            epoch_sum = stacked if epoch_sum is None else epoch_sum + stacked
            term_names = term_names or [*terms, "total"]
        train_history.append(epoch_sum / n_rows)

        model.eval()
        with torch.no_grad():
            out = model({m: val_x[m] for m in inputs})
            terms = loss_terms(out, val_y, {m: val_x[m] for m in targets}, val_rows, feature_mask)
            val_total = weighted_total(terms, weights)
            val_history.append(torch.stack([*terms.values(), val_total], dim=1))
            if config.early_stopping:  # the held-out training rows' classification loss, nothing else
                out_monitor = model({m: monitor_x[m] for m in inputs})
                terms = loss_terms(
                    out_monitor, monitor_y, {m: monitor_x[m] for m in targets}, monitor_rows, feature_mask
                )
                monitored = terms["classification"]
                monitor_history.append(torch.stack([*terms.values(), weighted_total(terms, weights)], dim=1))
        if config.early_stopping:
            improved = (monitored < best_loss) & running
            best_loss = torch.where(improved, monitored, best_loss)
            flat = optimizer.flat
            best_state = (
                flat.clone() if best_state is None else torch.where(improved[:, None], flat, best_state)
            )
            improved_host = improved.cpu().numpy()  # the one device sync per epoch
            patience_left = np.where(improved_host, config.early_stopping, patience_left - running_host)
            stopping = running_host & (patience_left <= 0)
            last_epoch = np.where(stopping, epoch, last_epoch)
            running_host = (patience_left > 0) & running_host
            running = torch.from_numpy(running_host).to(device)
        if on_epoch is not None:
            info = {"train": train_history[-1], "val": val_history[-1], "folds": folds, "terms": term_names}
            info["val_probabilities"] = torch.softmax(out["logits"], dim=-1)[..., 1]  # still on the device
            info["val_labels"], info["val_counts"] = val_y, [len(fd.y_val) for fd in group]
            info["state"] = lambda epoch=epoch: snapshot(epoch)
            on_epoch(epoch, info)
        if config.early_stopping and not running_host.any():
            break

    if best_state is not None:
        optimizer.flat.copy_(best_state)
    model.eval()
    with torch.no_grad():
        probabilities = (
            torch.softmax(model({m: val_x[m] for m in inputs})["logits"], dim=-1)[..., 1].cpu().numpy()
        )
    history = _history_frame(train_history, val_history, term_names or [], folds, monitor_history)
    # A fold that stopped early has no epochs after it, packed (where the others go on) or alone.
    history = history[history["epoch"].to_numpy() <= last_epoch[np.searchsorted(folds, history["fold"])]]
    history = history.reset_index(drop=True)
    return [probabilities[i, : len(fd.y_val)] for i, fd in enumerate(group)], history


def _epoch_weights(config: TrainConfig, epoch: int) -> dict:
    """Loss weights for ``epoch``: the configured ones, with the KL weight ramped up over ``kl_warmup``."""
    if not config.kl_warmup:
        return config.loss_weights
    ramp = min(1.0, (epoch + 1) / config.kl_warmup)
    return {**config.loss_weights, "kl_weight": ramp * float(config.loss_weights.get("kl_weight", 1.0))}


def _to_cpu(value):
    """A copy of ``value`` (nested dicts/lists of tensors) whose tensors are on the CPU and share no memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _history_frame(
    train: list[torch.Tensor],
    val: list[torch.Tensor],
    names: list[str],
    folds: list[int],
    monitor: list[torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Per-epoch losses ``[epochs, k, terms]`` of each split as one tidy frame (fetched from the device once):
    ``train``, ``val`` and, with early stopping, ``monitor`` (the held-out training rows it watches)."""
    frames = []
    for split, history in (("train", train), ("val", val), ("monitor", monitor or [])):
        if not history:
            continue
        values = torch.stack(history).cpu().numpy()  # [epochs, k, terms]
        epochs, k, _ = values.shape
        frame = pd.DataFrame(values.reshape(epochs * k, -1), columns=names)
        frame.insert(0, "split", split)
        frame.insert(0, "fold", np.tile(folds, epochs))
        frame.insert(0, "epoch", np.repeat(np.arange(epochs), k))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


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
    frame = result.folds[["fold", "n_train", "n_synthetic", "n_val", *METRICS]]
    lines = [frame.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    summary = result.summary()
    lines.append(
        "mean ± std: " + ", ".join(f"{m} {mean:.3f} ± {std:.3f}" for m, (mean, std) in summary.items())
    )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.train",
        description="Cross-validate one configuration (model x present modalities x hyperparameters).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
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
        "--seed", type=int, default=None, help="study seed: folds, SMOTE, initialisation (default 0)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--sequential", action="store_true", help="train folds one by one instead of packed")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for folds.csv, losses.csv, predictions.csv"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import parse_yaml
    from mmt_tune.data.table import read_feature_table

    args = build_parser().parse_args(argv)
    try:
        options = {}
        if args.config is not None:
            if not args.config.is_file():
                raise InputError(f"{args.config}: config file not found")
            options = parse_yaml(args.config.read_text(), str(args.config)) or {}
            if not isinstance(options, dict):
                raise InputError(f"{args.config}: expected a mapping of option: value")
        try:
            config = TrainConfig.from_options(
                args.model,
                parse_present(args.present),
                options,
                epochs=args.epochs,
                folds=args.folds,
                seed=args.seed,
                device=args.device,
            )
        except InputError as exc:
            raise InputError(f"{args.config}: {exc}" if args.config else str(exc)) from None
        resolve_device(config.device)
        table, _ = read_feature_table(args.features)
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
        f"{config.model} present={'+'.join(config.present)}: {config.folds} folds ({how}) in {result.seconds:.1f} s"
    )
    print(format_folds(result))
    if args.out is not None:
        write_outputs(result, config, args.out)
        print(f"wrote folds.csv, losses.csv, predictions.csv, config.yaml -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
