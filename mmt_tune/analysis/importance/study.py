"""The analysis: every configuration's trials -> encoded inputs -> an engine per forest seed -> mean ± std."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmt_tune.analysis.importance._base import (
    FEW_TRIALS,
    BaseImportanceEvaluator,
    ForestSettings,
    SeedResult,
    ZeroVariance,
)
from mmt_tune.analysis.importance.types import ConfigurationImportance, ImportanceOptions, ImportanceResult
from mmt_tune.analysis.results import Study, configuration_key, configurations_in
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.records import CONFIG_PREFIX, per_trial
from mmt_tune.spaces import Distribution

#: The engines: ``--engine`` name -> evaluator class (:mod:`.fanova`, :mod:`.optuna_fanova`).
ENGINES = ("fanova", "optuna")


# ---------------------------------------------------------------------------------------------- analysis
@dataclass
class _Job:
    index: int
    X: np.ndarray
    y: np.ndarray
    params: dict[str, Distribution]
    forest: ForestSettings


def importance(
    study: Study, options: ImportanceOptions | None = None, progress: bool = True
) -> ImportanceResult:
    """Importance of every searched hyperparameter, per configuration of ``study``. A nested study's trials
    come from K inner searches on different outer training sets: each is analysed alone and the result is
    their mean ± std over the outer folds (:func:`_per_outer_fold`)."""
    options = options or ImportanceOptions()
    if options.engine == "fanova" and not fanova_installed():
        result = importance(study, dataclasses.replace(options, engine="optuna"), progress)
        result.notes.insert(0, FANOVA_MISSING)
        return result
    if "outer_fold" in study.trials.columns and study.trials["outer_fold"].nunique() > 1:
        return _per_outer_fold(study, options, progress)
    return _importance(study, options, progress)


#: The note of an analysis that fell back to Optuna's fANOVA because the ``fanova`` package is missing.
FANOVA_MISSING = (
    "the fanova package is not installed (an optional part: scripts/bootstrap.sh builds it), so importance "
    "is Optuna's implementation of the same functional ANOVA (engine optuna): main effects only"
)


def fanova_installed() -> bool:
    import importlib

    try:
        importlib.import_module("fanova")
    except ImportError:
        return False
    return True


def _per_outer_fold(study: Study, options: ImportanceOptions, progress: bool) -> ImportanceResult:
    """Importance within each outer fold's own trials, then per parameter the mean and std (ddof=0) of the
    main-effect fractions over the outer folds where it could be computed."""

    folds = sorted(study.trials["outer_fold"].dropna().unique())
    results = [
        _importance(
            dataclasses.replace(study, trials=study.trials[study.trials["outer_fold"] == k]),
            options,
            progress,
        )
        for k in folds
    ]
    combined = []
    for first in results[0].configurations:
        same = [c for r in results for c in r.configurations if c.key == first.key]
        analysed = [c for c in same if c.main]
        merged = dataclasses.replace(first, n_trials=sum(c.n_trials for c in same), marginals={}, pairs={})
        names = dict.fromkeys(n for c in analysed for n in c.main)
        merged.main = {
            n: (float(np.mean(v)), float(np.std(v)))
            for n in names
            if (v := [c.main[n][0] for c in analysed if n in c.main])
        }
        merged.notes = [*dict.fromkeys(note for c in same for note in c.notes)]
        if analysed and len(analysed) < len(folds):
            merged.notes.append(
                f"importance computed in {len(analysed)} of {len(folds)} outer folds (too few trials in the others)"
            )
        combined.append(merged)
    notes = [*dict.fromkeys(n for r in results for n in r.notes)]
    notes.insert(
        0,
        f"nested study: importance computed within each of the {len(folds)} outer folds on its own trials "
        "(different outer training sets are not pooled), shown as mean ± std over the outer folds; no "
        "interactions or main-effect curves",
    )
    return ImportanceResult(combined, notes, options, study.modalities, spread=f"{len(folds)} outer folds")


def _importance(study: Study, options: ImportanceOptions, progress: bool) -> ImportanceResult:
    """:func:`importance` of one search's trials."""
    _check_options(options)
    notes = _study_notes(study)
    configurations, jobs = [], []
    for model, present in configurations_in(study.trials, study.space):
        result, job = _prepare(study, model, present, options)
        job_index = len(configurations)
        configurations.append(result)
        if job is not None:
            job.index = job_index
            jobs.append(job)
    for job, seeds in _run(jobs, options, progress):
        _collect(configurations[job.index], job, seeds, options)
    few = [c.key for c in configurations if c.main and c.n_trials < FEW_TRIALS]
    if few:
        notes.append(
            f"warning: {len(few)} configuration(s) have fewer than {FEW_TRIALS} complete trials "
            f"({', '.join(few[:3])}{', ...' if len(few) > 3 else ''}): their importance values are noisy "
            "estimates; read them as a ranking at most"
        )
    if not study.space:
        notes.append(
            "no space.json: bounds and log scales were inferred from the sampled values (give --space with "
            "the study's search space for the sampler's true bounds)"
        )
    return ImportanceResult(
        configurations, notes, options, study.modalities, spread=f"{options.seeds} forest seeds"
    )


