"""The one place that reads private attributes of the libraries mmt-tune builds on.

Each function stands where the library has no public way to the same information; each is checked by
``tests/test_architecture.py::test_the_private_attributes_we_read_still_exist``, which fails when a library
release renames or drops one, and nothing else in the project reads a private attribute of another object.
"""

from __future__ import annotations

from typing import Any


def optuna_study(search: Any) -> Any:
    """The Optuna study behind Ray Tune's ``OptunaSearch`` (``_ot_study``): Tune exposes no accessor, and a
    resumed study must fail the trials an interrupted run asked for but never reported."""
    return search._ot_study


def asked_trial_numbers(search: Any) -> set[int]:
    """The Optuna trial numbers an ``OptunaSearch`` has asked for and still tracks (``_ot_trials``)."""
    return {trial.number for trial in search._ot_trials.values()}


def asha_stopped(scheduler: Any) -> int:
    """How many trials Ray's ASHA scheduler stopped early (``_num_stopped``; only its debug string shows it)."""
    return int(scheduler._num_stopped)


def workspace_model(workspace: Any) -> Any:
    """wandb-workspaces' view model of a workspace (``_to_model``), the JSON ``save()`` uploads; the library
    has no public way to see it without uploading."""
    return workspace._to_model()
