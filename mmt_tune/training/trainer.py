"""The packed trainer: the k folds of one deep configuration trained as one batched model.

Slice f of every parameter is fold f's model (:mod:`mmt_tune.models.blocks`); each slice has its own data,
row masks, random streams and optimizer state (:class:`mmt_tune.training.optim.MaskedAdamW`), so a fold trained in a
pack of k and a fold trained alone give the same numbers. The inner loop never copies to the host; losses are
accumulated on the device and fetched once per epoch, only when early stopping needs them.

:func:`fit_packed` is called by :func:`mmt_tune.training.crossval.train_configuration`; after each epoch it hands an
:class:`EpochInfo` to the caller's ``on_epoch``, whose ``state()`` is a checkpoint :func:`fit_packed`
continues from (``resume=``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.training.compiled import Step
from mmt_tune.training.preprocess import FoldData
from mmt_tune.training.progress import TrainingProgress
from mmt_tune.training.tensors import history_frame, pack, row_mask, schedule, to_cpu


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto``; an :class:`InputError` when CUDA is asked for and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
    return device


def check_compile_backend(name: str) -> None:
    """An :class:`InputError` naming ``name`` when torch.compile has no such backend (``--compile``)."""
    if name not in torch.compiler.list_backends(exclude_tags=()):
        known = ", ".join(torch.compiler.list_backends())
        raise InputError(f"--compile: unknown torch.compile backend {name!r} (known: {known})")


@dataclass(frozen=True)
class Layout:
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
    def of(cls, fold_data: Sequence[FoldData], config: TrainConfig, columns: Mapping[str, list]) -> Layout:
        used = config.modalities_used
        return cls(
            features={m: min(config.preprocess.k_for(m), len(columns[m])) for m in used},
            steps=max(math.ceil(len(fd.y_train) / config.batch_size) for fd in fold_data),
            val_rows=max(len(fd.y_val) for fd in fold_data),
            monitor_rows=max(len(fd.y_monitor) if fd.y_monitor is not None else 0 for fd in fold_data),
        )


@dataclass
class EpochInfo:
    """What ``on_epoch(epoch, info)`` receives after each epoch; tensors are still on the device."""

    folds: list[int]
    terms: list[str]  # loss term names, then "total"
    train: torch.Tensor  # [k, terms]: each fold's mean training loss terms this epoch
    val: torch.Tensor  # [k, terms]: on the fold's validation rows
    val_probabilities: torch.Tensor  # [k, padded rows]: P(label 1) of each validation row
    val_labels: torch.Tensor  # [k, padded rows]
    val_counts: list[int]  # each fold's real validation rows (the rest is padding)
    state: Callable[[], dict]  # a checkpoint after this epoch (on the CPU, ready for torch.save)


@dataclass
class _Split:
    """One split of the group (validation rows, or the rows early stopping monitors), packed and padded."""

    x: dict[str, torch.Tensor]
    y: torch.Tensor
    rows: torch.Tensor


def build_model(config: TrainConfig, n_models: int, feature_dims: dict[str, int]) -> torch.nn.Module:
    """The registered model's packed module, with its default options under the configured ones."""
    spec = config.spec
    return spec.build(n_models, feature_dims, config.present, {**spec.options, **config.model_options})


def fit_packed(
    group: list[FoldData],
    config: TrainConfig,
    on_epoch: Callable[[int, EpochInfo], None] | None = None,
    resume: dict | None = None,
    layout: Layout | None = None,
    return_model: bool = False,
    slices: Sequence[TrainConfig] | None = None,
) -> tuple[list[np.ndarray], pd.DataFrame] | tuple[list[np.ndarray], pd.DataFrame, torch.nn.Module]:
    """Train the folds of ``group`` packed; return their validation probabilities and loss history (and,
    with ``return_model``, the trained packed model in eval mode, with each slice's kept best weights).

    ``slices`` (one config per entry of ``group``): packed trials of one configuration, which may differ in
    learning rate, weight decay, loss weights and KL warm-up (as per-slice values; :mod:`mmt_tune.training.trial_packs`);
    everything else comes from ``config``. The history then has a ``slice`` column (the position in
    ``group``), since a fold number repeats across trials.

    ``config.compile``: a ``torch.compile`` backend (``inductor``; ``aot_eager`` checks capture) for the
    step's forward pass and losses, traced as one graph (``fullgraph``): the step has no host sync and no
    Python branch on data, the noise comes from a fixed window (:class:`NoiseSource`) and the loss weights
    are tensors, so later steps, and later trials of the same shapes in this process, reuse the first graph
    (:mod:`mmt_tune.training.compiled`, which also falls back to eager where compiling fails). The backward
    pass and the AdamW update stay as they are."""
    packed = _PackedRun(group, config, layout, slices)
    if resume is not None:
        packed.restore(resume)
    packed.train(on_epoch)
    probabilities, history = packed.results(keep_slice=slices is not None)
    return (probabilities, history, packed.model) if return_model else (probabilities, history)


