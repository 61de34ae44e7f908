"""Checking a table of new patients against a bundle, and external validation when it has labels.

:func:`read_table` reads the table (Parquet or CSV, labels optional), :func:`check_features` refuses one
whose features are not the bundle's (or that was extracted with other settings), and :func:`validation`
gives the five metrics with 95% bootstrap intervals, the Brier score and calibration (intercept and slope),
which :func:`calibration_plot` draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mmt_tune.deploy.bundle import Bundle
from mmt_tune.errors import InputError
from mmt_tune.metrics import all_metrics
from mmt_tune.modalities import COLUMN_SEPARATOR, table_modalities


def read_table(path: Path) -> tuple[pd.DataFrame, dict[str, str], bool]:
    """A table to score (Parquet or CSV): patient_id, feature columns, optional labels; its metadata;
    whether it has labels."""
    from mmt_tune.data.table import read_feature_table, read_metadata, validate_features, validate_table

    if not path.is_file():
        raise InputError(f"{path}: feature table not found")
    if path.suffix != ".csv":
        try:
            return (*read_feature_table(path), True)
        except InputError as exc:
            if "label" not in str(exc):
                raise
    try:
        table = (
            pd.read_csv(path, dtype={"patient_id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
        )
    except Exception as exc:  # pandas / pyarrow raise many types for malformed input
        raise InputError(
            f"{path}: not a readable table ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        ) from None
    if "patient_id" not in table.columns:
        raise InputError(f"{path}: missing required column 'patient_id'")
    # Unlabelled (the usual case for new patients) or partly labelled: the metadata still count.
    metadata = {} if path.suffix == ".csv" else read_metadata(path)
    labelled = "label" in table.columns and table["label"].notna().all()
    if "label" in table.columns and not labelled and table["label"].notna().any():
        print(f"note: {path}: some rows have no label: no validation metrics", file=sys.stderr)
    if labelled:
        return validate_table(table, str(path)), metadata, True
    return validate_features(table, str(path)), metadata, False


def check_features(table: pd.DataFrame, metadata: dict, bundle: Bundle, source: str) -> list[str]:
    """One :class:`InputError` when the table's features are not the bundle's; notes otherwise."""
    notes = []
    expected = bundle.info.get("feature_columns", {})
    for modality in table_modalities(list(table.columns)):
        if modality not in expected:
            notes.append(f"{modality}: not a modality of the bundle (ignored)")
            continue
        have = [c for c in table.columns if c.startswith(f"{modality}{COLUMN_SEPARATOR}")]
        lacking = [c for c in expected[modality] if c not in have]
        extra = [c for c in have if c not in expected[modality]]
        if lacking or extra:
            what = (
                f"lacks {lacking[0]}" if lacking else f"has {extra[0]}, which the bundle was not trained on"
            )
            raise InputError(
                f"{source}: {modality} features differ from the bundle's ({what}; "
                f"{len(lacking)} missing, {len(extra)} extra of {len(expected[modality])}): extract them "
                "with the settings the bundle's table used"
            )
    for modality in expected:
        if not any(c.startswith(f"{modality}{COLUMN_SEPARATOR}") for c in table.columns):
            notes.append(f"{modality}: no columns in the table (missing for every row)")
    ours, theirs = bundle.info.get("settings_sha256"), metadata.get("settings_sha256")
    if ours and theirs and ours != theirs:
        raise InputError(
            f"{source}: extracted with other PyRadiomics settings than the bundle's training table "
            f"(settings sha256 {theirs[:12]} vs {ours[:12]})"
        )
    if ours and not theirs:
        notes.append("the table records no extraction settings: make sure they are the bundle's")
    return notes


def validation(predictions: pd.DataFrame, seed: int = 0) -> dict:
    """External-validation metrics of the scored rows, each with a 95% bootstrap interval, and calibration."""
    from mmt_tune.metrics import METRIC_FUNCTIONS
    from mmt_tune.stats import bootstrap_interval

    scored = predictions.dropna(subset=["probability"])
    y, p = scored["label"].to_numpy(int), scored["probability"].to_numpy(float)
    result = {"n": len(y), "positives": int(y.sum()), "prevalence": float(y.mean()) if len(y) else None}
    for metric, value in all_metrics(y, p).items():
        low, high = bootstrap_interval(y, p, METRIC_FUNCTIONS[metric], seed=seed)
        result[metric] = {"value": value, "ci95": [low, high]}
    result["brier"] = float(np.mean((p - y) ** 2)) if len(y) else None
    result["calibration"] = calibration(y, p)
    result["interval"] = "percentile bootstrap over patients, 2000 resamples"
    return result


def calibration(y: np.ndarray, p: np.ndarray) -> dict:
    """Calibration intercept (calibration-in-the-large) and slope: a logistic regression of the labels on
    the logit of the predicted probability (ideal: 0 and 1)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        return {"intercept": None, "slope": None}
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    fit = LogisticRegression(C=np.inf).fit(logit[:, None], y)
    return {"intercept": float(fit.intercept_[0]), "slope": float(fit.coef_[0, 0])}


def calibration_plot(predictions: pd.DataFrame, path: Path, bins: int = 10) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    from mmt_tune._io import atomic_path

    scored = predictions.dropna(subset=["probability"])
    y, p = scored["label"].to_numpy(int), scored["probability"].to_numpy(float)
    observed, predicted = calibration_curve(y, p, n_bins=min(bins, max(2, len(y) // 10)), strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="#8C8C8C", linestyle="--", label="ideal")
    ax.plot(predicted, observed, marker="o", color="#4C72B0", label="bundle")
    ax.set(xlabel="predicted probability", ylabel="observed fraction positive", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"Calibration, {len(y)} scored rows (quantile bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=150)
    finally:
        plt.close(fig)
    return path
