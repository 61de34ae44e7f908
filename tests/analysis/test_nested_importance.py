"""Table 3 of a nested study: each outer fold's trials analysed alone, then mean ± std over outer folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmt_tune.analysis.importance.study import importance
from mmt_tune.analysis.importance.types import ImportanceOptions
from mmt_tune.analysis.results import Study
from mmt_tune.analysis.synthetic import paper_space, synthetic_trials


def test_nested_importance_is_per_outer_fold_and_never_pools_them():
    space = {k: v for k, v in paper_space().items() if k == "mmt2m/T1WI+FLAIR"}
    folds = []
    for k in range(2):
        trials = synthetic_trials(space, 12, seed=k)
        folds.append(trials.assign(outer_fold=k, trial_id=trials["trial_id"].astype(str) + f"-o{k}"))
    nested = Study("n", pd.concat(folds, ignore_index=True), space=space)
    options = ImportanceOptions(seeds=2, jobs=1)
    result = importance(nested, options, progress=False)
    assert result.spread == "2 outer folds" and result.notes[0].startswith(
        "nested study: importance computed"
    )
    alone = [importance(Study("f", f, space=space), options, progress=False).configurations[0] for f in folds]
    merged = result.configurations[0]
    assert merged.n_trials == 24
    for name, (mean, std) in merged.main.items():
        values = [c.main[name][0] for c in alone]
        assert mean == pytest.approx(np.mean(values), abs=1e-12) and std == pytest.approx(
            np.std(values), abs=1e-12
        )
    pooled = importance(
        Study("p", pd.concat(folds, ignore_index=True).drop(columns="outer_fold"), space=space),
        options,
        progress=False,
    ).configurations[0]
    assert pooled.main != merged.main  # the pooled analysis is another number
