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
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mmt_tune._io import atomic_path, check_writable, parse_yaml, write_text_atomic
from mmt_tune.data.manifest import Case, read_manifest
from mmt_tune.data.table import read_feature_table, read_run_key, write_feature_table
from mmt_tune.errors import InputError
from mmt_tune.modalities import MODALITIES, feature_column

if TYPE_CHECKING:
    import pandas as pd

# Heavy modules (pandas, numpy, PyRadiomics, Ray) are imported where they are used, so that a re-run whose
# inputs have not changed finishes in well under a second.

#: Settings files shipped with the package, usable by name: ``--params fast`` or ``--params paper``.
SHIPPED_SETTINGS = ("fast", "paper")

FAILURE_COLUMNS = ["line", "patient_id", "lesion_id", "modality", "file", "error"]


# ----------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """PyRadiomics settings as loaded from YAML, with the hash that keys the cache and tags the output."""

    source: str  # file path or shipped name, for messages
    params: dict
    text: str

    @property
    def sha256(self) -> str:
        # Canonical JSON of the parsed settings: comments and key order do not change the hash.
        canonical = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def label(self) -> int:
        return int((self.params.get("setting") or {}).get("label", 1))


def load_settings(params: str | Path, validate: bool = True) -> Settings:
    """Load PyRadiomics settings (a YAML path, or a shipped name: fast, paper) and check them against
    PyRadiomics' schema unless ``validate`` is false."""
    if str(params) in SHIPPED_SETTINGS:
        text = resources.files("mmt_tune.radiomics").joinpath(f"{params}.yaml").read_text()
        source = f"{params} (shipped)"
    else:
        path = Path(params)
        if not path.is_file():
            raise InputError(
                f"{path}: settings file not found (or use a shipped name: {', '.join(SHIPPED_SETTINGS)})"
            )
        text, source = path.read_text(), str(path)
    parsed = parse_yaml(text, source) or {}
    if not isinstance(parsed, dict):
        raise InputError(f"{source}: expected a mapping with setting/imageType/featureClass keys")
    settings = Settings(source=source, params=parsed, text=text)
    if validate:
        validate_settings(settings)
    return settings


def validate_settings(settings: Settings) -> None:
    """Check the settings against PyRadiomics' own schema (the one its parameter files are validated with)."""
    import pykwalify.core
    from radiomics import featureextractor

    pykwalify.core.log.setLevel(logging.CRITICAL)  # we report the error ourselves, on one line
    try:
        featureextractor.RadiomicsFeatureExtractor(settings.params)
    except Exception as exc:  # pykwalify.errors.SchemaError and friends
        detail = " ".join(str(getattr(exc, "msg", exc)).split())
        raise InputError(f"{settings.source}: invalid PyRadiomics settings: {detail}") from None


def pyradiomics_version() -> str:
    """Installed PyRadiomics version, read from package metadata (importing PyRadiomics takes ~0.3 s)."""
    return importlib_metadata.version("pyradiomics")


# ----------------------------------------------------------------------------------------------- worker side
_EXTRACTORS: dict[str, object] = {}


def _extractor(settings: dict, settings_hash: str):
    """One PyRadiomics extractor per worker process and settings (construction parses and validates)."""
    if settings_hash not in _EXTRACTORS:
        import radiomics
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        # Diagnostics (image hashes, mask statistics) are dropped from the table, so do not compute them;
        # they are ~10% of the time of a fast-settings scan and change no feature value.
        _EXTRACTORS[settings_hash] = featureextractor.RadiomicsFeatureExtractor(
            settings, additionalInfo=False
        )
    return _EXTRACTORS[settings_hash]


def _geometry_mismatch(image, mask) -> str | None:
    """Describe how the mask's grid differs from the image's, or None if they match."""
    import numpy as np

    checks = [
        ("size", image.GetSize(), mask.GetSize(), 0.0),
        ("spacing", image.GetSpacing(), mask.GetSpacing(), 1e-4 * min(image.GetSpacing())),
        ("origin", image.GetOrigin(), mask.GetOrigin(), 1e-3 * min(image.GetSpacing())),
        ("direction", image.GetDirection(), mask.GetDirection(), 1e-4),
    ]
    for name, a, b, tol in checks:
        if len(a) != len(b) or not np.allclose(a, b, rtol=0, atol=tol):
            fmt = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"  # noqa: E731
            return f"mask {name} {fmt(b)} differs from image {name} {fmt(a)}"
    return None


