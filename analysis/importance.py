"""``python -m analysis.importance``: hyperparameter importance per configuration (the paper's Table 3).

For every model x modality configuration, a functional ANOVA (Hutter et al. 2014, the paper's reference 22)
of the trials' objective (default: mean CV AUC) over the searched hyperparameters: the fraction of the
objective's variance each one explains on its own (main effect), over several random-forest seeds (mean ±
std), the strongest pairwise interactions, and main-effect (marginal) curves. The engine is the ``fanova``
package by default, or Optuna's ``FanovaImportanceEvaluator`` (``--engine optuna``). Bounds and log scales
come from the study's ``space.json`` (or ``--space``), never from an engine's defaults; see
:mod:`analysis._engines` for how they are passed.

Anything that makes a configuration unanalysable (no trials, too few complete ones, a parameter constant
across trials, failed trials) becomes a cell note and a line under the table, not a crash.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._engines import ENGINES, ForestSettings, ParameterSpec, SeedResult, ZeroVariance
from analysis.results import (
    CONFIG_PREFIX,
    Study,
    configuration_key,
    configurations_in,
    load_study,
    model_label,
    per_trial,
)
from analysis.tables import DASH, TICK, mean_std, write_csv, write_table
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.modalities import MODALITIES


@dataclass(frozen=True)
class ImportanceOptions:
    objective: str = "auc"  # the metric whose fold mean is decomposed
    engine: str = "fanova"  # or "optuna"
    seeds: int = 3  # random-forest seeds; importance is reported as mean ± std over them
    n_trees: int = 16  # trees per forest (fanova's own default, stated)
    min_samples_leaf: int | None = None  # None: max(1, trials // 200), see _forest()
    min_trials: int = 10  # fewer complete trials than this: noted, not analysed
    pair_candidates: int = 3  # interactions among this many parameters with the largest main effects
    grid_points: int = 40  # marginal-curve resolution
    jobs: int | None = None  # worker processes over configurations (default: CPU count)


@dataclass
class ConfigurationImportance:
    """The importance analysis of one model x modality configuration."""

    model: str
    present: str
    n_trials: int = 0  # complete trials analysed
    specs: list[ParameterSpec] = field(default_factory=list)
    main: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (mean, std) over seeds
    pairs: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    marginals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # x, mean, std
    cells: dict[str, str] = field(default_factory=dict)  # name -> why it has no importance value
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return configuration_key(self.model, self.present)


@dataclass
class ImportanceResult:
    configurations: list[ConfigurationImportance]
    notes: list[str]
    options: ImportanceOptions

    def frame(self) -> pd.DataFrame:
        """``importance.csv``: one row per model x configuration x hyperparameter."""
        rows = []
        for c in self.configurations:
            specs = {s.name: s for s in c.specs}
            for name in _ordered({*c.main, *c.cells}):
                spec = specs.get(name)
                mean, std = c.main.get(name, (np.nan, np.nan))
                rows.append(
                    {
                        "model": c.model,
                        "present": c.present,
                        "hyperparameter": name,
                        "engine": self.options.engine,
                        "objective": self.options.objective,
                        "mean": mean,
                        "std": std,
                        "n_trials": c.n_trials,
                        "n_seeds": self.options.seeds if name in c.main else 0,
                        "low": spec.low if spec is not None else np.nan,
                        "high": spec.high if spec is not None else np.nan,
                        "log": bool(spec.log) if spec is not None else False,
                        "note": c.cells.get(name, ""),
                    }
                )
        columns = ["model", "present", "hyperparameter", "engine", "objective", "mean", "std", "n_trials"]
        return pd.DataFrame(rows, columns=[*columns, "n_seeds", "low", "high", "log", "note"])

    def interactions(self) -> pd.DataFrame:
        """``interactions.csv``: the pure pairwise interaction fractions, strongest first per configuration."""
        rows = [
            {"model": c.model, "present": c.present, "first": a, "second": b, "mean": m, "std": s}
            for c in self.configurations
            for (a, b), (m, s) in sorted(c.pairs.items(), key=lambda kv: -kv[1][0])
        ]
        return pd.DataFrame(rows, columns=["model", "present", "first", "second", "mean", "std"])

    def table3(self) -> pd.DataFrame:
        """The paper's Table 3 layout: rows model x present modalities (ticks), columns the classification
        weight, the reconstruction weight of each modality, then lr and any other searched parameter."""
        names = _ordered({n for c in self.configurations for n in (*c.main, *c.cells)})
        rows, sums = [], {n: [] for n in names}
        for c in self.configurations:
            row = {"Model": model_label(c.model)}
            row.update({m: TICK if m in c.present.split("+") else "" for m in MODALITIES})
            for name in names:
                if name in c.main:
                    row[_column(name)] = mean_std(*c.main[name])
                    sums[name].append(c.main[name][0])
                else:
                    row[_column(name)] = c.cells.get(name, DASH)
            row["Top interaction"] = _top_pair(c)
            row["Trials"] = str(c.n_trials)
            rows.append(row)
        average = {"Model": "Average", **dict.fromkeys(MODALITIES, "")}
        average.update({_column(n): (f"{np.mean(v):.3f}" if v else DASH) for n, v in sums.items()})
        average["Top interaction"] = ""
        average["Trials"] = ""
        return pd.DataFrame([*rows, average])

    def all_notes(self) -> list[str]:
        return [*self.notes, *(f"{c.key}: {note}" for c in self.configurations for note in c.notes)]


# ---------------------------------------------------------------------------------------------- columns
def _top_pair(c: ConfigurationImportance) -> str:
    if not c.pairs:
        return DASH
    (a, b), (mean, _) = max(c.pairs.items(), key=lambda kv: kv[1][0])
    return f"{a} × {b}: {mean:.3f}"


def _ordered(names) -> list[str]:
    """Table 3's column order: beta, alpha per modality, gamma, lr, then the rest alphabetically."""

    def rank(name: str) -> tuple:
        if name == "beta":
            return (0, 0, name)
        if name.startswith("alpha_"):
            modality = name.removeprefix("alpha_")
            return (1, MODALITIES.index(modality) if modality in MODALITIES else 9, name)
        fixed = {"gamma": 2, "kl_weight": 3, "lr": 4}
        return (fixed.get(name, 5), 0, name)

    return sorted(names, key=rank)


