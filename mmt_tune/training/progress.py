"""What changes from epoch to epoch of a packed training run besides the weights and the optimizer: the
loss history and each fold's early-stopping bookkeeping (:class:`TrainingProgress`). A checkpoint is this,
plus the weights, optimizer moments and noise (:mod:`mmt_tune.training.trainer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TrainingProgress:
    """What changes from epoch to epoch besides the weights and the optimizer: the loss history and the
    early-stopping bookkeeping. A checkpoint is this, plus the weights, optimizer moments and noise."""

    k: int
    epochs: int
    patience: int
    device: torch.device
    terms: list[str] | None = None
    train_history: list[torch.Tensor] = field(default_factory=list)
    val_history: list[torch.Tensor] = field(default_factory=list)
    monitor_history: list[torch.Tensor] = field(default_factory=list)
    best_loss: torch.Tensor = None
    best_state: torch.Tensor | None = None
    patience_left: np.ndarray = None
    running_host: np.ndarray = None
    last_epoch: np.ndarray = None  # the last epoch each fold trained (early stopping)
    running: torch.Tensor = None

    def __post_init__(self) -> None:
        self.best_loss = torch.full((self.k,), float("inf"), device=self.device)
        self.patience_left = np.full(self.k, self.patience)
        self.running_host = np.ones(self.k, dtype=bool)
        self.last_epoch = np.full(self.k, self.epochs - 1)
        self.running = torch.ones(self.k, dtype=torch.bool, device=self.device)

    def restore(self, saved: dict) -> None:
        to = self.device
        self.terms = saved["terms"]
        self.train_history = [t.to(to) for t in saved["train_history"]]
        self.val_history = [t.to(to) for t in saved["val_history"]]
        self.monitor_history = [t.to(to) for t in saved.get("monitor_history", [])]
        self.best_loss = saved["best_loss"].to(to)
        self.best_state = None if saved["best_state"] is None else saved["best_state"].to(to)
        self.patience_left, self.running_host = saved["patience_left"], saved["running"]
        self.last_epoch = saved.get("last_epoch", self.last_epoch)
        self.running = torch.from_numpy(self.running_host).to(to)

    def saved(self) -> dict:
        """Everything of this object a checkpoint needs (on the CPU)."""
        return {
            "terms": self.terms,
            "train_history": [t.cpu() for t in self.train_history],
            "val_history": [t.cpu() for t in self.val_history],
            "monitor_history": [t.cpu() for t in self.monitor_history],
            "best_loss": self.best_loss.cpu(),
            "best_state": None if self.best_state is None else self.best_state.cpu(),
            "patience_left": self.patience_left.copy(),
            "running": self.running_host.copy(),
            "last_epoch": self.last_epoch.copy(),
        }

    def early_stop(self, epoch: int, monitored: torch.Tensor, flat: torch.Tensor) -> None:
        """Keep each fold's best weights by the monitored loss; stop a fold after ``patience`` epochs
        without improvement (the one device sync per epoch)."""
        improved = (monitored < self.best_loss) & self.running
        self.best_loss = torch.where(improved, monitored, self.best_loss)
        self.best_state = (
            flat.clone() if self.best_state is None else torch.where(improved[:, None], flat, self.best_state)
        )
        improved_host = improved.cpu().numpy()
        self.patience_left = np.where(improved_host, self.patience, self.patience_left - self.running_host)
        stopping = self.running_host & (self.patience_left <= 0)
        self.last_epoch = np.where(stopping, epoch, self.last_epoch)
        self.running_host = (self.patience_left > 0) & self.running_host
        self.running = torch.from_numpy(self.running_host).to(self.device)