def _check_options(options: ImportanceOptions) -> None:
    if options.engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)} (got {options.engine!r})")
    if options.objective not in METRICS:
        raise InputError(f"--objective must be one of {', '.join(METRICS)} (got {options.objective!r})")
    if options.seeds < 1 or options.n_trees < 1 or options.min_trials < 2:
        raise InputError("--seeds and --trees must be >= 1 and --min-trials >= 2")


def _study_notes(study: Study) -> list[str]:
    """Options that were the same for every trial of the study (fixed, not searched), stated once."""
    fixed = []
    for column in study.trials.columns:
        if column.startswith(CONFIG_PREFIX):
            values = study.trials[column].dropna()
            if values.nunique() == 1 and not _searched_anywhere(study, column.removeprefix(CONFIG_PREFIX)):
                fixed.append(f"{column.removeprefix(CONFIG_PREFIX)}={values.iloc[0]}")
    return [f"fixed for every trial (not analysed): {', '.join(fixed)}"] if fixed else []


def _searched_anywhere(study: Study, name: str) -> bool:
    return any(name in parameters for parameters in study.space.values())


def _prepare(
    study: Study, model: str, present: str, options: ImportanceOptions
) -> tuple[ConfigurationImportance, _Job | None]:
    """The encoded inputs of one configuration, or the notes that say why it cannot be analysed."""
    result = ConfigurationImportance(model, present)
    key = configuration_key(model, present)
    rows = study.trials[(study.trials["model"] == model) & (study.trials["present"] == present)]
    space = study.space.get(key)
    if space is not None:
        names = list(space)
    else:
        names = [
            c.removeprefix(CONFIG_PREFIX)
            for c in rows.columns
            if c.startswith(CONFIG_PREFIX)
            and rows[c].notna().any()
            and study.trials[c].dropna().nunique() > 1
        ]
    for name in names:
        if f"{CONFIG_PREFIX}{name}" not in rows.columns:
            raise InputError(
                f"{study.source}: {key}: the search space has {name!r} but the trials table has no "
                f"{CONFIG_PREFIX}{name} column"
            )
    n_all = rows.groupby(["trial_id"]).ngroups
    trials = per_trial(rows, options.objective)
    failed = n_all - len(trials)
    if failed:
        result.notes.append(
            f"{failed} of {n_all} trials failed, stopped early or have an undefined {options.objective} "
            "on some fold; left out"
        )
    columns = [f"{CONFIG_PREFIX}{n}" for n in names]
    lacking = trials[columns].isna().any(axis=1)
    if lacking.any():
        result.notes.append(f"{int(lacking.sum())} trials lack a value of a searched parameter; left out")
        trials = trials[~lacking]
    result.n_trials = len(trials)
    if not len(trials):
        result.notes.append("no complete trials")
        result.cells = dict.fromkeys(names, "no trials")
        return result, None
    if len(trials) < options.min_trials:
        result.notes.append(f"only {len(trials)} complete trials (need --min-trials {options.min_trials})")
        result.cells = dict.fromkeys(names, f"n={len(trials)}<{options.min_trials}")
        return result, None
    params: dict[str, Distribution] = {}
    for name in names:
        values = trials[f"{CONFIG_PREFIX}{name}"]
        if values.nunique() <= 1:
            result.cells[name] = "constant"
            result.notes.append(f"{name} is constant ({values.iloc[0]}) across the trials: no importance")
            continue
        params[name] = _distribution(
            name, values, space.get(name) if space else None, f"{study.source}: {key}"
        )
    if not params:
        return result, None
    result.params = params
    X = np.column_stack([d.encode(trials[f"{CONFIG_PREFIX}{name}"]) for name, d in params.items()])
    y = trials[f"{options.objective}_mean"].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        result.notes.append(
            f"{options.objective} is the same ({y[0]:.3f}) for every trial: nothing to decompose"
        )
        result.cells.update(dict.fromkeys(params, "flat objective"))
        return result, None
    return result, _Job(-1, X, y, params, _forest(options, len(trials)))


