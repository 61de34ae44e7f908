"""PyRadiomics feature extraction as Ray tasks, with a content-addressed per-case cache.

One Ray task per (case, modality). Before anything is scheduled, the driver hashes each image and mask file
and the canonical settings; a (case, modality) whose key is already in the cache is not recomputed, and every
result is written to the cache as soon as it arrives, so an interrupted run resumes where it stopped and a
re-run with nothing changed does not start Ray at all.

Per-case problems (a missing or unreadable file, mask geometry different from the image, an empty mask, the
label absent from the mask, PyRadiomics rejecting the ROI) do not stop the cohort: they are collected with
the file and the reason, written to ``failures.csv`` beside the output, and the case is left out of the table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mmt_tune._io import atomic_path, check_writable, output_unit
from mmt_tune.data.manifest import Case, manifest_modalities, read_manifest
from mmt_tune.data.table import read_feature_table, read_run_key, write_feature_table
from mmt_tune.errors import InputError
from mmt_tune.modalities import feature_column
from mmt_tune.radiomics.cache import FeatureCache, file_sha256
from mmt_tune.radiomics.settings import Settings, load_settings, pyradiomics_version, validate_settings
from mmt_tune.radiomics.worker import extract_one

if TYPE_CHECKING:
    import pandas as pd

# Heavy modules (pandas, numpy, PyRadiomics, Ray) are imported where they are used, so that a re-run whose
# inputs have not changed finishes in well under a second.

FAILURE_COLUMNS = ["line", "patient_id", "lesion_id", "modality", "file", "error"]


@dataclass
class ExtractionResult:
    """What one extraction produced. ``table`` is read from ``output`` on first access when the run found
    the output already up to date (so an unchanged re-run never loads pandas)."""

    output: Path
    failures: list[dict]
    n_cached: int = 0
    n_computed: int = 0
    up_to_date: bool = False
    metadata: dict = field(default_factory=dict)
    _table: pd.DataFrame | None = None
    nodes: dict[str, int] = field(default_factory=dict)  # Ray node id -> scans extracted there (this run)
    warnings: list[dict] = field(default_factory=list)  # odd but accepted scans found by this run

    @property
    def table(self) -> pd.DataFrame:
        if self._table is None:
            self._table = read_feature_table(self.output)[0]
        return self._table

    @property
    def failure_table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.failures, columns=FAILURE_COLUMNS)


@dataclass
class _Item:
    index: int  # position of the case in the manifest
    case: Case
    modality: str
    key: str  # cache key


def default_cache_dir(out: Path) -> Path:
    return out.parent / ".mmt-cache" / "radiomics"


def require_pyradiomics() -> None:
    """PyRadiomics is importable, or one :class:`InputError` saying how to get it: it is an optional part
    (``pip install mmt-tune`` works without it, for tables extracted elsewhere), and its 3.1.0 source archive
    needs the repair ``scripts/bootstrap.sh`` applies."""
    import importlib

    try:
        importlib.import_module("radiomics")
    except ImportError:
        raise InputError(
            "PyRadiomics is not installed, and extraction (and the phantom cohort) needs it: run "
            "scripts/bootstrap.sh from a checkout, which builds it (docs/install.md); a feature table made "
            "elsewhere needs no PyRadiomics (mmt-tune convert)"
        ) from None


def extract_features(
    manifest: str | Path,
    params: str | Path,
    out: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    modalities: Sequence[str] | None = None,
    positive: str | None = None,
    progress: bool = True,
    on_result: Callable[[int], None] | None = None,
    verbose: bool = False,
) -> ExtractionResult:
    """Extract features for every case of ``manifest`` and write the feature table to ``out``.

    ``modalities``: default, every ``<MOD>_image``/``<MOD>_mask`` pair of the manifest. ``positive``: the
    positive class's label value when the labels are not SCLC/NSCLC or 1/0. ``verbose``: Ray's own logs,
    warnings and worker output reach the terminal.

    Structural problems (manifest columns, duplicate cases, invalid settings) raise :class:`InputError`
    before any work starts. Per-case failures are returned in ``result.failures`` and written to
    ``failures.csv`` beside ``out``; the table holds the cases that succeeded. If ``out`` was written by a
    run with exactly the same inputs (file contents, settings, PyRadiomics version, manifest rows), nothing
    is recomputed or rewritten. ``on_result`` (for tests) is called with the number of results computed so
    far, each time one has been cached.
    """
    require_pyradiomics()
    out = Path(out)
    if out.suffix != ".parquet":
        raise InputError(f"{out}: the feature table must be a .parquet file")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be >= 1 (got {workers})")
    cases = read_manifest(manifest, modalities, positive)
    modalities = tuple(modalities or manifest_modalities(manifest))
    settings = load_settings(params, validate=False)
    check_writable(out.parent, "--out")
    version = pyradiomics_version()
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir(out))
    items, failures = _plan(cases, modalities, settings, version, cache)
    run_key = _run_key(items, modalities, settings, version, positive)
    if not failures and out.is_file() and read_run_key(out) == run_key:
        _remove_stale_failures(out)
        return ExtractionResult(output=out, failures=[], n_cached=len(items), up_to_date=True)
    validate_settings(settings)

    results, pending, n_cached, nodes, warnings = _gather(
        items, cache, failures, settings, address, workers, progress, on_result, verbose
    )
    failures.sort(key=lambda f: (f["line"], modalities.index(f["modality"])))
    failed_rows = {(f["patient_id"], f["lesion_id"]) for f in failures}
    table = _assemble(cases, modalities, results, failed_rows)
    metadata = {
        "pyradiomics_version": version,
        "settings_sha256": settings.sha256,
        "settings_yaml": settings.text,
        "modalities": list(modalities),
        **({"positive_class": positive or "SCLC (or label 1)"} if cases[0].label is not None else {}),
        "unit": "lesion" if "lesion_id" in table.columns else "patient",
    }
    result = ExtractionResult(
        output=out,
        failures=failures,
        n_cached=n_cached,
        n_computed=len(pending),
        metadata=metadata,
        _table=table,
        nodes=nodes,
        warnings=warnings,
    )
    with output_unit():  # the table and its failures.csv replace the previous ones together, or neither
        # Only a complete run may short-circuit the next one: failed scans must be retried.
        write_feature_table(table, out, metadata, run_key=None if failures else run_key)
        if failures:
            with atomic_path(out.parent / "failures.csv") as tmp:
                result.failure_table.to_csv(tmp, index=False)
    if not failures:
        _remove_stale_failures(out)
    return result


def _gather(
    items, cache, failures: list[dict], settings, address, workers, progress, on_result, verbose=False
) -> tuple:
    """Every scan's features: from the cache, else computed by Ray tasks (failures appended to
    ``failures``); returns the results, the computed items, how many came from the cache, the scans per
    node and PyRadiomics' warnings."""
    results: dict[tuple[int, str], dict[str, float]] = {}
    pending: list[_Item] = []
    for item in items:
        cached = cache.get(item.key)
        if cached is not None:
            results[(item.index, item.modality)] = cached
        else:
            pending.append(item)
    n_cached = len(results)
    nodes: dict[str, int] = {}
    warnings: list[dict] = []
    if pending:
        computed = _run_tasks(
            pending, settings, address, workers, cache, progress, n_cached, len(items), on_result, verbose
        )
        for item, outcome in computed:
            nodes[outcome["node"]] = nodes.get(outcome["node"], 0) + 1
            if "features" in outcome:
                results[(item.index, item.modality)] = outcome["features"]
                warnings += [
                    {"patient_id": item.case.patient_id, "modality": item.modality, "warning": text}
                    for text in outcome.get("warnings", [])
                ]
            else:
                failures.append(_failure(item.case, item.modality, Path(outcome["file"]), outcome["error"]))

    return results, pending, n_cached, nodes, warnings