def _step_losses(model: torch.nn.Module, inputs: list, targets: list, feature_mask: dict) -> Callable:
    """One step's forward pass as a function of the batch: each slice's loss terms and weighted total
    (what ``compile`` traces; a closure over the model, so the traced graph holds no Python object)."""
    from mmt_tune.models.losses import loss_terms, weighted_total

    def losses(batch_x: dict, y: torch.Tensor, rows: torch.Tensor, weights: dict) -> tuple:
        out = model({m: batch_x[m] for m in inputs})
        terms = loss_terms(out, y, {m: batch_x[m] for m in targets}, rows, feature_mask)
        return terms, weighted_total(terms, weights)

    return losses


class _PackedRun:
    """One packed training run of :func:`fit_packed`: its tensors, model, optimizer, schedule and progress."""

    def __init__(self, group: list[FoldData], config: TrainConfig, layout: Layout | None, slices) -> None:
        from mmt_tune.models.blocks import initialize
        from mmt_tune.training.optim import MaskedAdamW

        self.group, self.config, self.slices = group, config, slices
        self.device = device = resolve_device(config.device)
        k = self.k = len(group)
        self.folds = [fd.fold for fd in group]
        used = self.used = config.modalities_used
        if layout is None:  # benchmarks call fit_packed directly: pad to what this group needs
            widths = {m: max(fd.train[m].shape[1] for fd in group) for m in config.modalities_used}
            layout = Layout.of(group, config, {m: [None] * w for m, w in widths.items()})
        width = layout.features
        self.train_x = {m: pack([fd.train[m] for fd in group], device, cols=width[m]) for m in used}
        self.feature_mask = {
            m: row_mask([fd.train[m].shape[1] for fd in group], device, width[m]) for m in used
        }
        self.train_y = pack([fd.y_train.astype(np.float32) for fd in group], device)
        n_train = [len(fd.y_train) for fd in group]
        self.val = _split(group, "val", device, layout.val_rows, width, used)
        self.monitor = None
        if config.holds_out_monitor:
            self.monitor = _split(group, "monitor", device, layout.monitor_rows, width, used)
        self.model = model = build_model(config, k, dict(width))
        initialize(model, self._generators(0, torch.device("cpu")))
        model.to(device)
        model.noise.seed([config.seed * 100_003 + f * 101 + 2 for f in self.folds], device)
        if slices is not None and len(slices) != k:
            raise ValueError(f"slices: one config per slice ({k}), got {len(slices)}")
        self.optimizer = MaskedAdamW(
            model,
            k,
            lr=config.lr if slices is None else [c.lr for c in slices],
            weight_decay=config.weight_decay if slices is None else [c.weight_decay for c in slices],
        )
        self.index, self.batch_rows, active = schedule(
            n_train,
            config.epochs,
            config.batch_size,
            self._generators(1, torch.device("cpu")),
            device,
            layout.steps,
        )
        self.active = active.cpu().numpy()  # the schedule is known up front: per-step masks stay on the host
        self.inputs = list(config.present)
        self.targets = list(config.reconstructed)
        self.fold_axis = torch.arange(k, device=device)[:, None]
        self.n_rows = torch.tensor(n_train, dtype=torch.float32, device=device)[:, None]
        self.progress = TrainingProgress(k, config.epochs, config.early_stopping or 0, device)
        self.start_epoch = 0
        self.losses = _step_losses(model, self.inputs, self.targets, self.feature_mask)
        if config.compile is not None:
            check_compile_backend(config.compile)
        self.step_losses = self.losses if config.compile is None else Step(self.losses, config.compile)
        self.per_slice_weights = (
            slices if slices is not None else ([config] * k if config.compile is not None else None)
        )

    def _generators(self, stream: int, on: torch.device) -> list[torch.Generator]:
        """Independent random streams per fold, identical whether the fold trains packed or alone."""
        seed = self.config.seed * 100_003 + stream
        return [torch.Generator(device=on).manual_seed(seed + f * 101) for f in self.folds]

    def restore(self, resume: dict) -> None:
        """Continue from a :meth:`checkpoint`."""
        if resume["folds"] != self.folds or resume["model"] != self.config.model:
            raise ValueError("the checkpoint belongs to another configuration")
        self.optimizer.flat.copy_(resume["flat"].to(self.device))
        self.optimizer.optimizer.load_state_dict(resume["adamw"])
        self.model.noise.load_state_dict(resume["noise"])
        self.progress.restore(resume)
        self.start_epoch = resume["epoch"] + 1

    def checkpoint(self, epoch: int) -> dict:
        """Everything needed to continue after ``epoch`` (on the CPU, ready for torch.save)."""
        return {
            "epoch": epoch,
            "folds": self.folds,
            "model": self.config.model,
            "flat": to_cpu(self.optimizer.flat),
            "adamw": to_cpu(
                self.optimizer.optimizer.state_dict()
            ),  # a copy: AdamW updates its state in place
            "noise": self.model.noise.state_dict(),
            **self.progress.saved(),
        }

    def evaluate(self, split: _Split, weights: dict) -> tuple[dict, dict, torch.Tensor]:
        from mmt_tune.models.losses import loss_terms, weighted_total

        out = self.model({m: split.x[m] for m in self.inputs})
        terms = loss_terms(out, split.y, {m: split.x[m] for m in self.targets}, split.rows, self.feature_mask)
        return out, terms, torch.stack([*terms.values(), weighted_total(terms, weights)], dim=1)

    def train(self, on_epoch: Callable[[int, EpochInfo], None] | None) -> None:
        """Every epoch from the start (or the restored one): the steps, then the validation (and early
        stopping) rows scored in evaluation mode."""
        config, progress = self.config, self.progress
        for epoch in range(self.start_epoch, config.epochs):
            weights = (
                _epoch_weights(config, epoch)
                if self.per_slice_weights is None
                else _slice_weights(self.per_slice_weights, epoch, self.device)
            )
            self._steps(epoch, weights)
            self.model.eval()
            with torch.no_grad():
                out, _, val_losses = self.evaluate(self.val, weights)
                progress.val_history.append(val_losses)
                if self.monitor is not None:  # the held-out training rows' classification loss, nothing else
                    _, monitor_terms, monitor_losses = self.evaluate(self.monitor, weights)
                    progress.monitor_history.append(monitor_losses)
            if self.monitor is not None and self.config.early_stopping:
                progress.early_stop(epoch, monitor_terms["classification"], self.optimizer.flat)
            if on_epoch is not None:
                info = EpochInfo(
                    folds=self.folds,
                    terms=progress.terms,
                    train=progress.train_history[-1],
                    val=progress.val_history[-1],
                    val_probabilities=torch.softmax(out["logits"], dim=-1)[..., 1],
                    val_labels=self.val.y,
                    val_counts=[len(fd.y_val) for fd in self.group],
                    state=lambda epoch=epoch: self.checkpoint(epoch),
                )
                on_epoch(epoch, info)
            if self.monitor is not None and self.config.early_stopping and not progress.running_host.any():
                break

    def _steps(self, epoch: int, weights: dict) -> None:
        """One epoch's optimisation steps; the fold-mean training losses go to the history."""
        model, progress, optimizer = self.model, self.progress, self.optimizer
        model.train()
        epoch_sum = None
        for step in range(self.index.shape[1]):
            idx = self.index[epoch, step]  # [k, B]
            rows = self.batch_rows[epoch, step] * progress.running[:, None]
            batch_x = {m: self.train_x[m][self.fold_axis, idx] for m in self.used}
            model.noise.begin_step()
            # The first step runs as written: it records what the noise windows of the later ones hold.
            arguments = (batch_x, self.train_y[self.fold_axis, idx], rows, weights)
            if model.noise.sizes is None or self.step_losses is self.losses:
                terms, total = self.losses(*arguments)
            else:  # compiled; where compiling fails, the same step eagerly, reading the window from its start
                terms, total = self.step_losses(*arguments, restore=lambda: setattr(model.noise, "cursor", 0))
            optimizer.zero_grad()
            total.sum().backward()
            model.noise.end_step()
            optimizer.step(self.active[epoch, step] & progress.running_host)
            stacked = torch.stack([*terms.values(), total], dim=1).detach() * rows.sum(1, keepdim=True)
            epoch_sum = stacked if epoch_sum is None else epoch_sum + stacked
            progress.terms = progress.terms or [*terms, "total"]
        progress.train_history.append(epoch_sum / self.n_rows)

    def results(self, keep_slice: bool) -> tuple[list[np.ndarray], pd.DataFrame]:
        """Each fold's validation probabilities from its kept best weights, and the loss history."""
        progress = self.progress
        if progress.best_state is not None:
            self.optimizer.flat.copy_(progress.best_state)
        self.model.eval()
        temperature = None
        with torch.no_grad():
            logits = self.model({m: self.val.x[m] for m in self.inputs})["logits"]
            if self.config.calibration == "temperature":
                held_out = self.model({m: self.monitor.x[m] for m in self.inputs})["logits"]
                temperature = fit_temperature(held_out, self.monitor.y, self.monitor.rows)
                logits = logits / temperature[:, None, None]
            probabilities = torch.softmax(logits, dim=-1)[..., 1].cpu().numpy()
        history = history_frame(
            progress.train_history,
            progress.val_history,
            progress.terms or [],
            self.folds,
            progress.monitor_history,
        )
        # A fold that stopped early has no epochs after it, packed (where the others go on) or alone.
        last = progress.last_epoch[history["slice"].to_numpy()]
        history = history[history["epoch"].to_numpy() <= last].reset_index(drop=True)
        if not keep_slice:
            history = history.drop(columns="slice")
        # each fold's calibration temperature (None: not calibrated), for the results and the bundle
        history.attrs["temperature"] = None if temperature is None else temperature.cpu().tolist()
        return [probabilities[i, : len(fd.y_val)] for i, fd in enumerate(self.group)], history


