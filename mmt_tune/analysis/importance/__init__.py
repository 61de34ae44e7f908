"""``python -m analysis.importance``: hyperparameter importance per configuration (the paper's Table 3).

For every model x modality configuration, a functional ANOVA (Hutter et al. 2014, the paper's reference 22)
of the trials' objective (default: mean CV AUC) over the searched hyperparameters: the fraction of the
objective's variance each one explains on its own (main effect), over several random-forest seeds (mean ±
std), the strongest pairwise interactions, and main-effect (marginal) curves. The engine is the ``fanova``
package by default, or Optuna's ``FanovaImportanceEvaluator`` (``--engine optuna``). Bounds and log scales
come from the study's ``space.json`` (or ``--space``), never from an engine's defaults; see
:mod:`mmt_tune.analysis.importance._base` for how they are passed.

Anything that makes a configuration unanalysable (no trials, too few complete ones, a parameter constant
across trials, failed trials) becomes a cell note and a line under the table, not a crash.

Laid out as Optuna's ``optuna.importance``: an evaluator interface (:mod:`._base`), one module per engine
(:mod:`.fanova`, :mod:`.optuna_fanova`), the analysis of a study (:mod:`.study`), the Table 3 writer apart
(:mod:`.table`) and the command line (:mod:`.cli`).
"""

from __future__ import annotations

from mmt_tune.analysis.importance._base import (
    BaseImportanceEvaluator,
    ForestSettings,
    SeedResult,
    ZeroVariance,
)
from mmt_tune.analysis.importance.study import ENGINES, evaluator, importance
from mmt_tune.analysis.importance.table import importance_frame, interactions_frame, table3, write_importance
from mmt_tune.analysis.importance.types import ConfigurationImportance, ImportanceOptions, ImportanceResult

__all__ = [
    "ENGINES",
    "BaseImportanceEvaluator",
    "ConfigurationImportance",
    "ForestSettings",
    "ImportanceOptions",
    "ImportanceResult",
    "SeedResult",
    "ZeroVariance",
    "evaluator",
    "importance",
    "importance_frame",
    "interactions_frame",
    "table3",
    "write_importance",
]
