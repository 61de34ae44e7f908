"""Shared fixtures: a small phantom cohort, one local Ray instance per test session, the shared/ folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO, SHARED  # noqa: F401 - the paths, for fixtures below


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


@pytest.fixture
def one_thread():
    """torch at one intra-op thread for the test (bit-exact packing; fast on a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