def truncated(path: str | Path) -> str | None:
    """Why a NIfTI file (``.nii``, ``.nii.gz``) holds fewer bytes than its header promises, else None.

    SimpleITK reads a cut-off file without complaint and fills the missing voxels with zeros, which gives
    wrong features with no error. Other formats are left to the reader.
    """
    import gzip
    import struct

    path = Path(path)
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return None
    try:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            header = handle.read(540)
            size = len(header)
            while chunk := handle.read(1 << 20):
                size += len(chunk)
    except EOFError as exc:
        return f"compressed stream ends early: {_first_line(exc)}"
    except OSError:  # not gzip at all, unreadable, ...: the reader reports it as unreadable
        return None
    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348:  # NIfTI-1
            dims = struct.unpack(f"{order}8h", header[40:56])
            bitpix = struct.unpack(f"{order}h", header[72:74])[0]
            offset = int(struct.unpack(f"{order}f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540:  # NIfTI-2
            dims = struct.unpack(f"{order}8q", header[16:80])
            bitpix = struct.unpack(f"{order}h", header[14:16])[0]
            offset = struct.unpack(f"{order}q", header[168:176])[0]
            break
    else:
        return None  # not a header we know: let SimpleITK decide
    n_dims = int(dims[0])
    if not 1 <= n_dims <= 7:
        return None
    voxels = 1
    for extent in dims[1 : n_dims + 1]:
        voxels *= max(int(extent), 1)
    expected = max(offset, 348) + voxels * bitpix // 8
    if size < expected:
        return f"{size} bytes of data where the header's {'x'.join(str(int(d)) for d in dims[1 : n_dims + 1])} x {bitpix // 8} bytes need {expected}"
    return None


def extract_one(image_path: str, mask_path: str, settings: dict, settings_hash: str, label: int) -> dict:
    """Validate one image/mask pair and extract its features.

    Returns ``{"features": {name: value}}`` or ``{"error": message, "file": path}``; never raises for bad
    input, so that a Ray task's failure is data, not a traceback.
    """
    import numpy as np
    import SimpleITK as sitk

    for path, kind in ((image_path, "image"), (mask_path, "mask")):
        short = truncated(path)
        if short:
            return {"file": path, "error": f"truncated {kind} ({short})"}
    try:
        try:
            image = sitk.ReadImage(image_path)
        except RuntimeError as exc:
            return {"file": image_path, "error": f"unreadable image ({_first_line(exc)})"}
        try:
            mask = sitk.ReadImage(mask_path)
        except RuntimeError as exc:
            return {"file": mask_path, "error": f"unreadable mask ({_first_line(exc)})"}
        mismatch = _geometry_mismatch(image, mask)
        if mismatch:
            return {"file": mask_path, "error": f"{mismatch} ({image_path})"}
        values = np.unique(sitk.GetArrayViewFromImage(mask))
        if not np.any(values != 0):
            return {"file": mask_path, "error": "empty mask (no non-zero voxel)"}
        if label not in values:
            present = ", ".join(f"{v:g}" for v in values if v != 0)
            return {
                "file": mask_path,
                "error": f"label value {label} absent in mask (values present: {present})",
            }
        warnings = _oddities(image, mask, values, label)
        result = _extractor(settings, settings_hash).execute(image, mask, label=label)
    except Exception as exc:  # PyRadiomics raises ValueError for ROIs it rejects (too small, 1-D, ...)
        return {"file": mask_path, "error": f"PyRadiomics failed: {_first_line(exc)}"}
    features = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}
    dropped = _missing_image_types(settings, features)
    if dropped:
        # PyRadiomics skips a filter whose optional dependency is missing with only a log warning.
        return {
            "file": image_path,
            "error": f"PyRadiomics produced no features for image type(s) {', '.join(dropped)} "
            "(missing optional dependency, e.g. trimesh or scipy for LBP3D?)",
        }
    return {"features": features, "warnings": warnings}


def _oddities(image, mask, mask_values, label: int) -> list[str]:
    """Accepted but probably unintended: a 2-D image, a mask with several labels, a mask equal to its image."""
    import numpy as np
    import SimpleITK as sitk

    found = []
    if image.GetDimension() < 3 or 1 in image.GetSize():
        found.append(
            f"2-D image ({'x'.join(map(str, image.GetSize()))}): 3-D shape features are NaN or meaningless"
        )
    labels = [v for v in mask_values if v != 0]
    if len(labels) > 1:
        found.append(
            f"mask has {len(labels)} labels ({', '.join(f'{v:g}' for v in labels[:5])}); only {label} is used"
        )
    if np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(mask)):
        found.append("mask is identical to its image (the image given as its own mask?)")
    return found


# Feature-name prefix (the part before the first "_") of each PyRadiomics image type.
_IMAGE_TYPE_PREFIX = {"Wavelet": "wavelet-", "LoG": "log-sigma-", "LBP2D": "lbp-2D", "LBP3D": "lbp-3D-"}


