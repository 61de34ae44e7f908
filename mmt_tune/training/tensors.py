"""Tensor layout of a packed model's data: per-slice arrays stacked and padded, row masks, the batch
schedule of every epoch drawn up front, and the loss history as one tidy frame (:mod:`mmt_tune.training.trainer`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch


def pack(
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


def row_mask(counts: Sequence[int], device: torch.device, length: int | None = None) -> torch.Tensor:
    """``[k, length]``: 1 on each fold's real rows, 0 on its padding."""
    length = length or max(counts)
    return (torch.arange(length)[None, :] < torch.tensor(counts)[:, None]).float().to(device)


def schedule(
    counts: Sequence[int],
    epochs: int,
    batch: int,
    generators: Sequence[torch.Generator],
    device: torch.device,
    steps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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


def to_cpu(value: object) -> object:
    """A copy of ``value`` (nested dicts/lists of tensors) whose tensors are on the CPU and share no memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(item) for item in value)
    return value


def history_frame(
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
        frame.insert(0, "slice", np.tile(np.arange(k), epochs))
        frame.insert(0, "fold", np.tile(folds, epochs))
        frame.insert(0, "epoch", np.repeat(np.arange(epochs), k))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
