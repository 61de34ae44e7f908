"""Errors that entry points turn into one clear line and a non-zero exit."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, row or key); the message names it and says what is wrong."""


def describe(exc: BaseException) -> str:
    """The one line a command prints for ``exc``: an :class:`InputError`'s message, or for an OS error (a
    file the user may not read, a full disk) the path and the system's reason."""
    if isinstance(exc, OSError) and not isinstance(exc, InputError):
        where = exc.filename if exc.filename is not None else "?"
        return f"{where}: {exc.strerror or exc}"
    return str(exc)
