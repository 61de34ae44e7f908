"""Building blocks with a leading *model* dimension: ``n_models`` independent copies trained at once.

Every tensor is shaped ``[n_models, ...]`` and every parameter has ``n_models`` independent slices, so k
cross-validation folds train as one batched model (one kernel per layer for all folds) while staying
mathematically separate: no parameter, statistic or random draw is shared between slices. With
``n_models=1`` the same code trains a single fold, which is how sequential training is run.

Reproducibility per slice: parameters are initialised slice by slice from per-slice generators
(:func:`initialize`), and dropout / sampling noise comes from :class:`NoiseSource`, which draws each slice's
noise from that slice's generator. A fold therefore gets the same numbers whether it trains alone or packed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class NoiseSource:
    """Per-slice random draws (dropout masks, reparameterisation noise) from per-slice generators."""

    def __init__(self) -> None:
        self.generators: list[torch.Generator] | None = None

    def _draw(self, kind: str, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        if self.generators is None or len(self.generators) != shape[0]:
            raise RuntimeError("NoiseSource.generators must hold one generator per model slice")
        draw = torch.rand if kind == "uniform" else torch.randn
        return torch.stack(
            [draw(tuple(shape[1:]), generator=g, device=like.device, dtype=like.dtype) for g in self.generators]
        )

    def uniform(self, like: torch.Tensor) -> torch.Tensor:
        return self._draw("uniform", like.shape, like)

    def normal(self, like: torch.Tensor) -> torch.Tensor:
        return self._draw("normal", like.shape, like)


class Dropout(nn.Module):
    """Inverted dropout whose masks come from a :class:`NoiseSource` (one generator per slice)."""

    def __init__(self, p: float, noise: NoiseSource):
        super().__init__()
        self.p = p
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = (self.noise.uniform(x) >= self.p).to(x.dtype)
        return x * keep / (1.0 - self.p)


class Linear(nn.Module):
    """``n_models`` independent affine maps: ``[n, ..., in] -> [n, ..., out]``."""

    def __init__(self, n_models: int, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_models, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_models, 1, out_features))

    def init_slices(self, generators: Sequence[torch.Generator]) -> None:
        bound = 1.0 / math.sqrt(self.in_features)  # PyTorch's default nn.Linear range
        for i, g in enumerate(generators):
            self.weight[i].uniform_(-bound, bound, generator=g)
            self.bias[i].uniform_(-bound, bound, generator=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, self.in_features)
        out = torch.baddbmm(self.bias, flat, self.weight)
        return out.reshape(*x.shape[:-1], self.out_features)


class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension with a separate affine transform per slice."""

    def __init__(self, n_models: int, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(n_models, dim))
        self.bias = nn.Parameter(torch.zeros(n_models, dim))

    def init_slices(self, generators: Sequence[torch.Generator]) -> None:
        self.weight.fill_(1.0)
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (self.dim,)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * self.weight.view(shape) + self.bias.view(shape)


class Token(nn.Module):
    """A learnable token per slice (normal initialisation, no feature information), shape ``[n, dim]``."""

    def __init__(self, n_models: int, dim: int, std: float = 0.02):
        super().__init__()
        self.std = std
        self.value = nn.Parameter(torch.empty(n_models, dim))

    def init_slices(self, generators: Sequence[torch.Generator]) -> None:
        for i, g in enumerate(generators):
            self.value[i].normal_(0.0, self.std, generator=g)

    def expand(self, batch: int) -> torch.Tensor:
        """``[n, batch, dim]``: the token repeated for every row of a batch."""
        return self.value[:, None, :].expand(-1, batch, -1)


@torch.no_grad()
def initialize(model: nn.Module, generators: Sequence[torch.Generator]) -> None:
    """Initialise every block of ``model`` slice by slice, in module order, from per-slice generators."""
    for module in model.modules():
        if hasattr(module, "init_slices"):
            module.init_slices(generators)


class FeedForward(nn.Module):
    """Paper Fig. 2: FC -> LayerNorm -> GELU -> Dropout -> FC -> LayerNorm -> Dropout (width E back to D)."""

    def __init__(self, n_models: int, expanded: int, d_model: int, dropout: float, noise: NoiseSource):
        super().__init__()
        self.fc1 = Linear(n_models, expanded, expanded)
        self.norm1 = LayerNorm(n_models, expanded)
        self.drop1 = Dropout(dropout, noise)
        self.fc2 = Linear(n_models, expanded, d_model)
        self.norm2 = LayerNorm(n_models, d_model)
        self.drop2 = Dropout(dropout, noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(F.gelu(self.norm1(self.fc1(x))))
        return self.drop2(self.norm2(self.fc2(x)))


class ClassifierHead(nn.Module):
    """Paper Fig. 3: LayerNorm -> FC -> LayerNorm -> GELU -> FC -> LayerNorm -> GELU -> FC (two logits)."""

    def __init__(self, n_models: int, in_features: int, hidden: int, dropout: float, noise: NoiseSource):
        super().__init__()
        self.norm0 = LayerNorm(n_models, in_features)
        self.fc1 = Linear(n_models, in_features, hidden)
        self.norm1 = LayerNorm(n_models, hidden)
        self.fc2 = Linear(n_models, hidden, hidden // 2)
        self.norm2 = LayerNorm(n_models, hidden // 2)
        self.drop = Dropout(dropout, noise)
        self.fc3 = Linear(n_models, hidden // 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.fc1(self.norm0(x))))
        x = self.drop(F.gelu(self.norm2(self.fc2(x))))
        return self.fc3(x)
