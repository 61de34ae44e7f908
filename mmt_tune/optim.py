"""``torch.optim.AdamW`` for packed models, where each fold (model slice) can sit out a step.

Packed folds have different numbers of training rows (SMOTE output differs per fold), hence different numbers
of batches per epoch; a fold with no batch at a step must not move (no weight decay, no moment decay, and its
bias correction must count only its own steps). ``torch.optim.AdamW`` skips a tensor whose ``grad`` is None
and keeps a step count per tensor, so we give it one tensor per fold: all parameters are re-seated as views
into one flat ``[n_models, P]`` buffer, and row i of that buffer is fold i's parameter vector. A step hands
AdamW each active fold's row of the flat gradient and None for the others. With the fused kernel the update
costs the same for k packed folds as for one fold's worth of parameters times k, in a handful of kernels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def flatten_parameters(module: torch.nn.Module, n_models: int) -> torch.Tensor:
    """Re-seat every parameter of ``module`` as a view into one ``[n_models, P]`` buffer and return it.

    Every parameter must have ``n_models`` as its leading dimension. Call after moving the module to its device.
    """
    params = list(module.parameters())
    flat = torch.cat([p.detach().reshape(n_models, -1) for p in params], dim=1).contiguous()
    offset = 0
    for p in params:
        width = p[0].numel()
        p.data = flat[:, offset : offset + width].view(p.shape)  # a view: updating flat updates p
        offset += width
    return flat


class MaskedAdamW:
    """AdamW over the folds of a packed model; ``step(active)`` updates only the folds marked active."""

    def __init__(
        self,
        module: torch.nn.Module,
        n_models: int,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        self.params = list(module.parameters())
        self.n_models = n_models
        self.flat = flatten_parameters(module, n_models)
        self.rows = [self.flat[i] for i in range(n_models)]  # fold i's parameters, as AdamW's i-th tensor
        fused = self.flat.device.type in ("cpu", "cuda") and self.flat.dtype == torch.float32
        self.optimizer = torch.optim.AdamW(
            self.rows, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None
        )

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the folds whose ``active`` entry (a host-side sequence, so no device sync) is true."""
        grad = torch.cat([p.grad.reshape(self.n_models, -1) for p in self.params], dim=1)
        for i, row in enumerate(self.rows):
            row.grad = grad[i] if active[i] else None
        self.optimizer.step()
