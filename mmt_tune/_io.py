"""Atomic writes: every output is written to a temporary file beside its target, then renamed into place;
within :func:`output_unit`, a command's outputs are renamed into place together, after all were written.

A write that fails for want of space or rights (a full disk, ``ulimit -f``, a read-only folder) becomes one
:class:`~mmt_tune.errors.InputError` naming the file, and leaves the previous outputs as they were.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: the output unit being written: (temporary file, target) pairs renamed into place when it ends well
_UNIT: contextvars.ContextVar[list[tuple[Path, Path]] | None] = contextvars.ContextVar("_UNIT", default=None)


def _cannot_write(path: Path, exc: OSError):
    from mmt_tune.errors import InputError

    return InputError(f"{path}: cannot write ({exc.strerror or exc}); previous outputs left as they were")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it over ``target`` (inside an
    :func:`output_unit`: when the unit ends), else delete it."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    unit = _UNIT.get()
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.filename not in (None, str(tmp_path), tmp_path):
                raise
            raise _cannot_write(target, exc) from None
        # mkstemp creates the file 0600; give it the mode any other new file gets (0644 with umask 022), so
        # colleagues on a shared disk can read tables and reports.
        os.chmod(tmp_path, 0o666 & ~current_umask())
        if unit is not None:
            unit.append((tmp_path, target))
            return
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        if unit is None:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_unit() -> Iterator[None]:
    """Every :func:`atomic_path` write inside is staged; when the block ends well all are renamed into place
    (renames within a folder, which need no space), otherwise all are deleted and no output changed."""
    pending: list[tuple[Path, Path]] = []
    token = _UNIT.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _UNIT.reset(token)
    for tmp, target in pending:
        os.replace(tmp, target)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting it, then put it back at once
    os.umask(mask)
    return mask


def check_writable(folder: str | os.PathLike, what: str) -> None:
    """Create ``folder`` and write a file in it, or raise :class:`InputError` naming it (before any work)."""
    from mmt_tune.errors import InputError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise InputError(f"{folder}: cannot write here ({what}): {exc.strerror or exc}") from None


def check_output_file(path: str | os.PathLike, what: str) -> None:
    """``path`` can become an output file: not an existing folder, and its folder writable (before any work);
    otherwise one :class:`InputError` naming it."""
    from mmt_tune.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; {what} names the file to write (e.g. {path / 'out.csv'})")
    check_writable(path.parent, what)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes an :class:`InputError` naming ``source`` and the line."""
    import yaml

    from mmt_tune.errors import InputError

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{source}: not valid YAML ({where}{problem})") from None
