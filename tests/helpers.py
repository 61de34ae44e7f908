"""Helpers tests import (``from helpers import make_table``); fixtures stay in conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository (developer checkouts and CI); not part of the project.
SHARED = Path(os.environ.get("MMT_SHARED_DIR", REPO.parent / "shared"))


def make_table(
    n: int = 120,
    signal: dict | None = None,
    n_features: int = 12,
    seed: int = 0,
    positive_fraction: float = 100 / 279,
    modalities: tuple[str, ...] = ("T1WI", "FLAIR", "DWI"),
):
    """A feature table that follows the contract, with a planted class signal per modality.

    ``signal`` maps modality -> Cohen's d added to its first three features for the positive class; labels
    are independent of every feature not listed.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_fraction).astype(int)
    y[:2] = [0, 1]
    data = {"patient_id": [f"P{i:04d}" for i in range(n)], "label": y}
    for modality in modalities:
        values = rng.standard_normal((n, n_features))
        values[:, :3] += (signal or {}).get(modality, 0.0) * y[:, None]
        for j in range(n_features):
            data[f"{modality}__original_firstorder_F{j}"] = values[:, j] * 10 + 50
    return pd.DataFrame(data)
