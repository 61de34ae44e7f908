"""What a finished search is followed by: the held-out table's scores and the robustness table.

Both run in the driver after Tune's run, with torch pinned to the threads of one trial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from mmt_tune.study.options import StudyOptions, StudyResult


def after_search(
    result: StudyResult,
    table: pd.DataFrame,
    holdout: pd.DataFrame | None,
    modalities: tuple[str, ...],
    opts: StudyOptions,
) -> None:
    """What is computed from the finished search: held-out scores and the robustness table."""
    if result.trials.empty or not (result.trials["status"] == "ok").any():
        return
    if holdout is None and not opts.robustness:
        return
    import torch

    torch.set_num_threads(max(1, int(opts.cpus_per_trial)))  # as one trial: not one thread per core
    if holdout is not None:
        from mmt_tune.study.holdout import evaluate_holdout

        result.test = evaluate_holdout(
            table, holdout, result.trials, modalities, opts.seed, result.experiment
        )
    if opts.robustness:
        from mmt_tune.study.robustness import evaluate_robustness

        result.robustness = evaluate_robustness(
            table, result.trials, modalities, opts.seed, result.experiment, opts.modality_dropout
        )
