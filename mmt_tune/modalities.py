"""Modality names and the label convention shared by every stage (manifest, feature table, models).

The paper's three sequences are the default and the phantom's; a study's own modalities (2 to 6, any
names) come from its data: the feature table's ``<MOD>__<feature>`` columns (:func:`table_modalities`).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The MRI sequences of the paper, in the fixed order used everywhere (columns, tokens, configurations).
MODALITIES: tuple[str, ...] = ("T1WI", "FLAIR", "DWI")

#: Class names of the manifest's ``label`` column; the positive class (label 1) is SCLC.
POSITIVE_CLASS = "SCLC"
NEGATIVE_CLASS = "NSCLC"
LABEL_VALUES = {POSITIVE_CLASS: 1, NEGATIVE_CLASS: 0, "1": 1, "0": 0}

#: Separator between modality and PyRadiomics feature name in feature-table columns: ``DWI__original_glcm_Contrast``.
COLUMN_SEPARATOR = "__"


def feature_column(modality: str, feature: str) -> str:
    return f"{modality}{COLUMN_SEPARATOR}{feature}"


#: How many modalities a study may have.
MIN_MODALITIES, MAX_MODALITIES = 2, 6


def subsets_of(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities``, smallest first, each in the given order."""
    from itertools import combinations

    return [s for r in range(1, len(modalities) + 1) for s in combinations(modalities, r)]


def table_modalities(columns: Sequence[str]) -> tuple[str, ...]:
    """The modalities of a feature table: the ``<MOD>`` prefixes of its ``<MOD>__<feature>`` columns, in the
    order they first appear (the paper's order when the table has exactly the paper's three)."""
    found = list(dict.fromkeys(c.split(COLUMN_SEPARATOR, 1)[0] for c in columns if COLUMN_SEPARATOR in c))
    if set(found) == set(MODALITIES):
        return MODALITIES
    return tuple(found)


def ordered(names: Sequence[str], modalities: Sequence[str]) -> tuple[str, ...]:
    """``names`` in the study's order of ``modalities`` (names it does not know keep their own order, last)."""
    known = [m for m in modalities if m in names]
    return (*known, *(n for n in names if n not in modalities))
