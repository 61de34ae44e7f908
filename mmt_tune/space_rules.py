"""A search space's ``configurations:`` list: explicit sets of present sequences, and rules over the study's.

An entry is either explicit, ``{model: mmt1m, present: [T1WI]}``, or a rule over whatever sequences the
study has, ``present: every``:

- ``{model: mfnvae, present: every}``: the model on every set of sequences it accepts (every non-empty
  subset for MFN-VAE and the baselines; MMT needs at least one sequence missing);
- ``missing: [1, 2]`` keeps the sets that miss exactly that many of the study's sequences;
- ``model: [mmt2m, mmt1m, mmt]`` gives each set to the first model that accepts it (MMT-2M where two
  sequences are present, MMT-1M where one is, the generic MMT elsewhere), so one rule reads as the paper's
  six MMT configurations on three sequences and as MMT on every one- or two-missing set on any other number.

Rules expand in the study's sequence order: sets with fewer sequences first, each in the order
:func:`itertools.combinations` gives, entries in the file's order; an explicit entry wins over a rule's
copy of it. The number of sets grows as 2^n, so without ``missing:`` a rule keeps at most
:func:`default_subsets` sequences per set plus the set of all of them (``--subsets`` chooses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from mmt_tune.errors import InputError
from mmt_tune.modalities import MODALITIES

CONFIGURATION_KEYS = {"model", "present", "missing"}
#: The word that makes an entry a rule over the study's sequences.
EVERY = "every"
#: Up to this many sequences, a rule without ``missing:`` expands to every subset by default.
ALL_SUBSETS_UP_TO = 4


def default_subsets(n: int) -> int | None:
    """The largest set a rule without ``missing:`` expands to (besides all ``n``): every subset (None) on
    up to :data:`ALL_SUBSETS_UP_TO` sequences, else sets of one or two."""
    return None if n <= ALL_SUBSETS_UP_TO else 2


def parse_subsets(value: str) -> int | None:
    """``--subsets``: ``all`` or a positive number of sequences."""
    if value == "all":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise InputError(f"--subsets: expected 'all' or a number of sequences >= 1, got {value!r}")
    return size


def named(raw: Any) -> tuple[str, ...]:
    """The sequences a space's explicit entries name, in the order first met (rules name none)."""
    names: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        present = item.get("present") if isinstance(item, dict) else None
        present = [present] if isinstance(present, str) and present != EVERY else present
        names += [
            m for m in (present if isinstance(present, list) else []) if isinstance(m, str) and m not in names
        ]
    return tuple(names)


def study_sequences(raw: Any) -> tuple[str, ...]:
    """A space's sequences when it declares none and no table is given: the paper's three when its
    explicit entries name only those (or it has only rules), else every name they use."""
    names = named(raw)
    return MODALITIES if set(names) <= set(MODALITIES) else names


def expand(
    raw: Any,
    source: str,
    modalities: Sequence[str],
    accepts: Callable[[str, tuple[str, ...]], bool],
    subsets: int | None = None,
) -> tuple[list[tuple[str, tuple[str, ...], str]], list[str]]:
    """``(model, present, where)`` of every configuration (present in the study's order; ``where`` names
    the entry it came from), and notes.

    ``accepts(model, present)`` says whether a model takes a set (the trainer's own check); ``subsets`` caps
    what a rule without ``missing:`` expands to (None: :func:`default_subsets`; 0 is never passed)."""
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{source}: configurations: expected a non-empty list of {{model, present}}")
    cap = default_subsets(len(modalities)) if subsets is None else subsets
    explicit: dict[tuple, int] = {}
    entries: list[tuple[int, Any]] = []
    for index, item in enumerate(raw):
        entries.append((index, _entry(item, index, source, modalities)))
        if isinstance(entries[-1][1], Explicit):
            key = entries[-1][1].key
            if key in explicit:
                raise InputError(
                    f"{source}: configurations[{index}]: duplicate of configurations[{explicit[key]}]"
                )
            explicit[key] = index
    result: list[tuple[str, tuple[str, ...]]] = []
    wheres: list[str] = []
    notes: list[str] = []
    for index, entry in entries:
        if isinstance(entry, Explicit):
            result.append(entry.key)
            wheres.append(f"configurations[{index}]")
            continue
        models, missing = entry.models, entry.missing
        found = [
            key
            for key in _rule_sets(models, missing, modalities, accepts, cap)
            if key not in explicit and key not in result
        ]
        if not found:
            notes.append(
                f"configurations[{index}] ({'/'.join(models)}, present: every) gives no configuration on "
                f"{len(modalities)} sequences"
            )
        result.extend(found)
        wheres.extend(f"configurations[{index}] ({m}/{'+'.join(p)})" for m, p in found)
    if cap is not None and len(modalities) > cap + 1 and any(isinstance(e, Rule) for _, e in entries):
        notes.append(
            f"{len(modalities)} sequences: rules without missing: take sets of at most {cap} sequences and all "
            f"{len(modalities)} (--subsets all for every one of the {2 ** len(modalities) - 1} subsets)"
        )
    return [(m, p, w) for (m, p), w in zip(result, wheres, strict=True)], notes


def _rule_sets(models, missing, modalities, accepts, cap):
    n = len(modalities)
    sizes = [n - m for m in missing] if missing is not None else range(1, n + 1)
    for size in sizes:
        if size < 1 or (missing is None and cap is not None and cap < size < n):
            continue
        for present in combinations(modalities, size):
            model = next((m for m in models if accepts(m, present)), None)
            if model is not None:
                yield (model, present)


@dataclass(frozen=True)
class Explicit:
    key: tuple  # (model, present in the study's order)


@dataclass(frozen=True)
class Rule:
    models: tuple[str, ...]  # each set goes to the first that accepts it
    missing: tuple[int, ...] | None  # how many sequences a set misses (None: any)


def _entry(item, index: int, source: str, modalities: Sequence[str]) -> Explicit | Rule:
    where = f"configurations[{index}]"
    if not isinstance(item, dict):
        raise InputError(f"{source}: {where}: expected a mapping with model and present")
    for key in item:
        if key not in CONFIGURATION_KEYS:
            raise InputError(
                f"{source}: {where}.{key}: unknown key (known: {', '.join(sorted(CONFIGURATION_KEYS))})"
            )
    model, present = item.get("model"), item.get("present")
    if present == EVERY:
        models = [model] if isinstance(model, str) else model
        if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
            raise InputError(f"{source}: {where}.model: expected a model name or a list of them")
        from mmt_tune import models as registry

        for name in models:
            if name not in registry.names():
                raise InputError(
                    f"{source}: {where}.model: unknown model {name!r} (known: {', '.join(registry.names())})"
                )
        return Rule(tuple(models), _missing(item.get("missing"), source, where))
    if "missing" in item:
        raise InputError(f"{source}: {where}.missing: only a rule (present: every) takes missing:")
    if isinstance(present, str):
        present = [present]
    if not isinstance(present, list) or not present:
        raise InputError(
            f"{source}: {where}.present: expected a list of sequences ({', '.join(modalities)}) or 'every'"
        )
    for modality in present:
        if modality not in modalities:
            raise InputError(
                f"{source}: {where}.present: unknown modality {modality!r} (known: {', '.join(modalities)}; "
                "a study of other modalities lists them under `modalities:`, runs on a table that has them, "
                "or uses present: every)"
            )
    return Explicit((model, tuple(m for m in modalities if m in present)))


def _missing(value, source: str, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, int) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
    ):
        raise InputError(
            f"{source}: {where}.missing: expected a number of missing sequences or a list of them"
        )
    return tuple(values)
