"""A bundle of four configurations shared by the bundle, integrity and routing tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_table

MODS = ("T1WI", "FLAIR", "DWI")
SIGNAL = {"DWI": 1.5, "T1WI": 1.0}


@pytest.fixture(scope="module")
def bundle_parts(tmp_path_factory):
    """Three configurations fitted on 100 patients (2 epochs), saved as a bundle, and 40 new patients."""
    import torch

    from mmt_tune.config import TrainConfig
    from mmt_tune.deploy.bundle import Bundle, save_bundle
    from mmt_tune.training.refit import fit_configuration

    torch.set_num_threads(1)
    table = make_table(140, signal=SIGNAL)
    train, new = table.iloc[:100].reset_index(drop=True), table.iloc[100:].reset_index(drop=True)
    fitted, in_pass = {}, {}
    for model, present, members in (
        ("mmt2m", ("T1WI", "FLAIR"), 1),
        ("mmt1m", ("T1WI",), 1),
        ("mfnvae", MODS, 2),
        ("logreg", ("DWI",), 1),
    ):
        config = TrainConfig.from_options(model, present, {} if model == "logreg" else {"epochs": 3})
        both = pd.concat([train, new], ignore_index=True)
        result, probabilities = fit_configuration(
            both, config, np.arange(100), np.arange(100, 140), members=members
        )
        fitted[result.key], in_pass[result.key] = result, probabilities
    folder = tmp_path_factory.mktemp("bundles") / "bundle"
    info = {
        "modalities": list(MODS),
        "feature_columns": {m: [c for c in table.columns if c.startswith(f"{m}__")] for m in MODS},
        "settings_sha256": "a" * 64,
    }
    scores = {"mmt2m/T1WI+FLAIR": 0.8, "mmt1m/T1WI": 0.7, "mfnvae/T1WI+FLAIR+DWI": 0.75, "logreg/DWI": 0.6}
    save_bundle(Bundle(fitted, info, scores), folder)
    return fitted, in_pass, folder, new
