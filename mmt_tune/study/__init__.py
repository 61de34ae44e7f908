"""A hyperparameter study: its one entry, checks, launcher, search, trainable, nested CV and what follows.

- :mod:`.entry`: :func:`run_study`, the one entry (checks, then flat or nested);
- :mod:`.options`: :class:`StudyOptions`, :class:`StudyResult` and where a study's files go;
- :mod:`.prepare`: everything checked before Ray starts; :mod:`.guards`: the checks themselves (inputs,
  a resumed study's identity, the folder lock);
- :mod:`.launcher`: one flat study as one Tune run (Ray and GPU policy, the Tuner, the tables at the end);
- :mod:`.search`: one Optuna TPE study per configuration inside one Tune run, and per-configuration ASHA;
- :mod:`.trainable`, :mod:`.packs`, :mod:`.trial_io`: one trial, a pack of trials, their reports and
  checkpoints; :mod:`.tracking`: W&B; :mod:`.callbacks`: the trials table kept current, a progress bar;
- :mod:`.nested`, :mod:`.holdout`, :mod:`.robustness`, :mod:`.post_search`: nested CV, a held-out table,
  the missing-modality robustness table.

The results folder's contract (file names, trials table, best-trial rule) is :mod:`mmt_tune.records`.
Importing this package imports neither Ray nor torch; running a study does.
"""

from __future__ import annotations

import importlib

_PUBLIC = {"run_study": "entry", "StudyOptions": "options", "StudyResult": "options"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