#: The temperatures :func:`fit_temperature` chooses among (log-spaced, 0.03 to 30).
TEMPERATURES = np.logspace(-1.5, 1.5, 301)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Per slice, the temperature T (of :data:`TEMPERATURES`) that minimises the log loss of
    ``softmax(logits / T)`` on that slice's real rows: ``logits`` [slices, rows, 2], ``labels`` and ``rows``
    (the padding mask) [slices, rows]. A grid, not an optimiser: the same T on every run and device.

    The labels are Platt's smoothed targets, (n+ + 1) / (n+ + 2) for a positive and 1 / (n- + 2) for a
    negative: on a few held-out rows that the model separates perfectly, 0/1 targets would drive T to its
    smallest value (probabilities of 0 and 1), which then costs dearly on the validation rows."""
    margin = (logits[..., 1] - logits[..., 0]).double()  # softmax of two classes: sigmoid of the margin
    grid = torch.as_tensor(TEMPERATURES, dtype=torch.float64, device=logits.device)
    scaled = margin[:, None, :] / grid[None, :, None]  # [slices, grid, rows]
    real = rows.double()
    positives = (labels.double() * real).sum(-1, keepdim=True)
    negatives = real.sum(-1, keepdim=True) - positives
    target = torch.where(labels > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    y = target[:, None, :]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(scaled, y.expand_as(scaled), reduction="none")
    mask = real[:, None, :]
    mean = (loss * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return grid[mean.argmin(dim=1)].to(logits.dtype)


def _split(group: list[FoldData], part: str, device, length: int, width: dict, used) -> _Split:
    """The validation (``val``) or early-stopping (``monitor``) rows of every fold, packed and padded."""
    return _Split(
        {m: pack([getattr(fd, part)[m] for fd in group], device, length, width[m]) for m in used},
        pack([getattr(fd, f"y_{part}").astype(np.float32) for fd in group], device, length),
        row_mask([len(getattr(fd, f"y_{part}")) for fd in group], device, length),
    )


def _slice_weights(
    slices: Sequence[TrainConfig], epoch: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Every slice's loss weights for ``epoch`` as ``[slices]`` tensors (1 where a slice sets none)."""
    per_slice = [_epoch_weights(c, epoch) for c in slices]
    names = dict.fromkeys(name for weights in per_slice for name in weights)
    return {
        name: torch.tensor([float(w.get(name, 1.0)) for w in per_slice], dtype=torch.float32, device=device)
        for name in names
    }


def _epoch_weights(config: TrainConfig, epoch: int) -> dict:
    """Loss weights for ``epoch``: the configured ones, with the KL weight ramped up over ``kl_warmup``."""
    if not config.kl_warmup:
        return config.loss_weights
    ramp = min(1.0, (epoch + 1) / config.kl_warmup)
    return {**config.loss_weights, "kl_weight": ramp * float(config.loss_weights.get("kl_weight", 1.0))}
