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

import warnings
from collections.abc import Sequence

import numpy as np
import torch

# Parameters are views into one flat buffer, and so are their gradients (accumulated in place, no copy);
# autograd notes that such views are not "dense", which costs nothing here.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


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
    """AdamW over the slices of a packed model; ``step(active)`` updates only the slices marked active.

    ``lr`` and ``weight_decay`` are one value, or one per slice (trials packed together differ in them):
    slices sharing both form one AdamW parameter group. Gradients accumulate straight into one flat
    ``[n_models, P]`` buffer (every parameter's ``.grad`` is a view of it), so a step concatenates nothing.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        n_models: int,
        lr: float | Sequence[float] = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | Sequence[float] = 1e-2,
    ):
        self.params = list(module.parameters())
        self.n_models = n_models
        self.flat = flatten_parameters(module, n_models)
        self.rows = [self.flat[i] for i in range(n_models)]  # slice i's parameters, as AdamW's i-th tensor
        self.grad = torch.zeros_like(self.flat)
        offset = 0
        for p in self.params:  # each parameter's gradient: a view of the flat buffer, laid out as the flat
            width = p[0].numel()
            p.grad = self.grad[:, offset : offset + width].view(p.shape)
            offset += width
        self.grad_rows = [self.grad[i] for i in range(n_models)]
        self._pattern: np.ndarray | None = None  # the active set AdamW was last handed
        lrs, decays = _per_slice(lr, n_models), _per_slice(weight_decay, n_models)
        groups: dict[tuple[float, float], list[torch.Tensor]] = {}
        for row, key in zip(self.rows, zip(lrs, decays, strict=True), strict=True):
            groups.setdefault(key, []).append(row)
        fused = self.flat.device.type in ("cpu", "cuda") and self.flat.dtype == torch.float32
        self.optimizer = torch.optim.AdamW(
            [{"params": rows, "lr": lr_, "weight_decay": wd} for (lr_, wd), rows in groups.items()],
            betas=betas,
            eps=eps,
            fused=fused or None,
        )

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the slices whose ``active`` entry (a host-side sequence, so no device sync) is true.

        The gradient views are handed to AdamW only when the active set changes (a fold out of batches at
        the end of an epoch, or stopped early): in the usual step nothing loops over slices in Python, and
        the fused update covers every slice in one call."""
        pattern = np.asarray(active, dtype=bool)
        if self._pattern is None or not np.array_equal(pattern, self._pattern):
            if pattern.shape != (self.n_models,):
                raise ValueError(f"expected one active flag per slice ({self.n_models}), got {pattern.shape}")
            for row, grad, on in zip(self.rows, self.grad_rows, pattern.tolist(), strict=True):
                row.grad = grad if on else None
            self._pattern = pattern.copy()
        self.optimizer.step()


def _per_slice(value: float | Sequence[float], n: int) -> list[float]:
    values = [float(value)] * n if isinstance(value, int | float) else [float(v) for v in value]
    if len(values) != n:
        raise ValueError(f"expected one value per slice ({n}), got {len(values)}")
    return values