def _plan(cases, modalities, settings, version, cache) -> tuple[list[_Item], list[dict]]:
    """Hash every image and mask once; a file that does not exist is a failure of its (case, modality)."""
    items: list[_Item] = []
    failures: list[dict] = []
    hashes: dict[Path, str] = {}  # files shared by several rows (one image, many lesions) are hashed once

    def digest(path: Path) -> str:
        if path not in hashes:
            hashes[path] = file_sha256(path)
        return hashes[path]

    for index, case in enumerate(cases):
        for modality in modalities:
            if modality not in case.images:
                continue
            image, mask = case.images[modality], case.masks[modality]
            missing = next((p for p in (image, mask) if not p.is_file()), None)
            if missing is not None:
                failures.append(_failure(case, modality, missing, "file not found"))
                continue
            key = cache.key(digest(image), digest(mask), settings.sha256, settings.label, version)
            items.append(_Item(index, case, modality, key))
    return items, failures


def _run_key(
    items: list[_Item], modalities, settings: Settings, version: str, positive: str | None = None
) -> str:
    """Hash of everything the output table depends on: rows, labels, per-scan cache keys, settings, version."""
    rows = [[i.case.patient_id, i.case.lesion_id, i.case.label, i.modality, i.key] for i in items]
    payload = {
        "rows": rows,
        "modalities": list(modalities),
        "settings": settings.sha256,
        "pyradiomics": version,
        "format": 1,
        **({"positive": positive} if positive is not None else {}),
    }
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _remove_stale_failures(out: Path) -> None:
    (out.parent / "failures.csv").unlink(missing_ok=True)  # a list from an earlier run would mislead