def _missing_image_types(settings: dict, features: dict[str, float]) -> list[str]:
    prefixes = {name.split("_", 1)[0] for name in features}
    missing = []
    for image_type in settings.get("imageType") or {"Original": {}}:
        want = _IMAGE_TYPE_PREFIX.get(image_type)
        found = any(p.startswith(want) for p in prefixes) if want else image_type.lower() in prefixes
        if not found:
            missing.append(image_type)
    return missing


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------- cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FeatureCache:
    """Content-addressed store: key = hash(image bytes, mask bytes, settings, label, PyRadiomics version).

    Entries hold feature values only (no identifiers or paths), one small JSON file each, written atomically.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def key(image_hash: str, mask_hash: str, settings_hash: str, label: int, version: str) -> str:
        return hashlib.sha256(
            f"{image_hash}|{mask_hash}|{settings_hash}|{label}|{version}".encode()
        ).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, float] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())["features"]
        except (ValueError, KeyError):
            return None  # a damaged entry is recomputed

    def put(self, key: str, features: dict[str, float]) -> None:
        write_text_atomic(self._path(key), json.dumps({"features": features}))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0


# ----------------------------------------------------------------------------------------------- driver
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


def extract_features(
    manifest: str | Path,
    params: str | Path,
    out: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
    modalities: Sequence[str] = MODALITIES,
    progress: bool = True,
    on_result: Callable[[int], None] | None = None,
) -> ExtractionResult:
    """Extract features for every case of ``manifest`` and write the feature table to ``out``.

    Structural problems (manifest columns, duplicate cases, invalid settings) raise :class:`InputError`
    before any work starts. Per-case failures are returned in ``result.failures`` and written to
    ``failures.csv`` beside ``out``; the table holds the cases that succeeded. If ``out`` was written by a
    run with exactly the same inputs (file contents, settings, PyRadiomics version, manifest rows), nothing
    is recomputed or rewritten. ``on_result`` (for tests) is called with the number of results computed so
    far, each time one has been cached.
    """
    out = Path(out)
    if out.suffix != ".parquet":
        raise InputError(f"{out}: the feature table must be a .parquet file")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be >= 1 (got {workers})")
    cases = read_manifest(manifest, modalities)
    settings = load_settings(params, validate=False)
    check_writable(out.parent, "--out")
    version = pyradiomics_version()
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir(out))
    items, failures = _plan(cases, modalities, settings, version, cache)
    run_key = _run_key(items, modalities, settings, version)
    if not failures and out.is_file() and read_run_key(out) == run_key:
        _remove_stale_failures(out)
        return ExtractionResult(output=out, failures=[], n_cached=len(items), up_to_date=True)
    validate_settings(settings)

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
            pending, settings, address, workers, cache, progress, n_cached, len(items), on_result
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

    failures.sort(key=lambda f: (f["line"], modalities.index(f["modality"])))
    failed_rows = {(f["patient_id"], f["lesion_id"]) for f in failures}
    table = _assemble(cases, modalities, results, failed_rows)
    metadata = {
        "pyradiomics_version": version,
        "settings_sha256": settings.sha256,
        "settings_yaml": settings.text,
        "modalities": list(modalities),
        "unit": "lesion" if "lesion_id" in table.columns else "patient",
    }
    # Only a complete run may short-circuit the next one: failed scans must be retried.
    write_feature_table(table, out, metadata, run_key=None if failures else run_key)
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
    if failures:
        with atomic_path(out.parent / "failures.csv") as tmp:
            result.failure_table.to_csv(tmp, index=False)
    else:
        _remove_stale_failures(out)
    return result


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


def _run_key(items: list[_Item], modalities, settings: Settings, version: str) -> str:
    """Hash of everything the output table depends on: rows, labels, per-scan cache keys, settings, version."""
    rows = [[i.case.patient_id, i.case.lesion_id, i.case.label, i.modality, i.key] for i in items]
    payload = {
        "rows": rows,
        "modalities": list(modalities),
        "settings": settings.sha256,
        "pyradiomics": version,
        "format": 1,
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


def _run_tasks(pending, settings, address, workers, cache, progress, done, total, on_result):
    """Run the pending (case, modality) extractions as Ray tasks; cache each result as it arrives."""
    import ray
    from tqdm.auto import tqdm

    started_here = not ray.is_initialized()
    if started_here:
        init = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
        ray.init(**init, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
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
                "label": case.label,
            }
        )
    features = pd.DataFrame.from_records(records, columns=list(columns), index=range(len(records))).astype(
        "float64"
    )
    return pd.concat([pd.DataFrame(ids), features], axis=1)