def _distribution(name: str, values: pd.Series, bounds: Distribution | None, where: str) -> Distribution:
    """The distribution the sampler used (``bounds``, from space.json), checked against the sampled
    values; without one, inferred from them (range, and a guess at the scale)."""
    if bounds is not None and bounds.categorical:
        return Distribution("choice", values=tuple(bounds.values))
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return Distribution("choice", values=tuple(sorted(values.astype(str).unique())))
    low, high = float(values.min()), float(values.max())
    if bounds is None:
        log = _looks_log_sampled(values.to_numpy(dtype=float))
        return Distribution("loguniform" if log else "uniform", low, high)
    if low < bounds.low or high > bounds.high:
        raise InputError(
            f"{where}: {name} has values {low:g}..{high:g} outside the search space's bounds "
            f"{bounds.low:g}..{bounds.high:g} (space.json does not belong to this trials table?)"
        )
    return Distribution("loguniform" if bounds.log else "uniform", bounds.low, bounds.high)


def _looks_log_sampled(values: np.ndarray) -> bool:
    """Without a search space: was this positive parameter sampled log-uniformly rather than uniformly?

    Whichever of the two hypotheses fits the sample better by the Kolmogorov-Smirnov distance (against a
    uniform law on the observed range, of the values or of their logarithms) wins; ties and small samples
    (< 10 values) stay linear. A guess, so the table says bounds were inferred.
    """
    from scipy import stats

    if len(values) < 10 or values.min() <= 0:
        return False

    def distance(x: np.ndarray) -> float:
        return stats.kstest(x, stats.uniform(x.min(), x.max() - x.min()).cdf).statistic

    return distance(np.log(values)) < distance(values)


def _forest(options: ImportanceOptions, n_trials: int) -> ForestSettings:
    """Leaves of at least max(1, trials // 200) trials: a tree keeps ~200 leaves however many trials there are.

    fANOVA's marginals cost grows with the product of the split counts of the parameters involved, and one-
    trial leaves of a noisy objective (a CV AUC) fit noise; our validation test shows the estimates are as
    accurate at this leaf size (tests/analysis/test_importance.py::test_main_effects_match_the_analytic_decomposition).
    """
    leaf = options.min_samples_leaf if options.min_samples_leaf is not None else max(1, n_trials // 200)
    return ForestSettings(n_trees=options.n_trees, min_samples_leaf=leaf, min_samples_split=max(2, 2 * leaf))


def _run(jobs: list[_Job], options: ImportanceOptions, progress: bool):
    from tqdm.auto import tqdm

    workers = min(len(jobs), options.jobs or os.cpu_count() or 1)
    bar = tqdm(
        total=len(jobs),
        desc=f"importance ({options.engine})",
        unit=" configurations",
        disable=not progress or not jobs,  # no bar for nothing to do
    )
    try:
        if workers <= 1:
            for job in jobs:
                yield job, _analyse(job, options)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(job, pool.submit(_analyse, job, options)) for job in jobs]
            for job, future in futures:
                yield job, future.result()
                bar.update()
    finally:
        bar.close()


def evaluator(
    options: ImportanceOptions, forest: ForestSettings, pair_params: list[str] | None = None
) -> BaseImportanceEvaluator:
    """The engine ``options.engine`` names, with every setting explicit."""
    if options.engine == "optuna":
        from mmt_tune.analysis.importance.optuna_fanova import OptunaImportanceEvaluator

        return OptunaImportanceEvaluator(forest)
    from mmt_tune.analysis.importance.fanova import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(forest, options.pair_candidates, options.grid_points, pair_params)


def _analyse(job: _Job, options: ImportanceOptions) -> list[SeedResult]:
    """All seeds of one configuration (runs in a worker process)."""
    results: list[SeedResult] = []
    try:
        for seed in range(options.seeds):
            # The pairs of the first seed's strongest parameters, in every later seed.
            pair_params = sorted({p for pair in results[0].pairs for p in pair}) if results else None
            engine = evaluator(options, job.forest, pair_params)
            results.append(engine.evaluate(job.X, job.y, job.params, seed))
    except ZeroVariance:
        return []
    return results


def _collect(
    result: ConfigurationImportance, job: _Job, seeds: list[SeedResult], options: ImportanceOptions
) -> None:
    if not seeds:
        result.notes.append("the forest found no variance in the objective: nothing to decompose")
        result.cells.update(dict.fromkeys(job.params, "flat objective"))
        return
    for name in job.params:
        values = np.array([s.main[name] for s in seeds])
        result.main[name] = (float(values.mean()), float(values.std()))
    for pair in seeds[0].pairs:
        values = np.array([s.pairs.get(pair, np.nan) for s in seeds])
        result.pairs[pair] = (float(np.nanmean(values)), float(np.nanstd(values)))
    for name, distribution in job.params.items():
        if all(name in s.marginals for s in seeds):
            curves = np.stack([s.marginals[name] for s in seeds])
            x = distribution.grid(options.grid_points)
            result.marginals[name] = (
                x if distribution.categorical else distribution.decode(x),
                curves.mean(0),
                curves.std(0),
            )
