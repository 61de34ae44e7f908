"""The phantom cohort as a ready feature table: generated and extracted once, then reused from the cache.

``phantom_features()`` is what ``python -m mmt_tune.run`` studies when no ``--features`` is given, and what
the tests and benchmarks use; the demo calls :func:`prepare_phantom` for its own folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from mmt_tune.data.synth import PhantomConfig, class_sizes, generate_cohort


def cache_root() -> Path:
    """``$MMT_TUNE_CACHE``, or ``~/.cache/mmt-tune``."""
    return Path(os.environ.get("MMT_TUNE_CACHE", "~/.cache/mmt-tune")).expanduser()


def prepare_phantom(out: Path, patients: int | None, seed: int, progress: bool) -> Path:
    """The phantom cohort's manifest under ``out``, generated unless an identical one is already there."""
    n_sclc, n_nsclc = class_sizes(patients)
    config = PhantomConfig(n_sclc=n_sclc, n_nsclc=n_nsclc, seed=seed)
    manifest, recorded = out / "manifest.csv", out / "cohort.json"
    if manifest.is_file() and recorded.is_file():
        previous = json.loads(recorded.read_text())
        previous.pop("generator", None)
        if previous == json.loads(json.dumps(asdict(config))):
            return manifest
    return generate_cohort(out, config, progress=progress)


def phantom_features(patients: int | None = None, progress: bool = True) -> Path:
    """The phantom cohort's feature table, generated and extracted on first use into the cache folder."""
    from mmt_tune.radiomics.extract import extract_features

    folder = cache_root() / f"phantom-{patients or 'paper'}"
    manifest = prepare_phantom(folder / "cohort", patients, seed=0, progress=progress)
    return extract_features(manifest, "fast", folder / "features.parquet", progress=progress).output
