"""Synthetic trials tables with a known variance decomposition (validation tests and benchmarks).

Every configuration of a search space gets ``n_trials`` trials whose parameters are drawn uniformly on the
scale the sampler uses (log10 for log-uniform ones). Each parameter enters the objective through its position
on that scale, ``u = (encode(value) - encode(low)) / (encode(high) - encode(low))`` in [0, 1]:

    objective = base + sum_p c_p * (u_p - 1/2) + c_int * (u_a - 1/2) * (u_b - 1/2)

Under the uniform measure on the box (the one fANOVA integrates over) the terms are orthogonal, so the main
effect of p explains ``c_p**2 / 12`` of the variance, the (a, b) interaction ``c_int**2 / 144``, and the
fractions follow by dividing by their sum (:func:`analytic_importance`). Fold metrics scatter around the
objective with deviations that sum to zero over the folds, so the fold mean is exactly the objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mmt_tune.metrics import METRICS
from mmt_tune.spaces import Distribution

#: Coefficients by parameter name (``alpha_*`` for every reconstruction weight): the classification weight
#: matters most, as in the paper's Table 3.
DEFAULT_COEFFICIENTS = {"beta": 0.08, "alpha_*": 0.05, "lr": 0.04, "gamma": 0.02, "kl_weight": 0.02}
DEFAULT_INTERACTION = ("beta", "lr", 0.08)


def coefficient(name: str, coefficients: Mapping[str, float]) -> float:
    if name in coefficients:
        return coefficients[name]
    return coefficients.get("alpha_*", 0.0) if name.startswith("alpha_") else 0.0


def analytic_importance(
    parameters: Sequence[str],
    coefficients: Mapping[str, float] = DEFAULT_COEFFICIENTS,
    interaction: tuple[str, str, float] | None = DEFAULT_INTERACTION,
) -> tuple[dict[str, float], float]:
    """Main-effect fractions of each parameter and the interaction's fraction (see the module docstring)."""
    variances = {p: coefficient(p, coefficients) ** 2 / 12 for p in parameters}
    a, b, c = interaction
    pure = c**2 / 144 if a in parameters and b in parameters else 0.0
    total = sum(variances.values()) + pure
    return {p: v / total for p, v in variances.items()}, pure / total


def _unit_to_value(u: np.ndarray, bounds: Distribution) -> np.ndarray:
    if bounds.log:
        low, high = math.log10(bounds.low), math.log10(bounds.high)
        return 10 ** (low + u * (high - low))
    return bounds.low + u * (bounds.high - bounds.low)


def synthetic_trials(
    space: Mapping[str, Mapping[str, Distribution]],
    n_trials: int,
    *,
    folds: int = 5,
    seed: int = 0,
    base: float = 0.75,
    coefficients: Mapping[str, float] = DEFAULT_COEFFICIENTS,
    interaction: tuple[str, str, float] | None = DEFAULT_INTERACTION,
    fold_noise: float = 0.03,
    study: str = "synthetic",
) -> pd.DataFrame:
    """A trials table (the contract of docs/design.md) for every configuration ``model/present`` of ``space``."""
    rng = np.random.default_rng(seed)
    frames = []
    for key, parameters in space.items():
        model, _, present = key.partition("/")
        names = list(parameters)
        units = rng.uniform(size=(n_trials, len(names)))
        objective = np.full(n_trials, base)
        for j, name in enumerate(names):
            objective += coefficient(name, coefficients) * (units[:, j] - 0.5)
        a, b, c = interaction
        if a in names and b in names:
            objective += c * (units[:, names.index(a)] - 0.5) * (units[:, names.index(b)] - 0.5)
        deviations = rng.normal(0, fold_noise, size=(n_trials, folds))
        deviations -= deviations.mean(axis=1, keepdims=True)  # fold mean == objective exactly
        per_fold = objective[:, None] + deviations
        trial_ids = [f"{key.replace('/', '_')}_{i:05d}" for i in range(n_trials)]
        frame = pd.DataFrame(
            {
                "study": study,
                "model": model,
                "present": present,
                "trial_id": np.repeat(trial_ids, folds),
                "fold": np.tile(np.arange(folds), n_trials),
            }
        )
        for j, name in enumerate(names):
            frame[f"config/{name}"] = np.repeat(_unit_to_value(units[:, j], parameters[name]), folds)
        frame["config/epochs"] = 200
        frame["config/seed"] = seed
        for offset, metric in enumerate(METRICS):
            frame[metric] = per_fold.reshape(-1) - 0.02 * offset if metric != "auc" else per_fold.reshape(-1)
        frame["status"] = "ok"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def paper_space() -> dict[str, dict[str, Distribution]]:
    """The bounds of the shipped ``paper`` search space (all 13 configurations of Table 2)."""
    from mmt_tune.analysis.results import read_space
    from mmt_tune.spaces import resolve_space

    return read_space(resolve_space("paper"))