def _column(name: str) -> str:
    if name == "beta":
        return "Classification β"
    if name.startswith("alpha_"):
        return f"Reconstruction {name.removeprefix('alpha_')} α"
    return {"gamma": "Auxiliary γ", "kl_weight": "KL weight", "lr": "lr"}.get(name, name)


# ---------------------------------------------------------------------------------------------- analysis
@dataclass
class _Job:
    index: int
    X: np.ndarray
    y: np.ndarray
    specs: list[ParameterSpec]
    forest: ForestSettings


def importance(
    study: Study, options: ImportanceOptions | None = None, progress: bool = True
) -> ImportanceResult:
    """Importance of every searched hyperparameter, per configuration of ``study``."""
    options = options or ImportanceOptions()
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
    if not study.space:
        notes.append(
            "no space.json: bounds and log scales were inferred from the sampled values (give --space with "
            "the study's search space for the sampler's true bounds)"
        )
    return ImportanceResult(configurations, notes, options)


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
    specs = []
    for name in names:
        values = trials[f"{CONFIG_PREFIX}{name}"]
        if values.nunique() <= 1:
            result.cells[name] = "constant"
            result.notes.append(f"{name} is constant ({values.iloc[0]}) across the trials: no importance")
            continue
        specs.append(_spec(name, values, space.get(name) if space else None, f"{study.source}: {key}"))
    if not specs:
        return result, None
    result.specs = specs
    X = np.column_stack([spec.encode(trials[f"{CONFIG_PREFIX}{spec.name}"]) for spec in specs])
    y = trials[f"{options.objective}_mean"].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        result.notes.append(
            f"{options.objective} is the same ({y[0]:.3f}) for every trial: nothing to decompose"
        )
        result.cells.update(dict.fromkeys([s.name for s in specs], "flat objective"))
        return result, None
    return result, _Job(-1, X, y, specs, _forest(options, len(trials)))


