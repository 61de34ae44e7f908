"""A hyperparameter study: launcher, per-configuration search, trainable, callbacks, the trials table.

- :mod:`.launcher`: :func:`run_study` (checks, Ray and GPU policy, the Tuner, the tables at the end);
- :mod:`.guards`: what is checked before Ray starts (inputs, a resumed study's identity, the folder lock);
- :mod:`.search`: one Optuna TPE study per configuration inside one Tune run, and per-configuration ASHA;
- :mod:`.trainable`: one trial (the Tune function trainable);
- :mod:`.callbacks`: the trials table kept current, a progress bar;
- :mod:`.records`: the trials table's contract, writer and reader helpers, and the one "best trial" rule.

Importing this package imports neither Ray nor torch; :func:`run_study` does, when called.
"""

from __future__ import annotations

from mmt_tune.study.launcher import StudyOptions, StudyResult, run_study

__all__ = ["StudyOptions", "StudyResult", "run_study"]
