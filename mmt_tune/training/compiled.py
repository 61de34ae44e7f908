"""Compiled training steps: built once per shape in a process, and eager training where compiling fails.

``--compile BACKEND`` traces each deep trial's step (forward pass and losses, :func:`torch.compile` with
``fullgraph``). TorchDynamo keeps the compiled step per code object, guarded on what the graph was
specialised to: the model and its options (dropout, width, interaction rule), the present sequences, the
padded feature widths and the pack size. Loss weights and learning rates are tensors or live in the
optimizer, so trials of one configuration that differ only in them (the ``paper`` space's deep trials) reuse
the step compiled by the first of them in the same worker process; Tune reuses its worker processes
(``reuse_actors``), and a pack's members share one step. Inductor also keeps compiled kernels on disk
(``TORCHINDUCTOR_CACHE_DIR``), so a new process compiles a known shape faster than the first one did.
TorchDynamo gives up compiling a code object after ``recompile_limit`` shapes (8 by default) and then runs
it eagerly without a word; :func:`prepare` raises that limit so a study's many configurations stay compiled.

Where compiling fails (no C compiler, an operation the backend cannot lower, a torch without the backend),
:func:`usable` says why in one line before a study starts, and :class:`Step` falls back to the eager step
(with one ``note:`` per process) if a model's own step fails later: never a crash mid-study.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

#: Shapes one code object may be compiled for in a process (TorchDynamo's default is 8).
RECOMPILE_LIMIT = 256

_broken: dict[str, str] = {}  # backend -> why compiling failed in this process


def prepare() -> None:
    """Let TorchDynamo compile the training step for many shapes in one process."""
    import torch._dynamo.config as config

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
    if hasattr(config, "accumulated_recompile_limit"):
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 4 * RECOMPILE_LIMIT)


def usable(backend: str) -> str | None:
    """None when ``backend`` compiles a small step here; else why not (one line)."""
    import torch

    def step(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x @ w).logsumexp(-1).mean()

    try:
        x = torch.randn(4, 3, requires_grad=True)
        torch.compile(step, backend=backend, fullgraph=True)(x, torch.randn(3, 2)).backward()
    except Exception as exc:  # any failure to compile means: train eagerly
        return _reason(exc)
    return None


class Step:
    """A training step compiled with ``backend``, run eagerly from the first failure on (in this process)."""

    def __init__(self, eager: Callable, backend: str) -> None:
        import torch

        prepare()
        self.eager, self.backend = eager, backend
        self.compiled = torch.compile(eager, backend=backend, fullgraph=True)

    def __call__(self, *args: Any, restore: Callable[[], None] | None = None) -> Any:
        if self.backend in _broken:
            return self.eager(*args)
        try:
            return self.compiled(*args)
        except Exception as exc:  # compiling failed: the step itself is the eager one
            _broken[self.backend] = _reason(exc)
            print(
                f"note: --compile {self.backend} failed ({_broken[self.backend]}): training eagerly",
                file=sys.stderr,
            )
            if restore is not None:
                restore()
            return self.eager(*args)


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__
