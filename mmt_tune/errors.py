"""Errors that entry points turn into one clear line and a non-zero exit."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, row or key); the message names it and says what is wrong."""
