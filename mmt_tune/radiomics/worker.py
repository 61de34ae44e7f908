"""What runs in a Ray worker: one (case, modality) scan through PyRadiomics, with the checks that turn a bad
file into one line naming it."""

from __future__ import annotations

import logging
from pathlib import Path

_EXTRACTORS: dict[str, object] = {}


def _extractor(settings: dict, settings_hash: str):
    """One PyRadiomics extractor per worker process and settings (construction parses and validates)."""
    if settings_hash not in _EXTRACTORS:
        import radiomics
        import SimpleITK as sitk
        from radiomics import featureextractor

        radiomics.setVerbosity(logging.ERROR)
        # One ITK thread per worker: a task holds one CPU, and ITK's default (a thread per core in every
        # worker) oversubscribes the machine; on 2 cores with 2 workers the PyRadiomics CLI took 37.2 s with
        # ITK's default and 24.7 s with one thread (benchmarks/extract_throughput.py, RESULTS.md).
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
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
