"""The one entry of a study: :func:`run_study` checks its inputs, then runs it flat or nested.

    from mmt_tune.study.entry import run_study
    result = run_study("mmt1m", "features.parquet", samples=20, folds=5)
    result.trials  # one row per trial x fold (also results/mmt1m/trials.{parquet,csv})

Importing this module imports neither Ray nor torch; running a study does.
"""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from mmt_tune.study.options import StudyOptions, StudyResult


def run_study(
    space: str | Path, features: str | Path, options: StudyOptions | None = None, **overrides: Any
) -> StudyResult:
    """Run a study and return its trials table (also written to ``<storage>/<name>/trials.{parquet,csv}``).

    ``options`` (or keyword ``overrides`` of its fields) is a :class:`StudyOptions`. ``resume=True``
    continues the experiment ``<storage>/<name>`` after an interruption (even SIGKILL): finished trials are
    kept, unfinished ones continue from their last epoch checkpoint, and every configuration's Optuna study
    continues from its saved state. ``outer_folds=K`` runs nested CV (:mod:`mmt_tune.study.nested`).
    """
    from mmt_tune.study.prepare import prepare_study

    unknown = set(overrides) - {f.name for f in fields(StudyOptions)}
    if unknown:
        raise TypeError(f"run_study() got unknown options {sorted(unknown)}")
    opts = replace(options or StudyOptions(), **overrides)
    prepared = prepare_study(space, features, opts)
    if opts.compile is not None:
        from mmt_tune.training.compiled import usable

        reason = usable(opts.compile)  # here, once, rather than in every trial
        if reason is not None:
            print(
                f"note: --compile {opts.compile} does not work here ({reason}): training eagerly",
                file=sys.stderr,
            )
            opts = replace(opts, compile=None)
    if opts.outer_folds:
        from mmt_tune.study.nested import run_nested

        return run_nested(prepared, opts)
    from mmt_tune.study.launcher import run_flat

    return run_flat(prepared, opts)
