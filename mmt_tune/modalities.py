"""Modality names and the label convention shared by every stage (manifest, feature table, models)."""

from __future__ import annotations

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