def _spec(name: str, values: pd.Series, bounds, where: str) -> ParameterSpec:
    if bounds is not None and bounds.distribution == "choice":
        return ParameterSpec(name, choices=tuple(bounds.values))
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return ParameterSpec(name, choices=tuple(sorted(values.astype(str).unique())))
    low, high = float(values.min()), float(values.max())
    if bounds is None:
        return ParameterSpec(name, low, high, log=_looks_log_sampled(values.to_numpy(dtype=float)))
    if low < bounds.low or high > bounds.high:
        raise InputError(
            f"{where}: {name} has values {low:g}..{high:g} outside the search space's bounds "
            f"{bounds.low:g}..{bounds.high:g} (space.json does not belong to this trials table?)"
        )
    return ParameterSpec(name, bounds.low, bounds.high, log=bounds.log)


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
    accurate at this leaf size (tests/analysis/test_importance.py).
    """
    leaf = options.min_samples_leaf if options.min_samples_leaf is not None else max(1, n_trials // 200)
    return ForestSettings(n_trees=options.n_trees, min_samples_leaf=leaf, min_samples_split=max(2, 2 * leaf))


def _run(jobs: list[_Job], options: ImportanceOptions, progress: bool):
    from tqdm.auto import tqdm

    workers = min(len(jobs), options.jobs or os.cpu_count() or 1)
    bar = tqdm(
        total=len(jobs), desc=f"importance ({options.engine})", unit="configuration", disable=not progress
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


def _analyse(job: _Job, options: ImportanceOptions) -> list[SeedResult]:
    """All seeds of one configuration (runs in a worker process)."""
    from analysis._engines import fanova_importance, optuna_importance

    results: list[SeedResult] = []
    try:
        for seed in range(options.seeds):
            if options.engine == "optuna":
                results.append(optuna_importance(job.X, job.y, job.specs, seed, job.forest))
                continue
            pair_params = None
            if results:  # the pairs of the first seed's strongest parameters, in every seed
                pair_params = sorted({p for pair in results[0].pairs for p in pair})
            results.append(
                fanova_importance(
                    job.X,
                    job.y,
                    job.specs,
                    seed,
                    job.forest,
                    pair_candidates=options.pair_candidates,
                    grid_points=options.grid_points,
                    pair_params=pair_params,
                )
            )
    except ZeroVariance:
        return []
    return results


def _collect(
    result: ConfigurationImportance, job: _Job, seeds: list[SeedResult], options: ImportanceOptions
) -> None:
    if not seeds:
        result.notes.append("the forest found no variance in the objective: nothing to decompose")
        result.cells.update(dict.fromkeys([s.name for s in job.specs], "flat objective"))
        return
    for spec in job.specs:
        values = np.array([s.main[spec.name] for s in seeds])
        result.main[spec.name] = (float(values.mean()), float(values.std()))
    for pair in seeds[0].pairs:
        values = np.array([s.pairs.get(pair, np.nan) for s in seeds])
        result.pairs[pair] = (float(np.nanmean(values)), float(np.nanstd(values)))
    for spec in job.specs:
        if all(spec.name in s.marginals for s in seeds):
            curves = np.stack([s.marginals[spec.name] for s in seeds])
            x = spec.grid(options.grid_points)
            result.marginals[spec.name] = (
                x if spec.categorical else spec.decode(x),
                curves.mean(0),
                curves.std(0),
            )


# ---------------------------------------------------------------------------------------------- outputs
def write_importance(result: ImportanceResult, out: Path, plots: bool = True) -> list[Path]:
    """importance.csv, interactions.csv, table3.{md,csv,tex} and, with ``plots``, the PNG figures."""
    out = Path(out)
    paths = [
        write_csv(result.frame(), out / "importance.csv"),
        write_csv(result.interactions(), out / "interactions.csv"),
    ]
    caption = (
        f"Hyperparameter importance (fANOVA main-effect fraction of the variance of mean CV "
        f"{result.options.objective.upper()}; mean ± std over {result.options.seeds} forest seeds; engine "
        f"{result.options.engine})"
    )
    paths += write_table(result.table3(), out, "table3", caption, notes=result.all_notes())
    if plots:
        from analysis import plots as figures

        paths.append(figures.importance_bars(result, out / "importance.png"))
        if any(c.marginals for c in result.configurations):
            paths.append(figures.marginals(result, out / "marginals.png"))
    return paths


def default_out(path: Path) -> Path:
    """``<results folder>/analysis``, or ``analysis`` beside a trials-table file."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / "analysis"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where it says something (not None, not a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results",
        type=Path,
        help="results folder of python -m mmt_tune.run, or a trials table (.parquet/.csv)",
    )
    parser.add_argument(
        "--space",
        default=None,
        help="search space (a study's space.json or search-space YAML); "
        "default: space.json in the results folder",
    )
    parser.add_argument(
        "--objective", default="auc", choices=METRICS, help="metric whose fold mean is analysed"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <results>/analysis)")
    parser.add_argument("--study", default=None, help="the study to analyse, when the table holds several")
    parser.add_argument("--no-plots", action="store_true", help="tables only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.importance",
        description="Hyperparameter importance (fANOVA) per model and modality configuration: the paper's "
        "Table 3 as Markdown, CSV and LaTeX, with bar and main-effect plots.",
        formatter_class=HelpFormatter,
    )
    add_common_arguments(parser)
    defaults = ImportanceOptions()
    parser.add_argument(
        "--engine", default=defaults.engine, choices=ENGINES, help="fanova package or Optuna's evaluator"
    )
    parser.add_argument("--seeds", type=int, default=defaults.seeds, help="random-forest seeds (mean ± std)")
    parser.add_argument("--trees", type=int, default=defaults.n_trees, help="trees per forest")
    parser.add_argument(
        "--min-samples-leaf", type=int, default=None, help="fanova leaf size (default: max(1, trials // 200))"
    )
    parser.add_argument(
        "--min-trials",
        type=int,
        default=defaults.min_trials,
        help="configurations with fewer complete trials are noted, not analysed",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=defaults.pair_candidates,
        help="interactions among this many strongest parameters (fanova engine)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    return parser


def options_from(args: argparse.Namespace) -> ImportanceOptions:
    return replace(
        ImportanceOptions(),
        objective=args.objective,
        engine=args.engine,
        seeds=args.seeds,
        n_trees=args.trees,
        min_samples_leaf=args.min_samples_leaf,
        min_trials=args.min_trials,
        pair_candidates=args.pairs,
        jobs=args.jobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        study = load_study(args.results, args.space, args.study)
        result = importance(study, options_from(args))
        out = args.out or default_out(args.results)
        write_importance(result, out, plots=not args.no_plots)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from analysis.tables import to_markdown

    print(to_markdown(result.table3(), result.all_notes()))
    print(f"wrote importance.csv, interactions.csv, table3.md/.csv/.tex and figures -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
