"""Search spaces: ``mmt_tune/search_spaces/*.yaml`` (shipped, used by name) or your own YAML -> validated
spec -> per-configuration search domains.

This is the one place that turns a search-space file into Optuna distributions and Ray Tune domains. A file
lists modality *configurations* (model + present modalities), the searched *parameters* with their
distributions, and *fixed* trainer options. Each configuration becomes its own optimisation problem with
the parameters that apply to it:

- ``alpha_*`` expands to one reconstruction weight per modality the configuration reconstructs
  (``alpha_FLAIR``, ``alpha_DWI`` for MMT-1M on T1WI; the present modalities for MFN-VAE);
- every other parameter or fixed option applies where the trainer accepts it (``gamma`` only for MMT-1M,
  ``kl_weight`` only for MFN-VAE, ``interaction`` only for MMT, ...), as decided by
  :meth:`mmt_tune.config.TrainConfig.from_options`, so there is a single source of truth.

Everything is checked before Ray sees it; an error names the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from mmt_tune import models as _models
from mmt_tune import space_rules
from mmt_tune._io import parse_yaml
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.modalities import MAX_MODALITIES, MIN_MODALITIES, MODALITIES

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from ray.tune.search.sample import Domain

TOP_KEYS = {"name", "description", "modalities", "configurations", "parameters", "fixed"}
DISTRIBUTION_KEYS = {"distribution", "low", "high", "values", "models"}
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
#: Folder of the shipped search spaces (package data: installed with the package).
SHIPPED_DIR = Path(__file__).resolve().parent / "search_spaces"


@dataclass(frozen=True)
class Distribution:
    """One searched parameter's distribution, from the YAML to the importance engines.

    The sampler gets it as an Optuna or Tune domain (:meth:`to_optuna`, :meth:`to_tune`); ``space.json``
    stores it (:meth:`to_json`, :meth:`from_json`); the importance engines see its values encoded on the
    scale it was sampled on (:meth:`encode`: ``log10`` for a loguniform, the index for a choice), because
    fANOVA integrates over that box with a uniform measure.
    """

    kind: str  # loguniform, uniform, int, choice
    low: float | None = None
    high: float | None = None
    values: tuple | None = None  # a choice's values
    models: tuple[str, ...] | None = None  # only these models search it (None: every model that accepts it)

    @property
    def log(self) -> bool:
        return self.kind == "loguniform"

    @property
    def categorical(self) -> bool:
        return self.kind == "choice"

    def example(self) -> Any:
        """A valid value (used to check where the parameter applies)."""
        return (
            self.values[0] if self.kind == "choice" else (int(self.low) if self.kind == "int" else self.low)
        )

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.values))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high))
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def to_tune(self) -> Domain:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        if self.kind == "int":
            return tune.randint(int(self.low), int(self.high) + 1)
        return (tune.loguniform if self.log else tune.uniform)(float(self.low), float(self.high))

    def to_json(self) -> dict:
        """What ``space.json`` records (the sampler's true bounds and scale)."""
        return {"distribution": self.kind, "low": self.low, "high": self.high, "values": self.values}

    @classmethod
    def from_json(cls, spec: Mapping) -> Distribution:
        values = spec.get("values")
        return cls(
            str(spec["distribution"]),
            None if spec.get("low") is None else float(spec["low"]),
            None if spec.get("high") is None else float(spec["high"]),
            tuple(values) if values is not None else None,
        )

    # --------------------------------------------------------------- the encoding the engines see
    @property
    def encoded_bounds(self) -> tuple[float, float]:
        if self.categorical:
            return 0.0, float(len(self.values) - 1)
        if self.log:
            return math.log10(self.low), math.log10(self.high)
        return float(self.low), float(self.high)

    def encode(self, values: ArrayLike) -> np.ndarray:
        """Values on the sampled scale: ``log10`` for a loguniform, the index of the value for a choice."""
        if self.categorical:
            index = {str(c): i for i, c in enumerate(self.values)}
            return np.array([index[str(v)] for v in values], dtype=float)
        values = np.asarray(values, dtype=float)
        encoded = np.log10(values) if self.log else values
        # Values were checked against the bounds; the clip only absorbs log10 rounding at the ends.
        return np.clip(encoded, *self.encoded_bounds)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        return 10.0**encoded if self.log else encoded

    def grid(self, points: int) -> np.ndarray:
        """Encoded values at which to draw a marginal curve: every choice, or an even grid over the bounds."""
        if self.categorical:
            return np.arange(len(self.values), dtype=float)
        return np.linspace(*self.encoded_bounds, points)


@dataclass(frozen=True)
class Configuration:
    """One optimisation problem: a model on a set of present modalities, its parameters and fixed options."""

    model: str
    present: tuple[str, ...]
    parameters: dict[str, Distribution] = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``model/present`` (e.g. ``mmt1m/T1WI``), the name of this configuration in results and W&B groups."""
        return f"{self.model}/{'+'.join(self.present)}"

    def optuna_distributions(self) -> dict:
        return {name: d.to_optuna() for name, d in self.parameters.items()}

    def tune_space(self) -> dict:
        return {name: d.to_tune() for name, d in self.parameters.items()}


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    source: str
    configurations: tuple[Configuration, ...]
    modalities: tuple[str, ...] = MODALITIES  # the study's: missing = these minus a configuration's present
    notes: tuple[str, ...] = ()  # what loading decided for the user (keys ignored, rules capped)

    def configuration(self, key: str) -> Configuration:
        """The configuration ``model/present``, its present sequences in any order (``mmt2m/FLAIR+T1WI``)."""
        model, _, present = key.partition("/")
        for configuration in self.configurations:
            if configuration.model == model and set(configuration.present) == set(present.split("+")):
                return configuration
        raise KeyError(key)


def shipped_spaces() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def resolve_space(name_or_path: str | Path) -> Path:
    """A search-space file: an existing path, or the name of a shipped space (``mmt1m``, ``paper``, ...)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InputError(f"{path}: search-space file not found")
        return path
    # A shipped name wins over a folder of the same name (the demo writes to ./demo).
    shipped = SHIPPED_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise InputError(
        f"unknown search space {name_or_path!r} (shipped: {', '.join(shipped_spaces())}; or give a .yaml path)"
    )


def load_space(
    name_or_path: str | Path, modalities: Sequence[str] | None = None, subsets: int | None = None
) -> SearchSpace:
    """Load and validate a search space; raise :class:`InputError` naming the file and key on any problem.

    The study's modalities (what a configuration's missing ones are taken from, what ``alpha_*`` and the
    rules ``present: every`` expand to) are ``modalities`` (a study passes its feature table's), else the
    file's ``modalities:`` list, else the paper's three when the explicit configurations use only those (or
    there are only rules), else every modality they name. ``subsets`` caps the rules
    (:mod:`mmt_tune.space_rules`). Parameters and fixed options that apply to none of the configurations
    are left out and listed in the space's ``notes``.
    """
    path = resolve_space(name_or_path)
    source = str(path)
    raw = parse_yaml(path.read_text(), source)
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping with keys {', '.join(sorted(TOP_KEYS))}")
    _unknown(raw, TOP_KEYS, source, "")
    for required in ("configurations", "parameters"):
        if required not in raw:
            raise InputError(f"{source}: missing required key {required!r}")
    parameters = _parameters(raw["parameters"], source)
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise InputError(f"{source}: fixed: expected a mapping of option: value")
    declared = raw.get("modalities")
    if declared is not None and (
        not isinstance(declared, list) or not all(isinstance(m, str) and m for m in declared)
    ):
        raise InputError(f"{source}: modalities: expected a list of modality names")
    study = tuple(modalities or declared or space_rules.study_sequences(raw["configurations"]))
    if not MIN_MODALITIES <= len(study) <= MAX_MODALITIES:
        raise InputError(
            f"{source}: a study has {MIN_MODALITIES} to {MAX_MODALITIES} modalities, got {len(study)} "
            f"({', '.join(study)})"
        )
    configurations, notes = space_rules.expand(
        raw["configurations"], source, study, lambda m, p: _applies(m, p, {}, study), subsets
    )
    built, used = [], set()
    for model, present, where in configurations:
        configuration = _configuration(model, present, parameters, fixed, study, f"{source}: {where}")
        used |= configuration.pop("used")
        built.append(Configuration(**configuration))
    ignored = _ignored(parameters, fixed, used, source)
    if ignored:
        verb = "apply" if len(ignored) > 1 else "applies"
        notes.append(f"{', '.join(ignored)}: {verb} to none of the configurations: ignored")
    return SearchSpace(
        str(raw.get("name", path.stem)),
        str(raw.get("description", "")),
        source,
        tuple(built),
        study,
        tuple(f"{source}: {note}" for note in notes),
    )


def _configuration(model, present, parameters, fixed, study, where) -> dict:
    """One configuration's parameters and fixed options (the ones that apply to it), checked together."""
    try:
        config = TrainConfig.from_options(model, present, {}, modalities=study)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    chosen: dict[str, Distribution] = {}
    used = set()
    for name, distribution in parameters.items():
        if distribution.models is not None and model not in distribution.models:
            continue
        names = [f"alpha_{m}" for m in config.reconstructed] if name == "alpha_*" else [name]
        for concrete in names:
            if _applies(model, present, {concrete: distribution.example()}, study):
                chosen[concrete] = distribution
                used.add(name)
    kept_fixed = {}
    for key, value in fixed.items():
        if _applies(model, present, {key: value}, study):
            kept_fixed[key] = value
            used.add(f"fixed.{key}")
    try:  # the whole combination must be acceptable to the trainer
        TrainConfig.from_options(
            model, present, {**kept_fixed, **{k: d.example() for k, d in chosen.items()}}, modalities=study
        )
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    return {
        "model": model,
        "present": tuple(present),
        "parameters": chosen,
        "fixed": kept_fixed,
        "used": used,
    }


def _ignored(parameters: Mapping, fixed: Mapping, used: set, source: str) -> list[str]:
    """Keys that apply to none of the configurations; one no model knows at all is an error (a typo)."""
    from mmt_tune.config import accepted_options

    known = set().union(*(accepted_options(m) for m in _models.names()))
    ignored = []
    for prefix, keys in (("parameters", parameters), ("fixed", fixed)):
        for key in keys:
            if (f"fixed.{key}" if prefix == "fixed" else key) in used:
                continue
            if key not in known and not key.startswith("alpha_"):
                raise InputError(f"{source}: {prefix}.{key}: not an option of any model")
            ignored.append(f"{prefix}.{key}")
    return ignored


def declares_modalities(name_or_path: str | Path) -> bool:
    """Whether a space file lists its ``modalities:`` (then they are the study's, whatever the table)."""
    raw = parse_yaml(resolve_space(name_or_path).read_text(), str(name_or_path))
    return isinstance(raw, dict) and raw.get("modalities") is not None


def named_sequences(name_or_path: str | Path) -> tuple[str, ...]:
    """The sequences a space file's explicit configurations name (none for a space of rules only)."""
    raw = parse_yaml(resolve_space(name_or_path).read_text(), str(name_or_path))
    return space_rules.named(raw.get("configurations")) if isinstance(raw, dict) else ()


def _applies(model: str, present: Sequence[str], options: Mapping, modalities: Sequence[str]) -> bool:
    try:
        TrainConfig.from_options(model, present, options, modalities=modalities)
    except InputError:
        return False
    return True


def _unknown(mapping: Mapping, known: set[str], source: str, prefix: str) -> None:
    for key in mapping:
        if key not in known:
            raise InputError(f"{source}: {prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def _parameters(raw, source: str) -> dict[str, Distribution]:
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{source}: parameters: expected a mapping of name: {{distribution, ...}}")
    result = {}
    for name, spec in raw.items():
        where = f"{source}: parameters.{name}"
        if not isinstance(spec, dict):
            raise InputError(f"{where}: expected a mapping with 'distribution' and its bounds or values")
        _unknown(spec, DISTRIBUTION_KEYS, source, f"parameters.{name}.")
        models = spec.get("models")
        if models is not None:
            if isinstance(models, str):
                models = [models]
            known = _models.names()
            if not isinstance(models, list) or not models or any(m not in known for m in models):
                raise InputError(
                    f"{where}.models: expected a list of models from {', '.join(known)}, got {models!r}"
                )
            models = tuple(models)
        kind = spec.get("distribution")
        if kind not in DISTRIBUTIONS:
            raise InputError(f"{where}.distribution: {kind!r} is not one of {', '.join(DISTRIBUTIONS)}")
        if kind == "choice":
            values = spec.get("values")
            if not isinstance(values, list) or not values or "low" in spec or "high" in spec:
                raise InputError(f"{where}: a choice needs a non-empty 'values' list and no low/high")
            result[name] = Distribution(kind, values=tuple(values), models=models)
            continue
        low, high = spec.get("low"), spec.get("high")
        for bound, value in (("low", low), ("high", high)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InputError(f"{where}.{bound}: expected a finite number, got {value!r}")
        if "values" in spec:
            raise InputError(f"{where}.values: only a choice has values")
        if not low < high:
            raise InputError(f"{where}: low ({low}) must be smaller than high ({high})")
        if kind == "loguniform" and low <= 0:
            raise InputError(f"{where}.low: a loguniform distribution needs low > 0, got {low}")
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise InputError(f"{where}: an int distribution needs integer bounds, got {low}..{high}")
        result[name] = Distribution(kind, float(low), float(high), models=models)
    return result
