"""The one compatibility shim of the project: running fanova 2.0.19 under NumPy 2.

fanova 2.0.19 (the last release, 2019) calls ``np.full(..., dtype=np.float)``; the ``np.float`` alias was
removed in NumPy 1.24/2.0. We restore the alias as the builtin ``float`` (exactly what it always was) before
fanova is imported, and only when it is missing. fanova also uses ConfigSpace's deprecated
``get_hyperparameters()`` and calls ``logging.basicConfig(level=INFO)`` on every fit; both would spam the
console, so its warnings are filtered and its logger is kept at WARNING.

Remove this module when fanova publishes a NumPy 2 compatible release.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np


def import_fanova():
    """``fanova.fANOVA`` and ``ConfigSpace``, importable and quiet under NumPy 2."""
    if "float" not in np.__dict__:
        np.float = float  # the alias NumPy removed; fanova only uses it as a dtype
    warnings.filterwarnings("ignore", message=r"Please use `list\(space", category=DeprecationWarning)
    warnings.filterwarnings("ignore", module=r"ConfigSpace.*", category=DeprecationWarning)
    if not logging.getLogger().handlers:
        # fANOVA.__init__ runs logging.basicConfig(level=INFO); a handler of ours makes that a no-op.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fanova").setLevel(logging.ERROR)

    import ConfigSpace
    from fanova import fANOVA

    return fANOVA, ConfigSpace