def _failure(case: Case, modality: str, path: Path, error: str) -> dict:
    return {
        "line": case.line,
        "patient_id": case.patient_id,
        "lesion_id": case.lesion_id,
        "modality": modality,
        "file": str(path),
        "error": error,
    }


def _extract_on_node(*args) -> dict:
    """:func:`extract_one` as a Ray task, with the id of the node it ran on (how work spread over a cluster)."""
    import ray

    return {**extract_one(*args), "node": ray.get_runtime_context().get_node_id()}


def _run_tasks(pending, settings, address, workers, cache, progress, done, total, on_result, verbose=False):
    """Run the pending (case, modality) extractions as Ray tasks; cache each result as it arrives."""
    import ray
    from tqdm.auto import tqdm

    started_here = not ray.is_initialized()
    if not verbose:  # "token auth is on" on every start: it is, nothing to do
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    if started_here:
        init = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
        level = logging.INFO if verbose else logging.WARNING
        ray.init(**init, include_dashboard=False, log_to_driver=verbose, logging_level=level)
    remote = ray.remote(num_cpus=1)(_extract_on_node)
    # Bound the tasks in flight: enough to keep every worker busy, few enough that results stream back.
    limit = 2 * (workers or max(1, int(ray.available_resources().get("CPU", 1))))
    settings_ref = ray.put(settings.params)
    queue = list(reversed(pending))  # popped from the end: manifest order
    in_flight: dict = {}
    outcomes = []
    bar = tqdm(total=total, initial=done, desc="extract", unit="scan", disable=not progress)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                item = queue.pop()
                ref = remote.remote(
                    str(item.case.images[item.modality]),
                    str(item.case.masks[item.modality]),
                    settings_ref,
                    settings.sha256,
                    settings.label,
                )
                in_flight[ref] = item
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                item = in_flight.pop(ref)
                outcome = ray.get(ref)
                if "features" in outcome:
                    cache.put(item.key, outcome["features"])
                outcomes.append((item, outcome))
                bar.update(1)
                if on_result is not None:
                    on_result(len(outcomes))
    finally:
        bar.close()
        if started_here:
            ray.shutdown()
    return outcomes


def _assemble(cases: Sequence[Case], modalities: Iterable[str], results, failed_rows) -> pd.DataFrame:
    """One row per case that did not fail; NaN for a modality the case lacks."""
    import pandas as pd

    with_lesions = any(c.lesion_id is not None for c in cases)
    columns: dict[str, None] = {}  # ordered union of feature names, per modality in the fixed order
    for modality in modalities:
        for (_, m), features in results.items():
            if m == modality:
                for name in features:
                    columns.setdefault(feature_column(modality, name))
    records, ids = [], []
    for index, case in enumerate(cases):
        if (case.patient_id, case.lesion_id) in failed_rows:
            continue
        row: dict[str, float] = {}
        for modality in modalities:
            for name, value in results.get((index, modality), {}).items():
                row[feature_column(modality, name)] = value
        records.append(row)
        ids.append(
            {
                "patient_id": case.patient_id,
                **({"lesion_id": case.lesion_id} if with_lesions else {}),
                "label": float("nan") if case.label is None else case.label,
            }
        )
    features = pd.DataFrame.from_records(records, columns=list(columns), index=range(len(records))).astype(
        "float64"
    )
    return pd.concat([pd.DataFrame(ids), features], axis=1)
