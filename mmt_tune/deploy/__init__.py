"""Deployment: from a finished study to predictions for new patients.

- :mod:`~mmt_tune.deploy.from_study`: the study's chosen configurations, refitted on all rows;
- :mod:`~mmt_tune.deploy.bundle`: the fitted configurations on disk, loaded without running code;
- :mod:`~mmt_tune.deploy.routing`: which model scores a patient, by the sequences the patient has;
- :mod:`~mmt_tune.deploy.validation`: checks of a new table, and external validation with labels.

The commands are ``python -m mmt_tune.fit`` and ``python -m mmt_tune.predict``. Public names are imported on
first use.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "study_choices": "from_study",
    "fit_all": "from_study",
    "Bundle": "bundle",
    "save_bundle": "bundle",
    "load_bundle": "bundle",
    "route": "routing",
    "predict_table": "routing",
    "read_table": "validation",
    "check_features": "validation",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
