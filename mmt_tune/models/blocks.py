"""Building blocks with a leading *model* dimension: ``n_models`` independent copies trained at once.

Every tensor is shaped ``[n_models, ...]`` and every parameter has ``n_models`` independent slices, so k
cross-validation folds train as one batched model (one kernel per layer for all folds) while staying
mathematically separate: no parameter, statistic or random draw is shared between slices. With
``n_models=1`` the same code trains a single fold, which is how sequential training is run.

Reproducibility per slice: parameters are initialised slice by slice from per-slice generators
(:func:`initialize`), and dropout / sampling noise comes from :class:`NoiseSource`, whose draws for a slice
depend only on that slice's seed. A fold therefore gets the same numbers whether it trains alone or packed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class NoiseSource:
    """Per-slice random numbers, reproducible per slice and vectorised over slices.

    Slice i draws from its own ``torch.Generator`` in blocks of ``block`` numbers, on the model's device (a
    CUDA model's streams are CUDA generators: no host work, no host-to-device copy; a CPU model's are CPU
    generators, so CPU and GPU runs draw different masks, as their float rounding differs anyway). A request
    takes the next ``like[0].numel()`` numbers of every slice's block at once, as one strided view. Since
    every slice of a packed batch has the same shape, a fold consumes its stream in the same pieces whether
    it trains alone or packed, and gets the same dropout masks and sampling noise. One block serves several
    epochs, so the inner loop costs a slice of a buffer, not a generator call per slice.

    Capturable steps: between :meth:`begin_step` and :meth:`end_step`, the step's numbers are copied into one
    fixed ``[n_models, per_step]`` tensor (``window``) before the step runs, and the requests read it at the
    same offsets every step. The traced step then sees no host counter that changes and no buffer that moves
    (``torch.compile`` without recompiles, CUDA graphs with static addresses). The first step only records
    how many numbers each request takes; the windows replay the same consumption, refills included, so the
    numbers are exactly those of the plain path.
    """

    def __init__(self, block: int = 1 << 20) -> None:
        self.block = block
        self.generators: list[torch.Generator] = []
        self.device = torch.device("cpu")
        self.buffer: torch.Tensor | None = None  # [n_models, block] uniforms on the device
        self.offset = 0
        self._block_start: list[torch.Tensor] = []
        self.window: torch.Tensor | None = None  # this step's numbers, [n_models, per_step], fixed address
        self.cursor = 0  # where the next request reads the window
        self.sizes: list[int] | None = None  # what each request of a training step takes (after step 1)
        self._recording: list[int] | None = None
        self._in_step = False

    def seed(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        on = self.device if self.device.type == "cuda" else torch.device("cpu")
        self.generators = [torch.Generator(device=on).manual_seed(int(s)) for s in seeds]
        self.buffer, self.offset = None, 0
        self.window, self.sizes, self._recording, self._in_step = None, None, None, False

    def _refill(self, size: int) -> None:
        self._block_start = [g.get_state() for g in self.generators]  # to rebuild the block on resume
        draws = [torch.rand(size, generator=g, device=g.device) for g in self.generators]
        self.buffer = torch.stack(draws).to(self.device, non_blocking=True)
        self.offset = 0

    def _take(self, size: int) -> torch.Tensor:
        """The next ``size`` numbers of every slice's stream, ``[n_models, size]`` (refilling as needed)."""
        if self.buffer is None or self.offset + size > self.buffer.shape[1]:
            self._refill(max(self.block, size))
        out = self.buffer[:, self.offset : self.offset + size]
        self.offset += size
        return out

    def begin_step(self) -> None:
        """Before a training step: copy the step's numbers into ``window`` (from the second step on)."""
        self._in_step = True
        if self.sizes is None:
            self._recording = []
            return
        total = sum(self.sizes)
        if self.window is None or self.window.shape[1] != total:
            self.window = torch.empty(len(self.generators), total, device=self.device)
        # Replay the plain path's consumption on host counters; copy each run of one block at once (one
        # copy, except for the step that straddles a refill).
        start, start_at, at = None, 0, 0
        for size in self.sizes:
            if self.buffer is None or self.offset + size > self.buffer.shape[1]:
                if start is not None:
                    self.window[:, start_at:at].copy_(self.buffer[:, start : self.offset])
                self._refill(max(self.block, size))
                start = None
            if start is None:
                start, start_at = self.offset, at
            self.offset += size
            at += size
        if start is not None:  # (a step that draws nothing, e.g. without dropout, has nothing to copy)
            self.window[:, start_at:at].copy_(self.buffer[:, start : self.offset])
        self.cursor = 0

    def end_step(self) -> None:
        """After a training step: the first one fixes the sizes later windows replay."""
        self._in_step = False
        if self._recording is not None:
            self.sizes, self._recording = self._recording, None
        elif self.sizes is not None and self.cursor != self.window.shape[1]:
            raise RuntimeError("a training step used fewer random numbers than the first one")

    def uniform(self, like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) numbers shaped like ``like`` (slice dimension first), in ``like``'s dtype."""
        if len(self.generators) != like.shape[0]:
            raise RuntimeError("NoiseSource.seed() must be given one seed per model slice")
        size = like[0].numel()
        if self._in_step and self._recording is None:  # a replayed step: read the window
            if self.cursor + size > self.window.shape[1]:
                raise RuntimeError("a training step used more random numbers than the first one")
            out = self.window[:, self.cursor : self.cursor + size]
            self.cursor += size
        else:
            if self._recording is not None:
                self._recording.append(size)
            out = self._take(size)
        return out.view(like.shape).to(like.dtype)

    def normal(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal numbers (Box-Muller on two uniform draws)."""
        u1, u2 = self.uniform(like), self.uniform(like)
        return torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2.0 * math.pi * u2)

    def state_dict(self) -> dict:
        """Where every stream stands (small: generator states, not the block of numbers itself)."""
        on = self.generators[0].device.type if self.generators else "cpu"
        if self.buffer is None:
            return {"generators": [g.get_state() for g in self.generators], "block": None, "on": on}
        return {
            "generators": self._block_start,
            "block": self.buffer.shape[1],
            "offset": self.offset,
            "on": on,
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["generators"]) != len(self.generators):
            raise ValueError("noise state has a different number of model slices")
        on = self.generators[0].device.type if self.generators else "cpu"
        if state.get("on", "cpu") != on:
            raise ValueError(
                f"the checkpoint's random streams were drawn on {state.get('on', 'cpu')}, this run draws on "
                f"{on}: resume on the same kind of device"
            )
        for g, g_state in zip(self.generators, state["generators"], strict=True):
            g.set_state(g_state)
        self.buffer, self.offset = None, 0
        if state["block"] is not None:  # re-draw the current block, then skip what was already used
            self._refill(state["block"])
            self.offset = state["offset"]


class Dropout(nn.Module):
    """Inverted dropout whose masks come from a :class:`NoiseSource` (one stream per slice)."""

    def __init__(self, p: float, noise: NoiseSource):
        super().__init__()
        self.p = p
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        scale = torch.where(self.noise.uniform(x) >= self.p, 1.0 / (1.0 - self.p), 0.0)
        return x * scale


class Linear(nn.Module):
    """``n_models`` independent affine maps: ``[n, ..., in] -> [n, ..., out]``."""

    def __init__(self, n_models: int, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_models, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_models, 1, out_features))
        with torch.no_grad():  # usable as built; initialize() re-draws it reproducibly per slice
            self.init_slices([None] * n_models)

    def init_slices(self, generators: Sequence[torch.Generator | None]) -> None:
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
        return torch.addcmul(
            self.bias.view(shape), F.layer_norm(x, (self.dim,), eps=self.eps), self.weight.view(shape)
        )


class Token(nn.Module):
    """A learnable token per slice (normal initialisation, no feature information), shape ``[n, dim]``."""

    def __init__(self, n_models: int, dim: int, std: float = 0.02):
        super().__init__()
        self.std = std
        self.value = nn.Parameter(torch.empty(n_models, dim))
        with torch.no_grad():
            self.init_slices([None] * n_models)

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


class MLP(nn.Module):
    """FC -> LayerNorm -> GELU -> Dropout -> FC, and with ``out_norm`` -> LayerNorm -> Dropout."""

    def __init__(
        self,
        n_models: int,
        in_features: int,
        hidden: int,
        out_features: int,
        dropout: float,
        noise: NoiseSource,
        out_norm: bool = False,
    ):
        super().__init__()
        self.fc1 = Linear(n_models, in_features, hidden)
        self.norm1 = LayerNorm(n_models, hidden)
        self.drop1 = Dropout(dropout, noise)
        self.fc2 = Linear(n_models, hidden, out_features)
        self.norm2 = LayerNorm(n_models, out_features) if out_norm else None
        self.drop2 = Dropout(dropout, noise) if out_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.drop1(F.gelu(self.norm1(self.fc1(x)))))
        return self.drop2(self.norm2(x)) if self.norm2 is not None else x


def FeedForward(n_models: int, expanded: int, d_model: int, dropout: float, noise: NoiseSource) -> MLP:
    """Paper Fig. 2: FC -> LayerNorm -> GELU -> Dropout -> FC -> LayerNorm -> Dropout (width E back to D)."""
    return MLP(n_models, expanded, expanded, d_model, dropout, noise, out_norm=True)


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
