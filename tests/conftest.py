"""Shared fixtures: a small phantom cohort, one local Ray instance per test session, the shared/ folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository (developer checkouts and CI); not part of the project.
SHARED = Path(os.environ.get("MMT_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray instance (2 CPUs) shared by the tests of a session; extraction reuses it."""
    import ray

    # A test that ran a study or the demo before this fixture was first used may have left its own instance
    # (run_study starts one when none is running): replace it, so the order of tests does not matter.
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """8 phantom patients (3 SCLC, 5 NSCLC), one of them without DWI; returns the manifest path."""
    from mmt_tune.data.synth import PhantomConfig, generate_cohort

    out = tmp_path_factory.mktemp("cohort")
    manifest = generate_cohort(out, PhantomConfig(n_sclc=3, n_nsclc=5, seed=3), progress=False)
    # Drop DWI for the second patient: a missing modality is an empty image/mask pair.
    lines = manifest.read_text().splitlines()
    cells = lines[2].split(",")
    cells[-2:] = ["", ""]
    lines[2] = ",".join(cells)
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def make_table(
    n: int = 120,
    signal: dict | None = None,
    n_features: int = 12,
    seed: int = 0,
    positive_fraction: float = 100 / 279,
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
    for modality in ("T1WI", "FLAIR", "DWI"):
        values = rng.standard_normal((n, n_features))
        values[:, :3] += (signal or {}).get(modality, 0.0) * y[:, None]
        for j in range(n_features):
            data[f"{modality}__original_firstorder_F{j}"] = values[:, j] * 10 + 50
    return pd.DataFrame(data)
