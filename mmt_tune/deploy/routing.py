"""Which model scores a new patient, by the sequences the patient has.

A sequence is missing when every one of its feature values is empty (one empty value is imputed). Each row
goes to a configuration whose present set is the row's (the best by cross-validated score when several
are), else to a subset-capable model (MFN-VAE) trained on more sequences, which reads only the row's, else to
the best configuration needing a subset of the row's sequences (the others are then ignored, and the
``reads`` column says which were read). A row no model can score is refused with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmt_tune.deploy.bundle import Bundle
from mmt_tune.errors import InputError
from mmt_tune.modalities import COLUMN_SEPARATOR


def available_modalities(table: pd.DataFrame, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Per row, the modalities it has (a modality is missing when every one of its values is empty)."""
    present = {}
    for m in modalities:
        columns = [c for c in table.columns if c.startswith(f"{m}{COLUMN_SEPARATOR}")]
        present[m] = table[columns].notna().any(axis=1).to_numpy() if columns else np.zeros(len(table), bool)
    return [tuple(m for m in modalities if present[m][i]) for i in range(len(table))]


def route(bundle: Bundle, available: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The configuration that scores a row with ``available`` modalities and the modalities it reads; an
    :class:`InputError` with the reason when none can."""
    if not available:
        raise InputError("no usable modality (every feature value is empty)")

    def best(keys: list[str]) -> str:
        scores = bundle.scores
        return max(
            keys, key=lambda k: (scores.get(k) if scores.get(k) is not None else -np.inf, -keys.index(k))
        )

    have = set(available)
    fitted = bundle.configurations
    exact = [k for k, f in fitted.items() if set(f.config.present) == have]
    if exact:
        return best(exact), available
    wider = [k for k, f in fitted.items() if f.config.spec.subsets and have < set(f.config.present)]
    if wider:
        return best(wider), available
    narrower = [k for k, f in fitted.items() if set(f.config.present) < have]
    if narrower:
        key = best(narrower)
        return key, fitted[key].config.present
    raise InputError(f"no model in the bundle for {'+'.join(available)} (it has: {', '.join(fitted)})")


def predict_table(bundle: Bundle, table: pd.DataFrame) -> pd.DataFrame:
    """One row per input row: ids, the modalities it has, the configuration that scored it and what it
    read, the probability and predicted class, or the reason it was refused."""
    rows = []
    for available in available_modalities(table, bundle.modalities):
        try:
            key, reads = route(bundle, available)
            reason = ""
        except InputError as exc:
            key, reads, reason = "", (), str(exc)
        rows.append(
            {"available": "+".join(available), "model": key, "reads": "+".join(reads), "reason": reason}
        )
    out = pd.DataFrame(rows, index=table.index)
    out["probability"] = np.nan
    for (key, reads), group in out[out["model"] != ""].groupby(["model", "reads"], sort=False):
        fitted = bundle.configurations[key]
        out.loc[group.index, "probability"] = fitted.predict(table.loc[group.index], reads.split("+"))
    scored = out["model"] != ""
    broken = scored & ~np.isfinite(out["probability"].to_numpy(dtype=float))
    out.loc[broken, "probability"] = np.nan
    out.loc[broken, "reason"] = (
        "the model's output is not a finite probability (feature values far outside the training range?)"
    )
    out["predicted"] = np.where(out["probability"].isna(), pd.NA, (out["probability"] >= 0.5).astype(int))
    positive = (bundle.info.get("training") or {}).get("positive_class")
    if positive:  # what label 1, the probability and predicted 1 stand for, as the training table said
        out["positive_class"] = str(positive)
    ids = [c for c in ("patient_id", "lesion_id", "label") if c in table.columns]
    return pd.concat([table[ids], out], axis=1).reset_index(drop=True)
