"""A bundle's integrity: the manifest's schema, a sha256 of every file and manifest section, and the shape
of every array checked against the manifest, all before a model is built.

``fit`` records, under ``sha256`` in ``bundle.json``, the hash of each file of the bundle and of each
section of the manifest (a configuration's ``columns``, ``widths``, ``config``; the top-level
``feature_columns`` and so on). Loading checks, in order: the manifest's schema (types and required keys),
those hashes (a changed file or section is refused naming it), then the shapes (every array and state-dict
entry against the widths and columns the manifest gives, values finite). Every failure is one
:class:`~mmt_tune.errors.InputError` line.

The hashes guard against accidents (a file copied from another bundle, an edited column list, a truncated
copy); they are not a signature: someone who rewrites the hashes too defeats them, and then only the shape
checks stand (a swapped pair of column names with resealed hashes is not detectable).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mmt_tune.errors import InputError

SHA256 = "sha256"
ENTRY_FIELDS = {
    "folder": str,
    "config": dict,
    "members": int,
    "widths": dict,
    "columns": list,
}
TOP_FIELDS = {"format": str, "modalities": list, "feature_columns": dict, "configurations": dict}


def _type_name(kind: type) -> str:
    return {str: "a string", dict: "an object", list: "a list", int: "an integer"}[kind]


def _expect(value: Any, kind: type, where: str) -> None:
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        got = "null" if value is None else type(value).__name__
        raise InputError(f"{where}: expected {_type_name(kind)}, found {got}")


def check_schema(manifest: Any, path: Path) -> None:
    """The manifest's keys and types; one line naming the first key that is missing or of the wrong type."""
    _expect(manifest, dict, str(path))
    for key, kind in {**TOP_FIELDS, SHA256: dict}.items():
        if key not in manifest:
            raise InputError(f"{path}: {key} is missing")
        _expect(manifest[key], kind, f"{path}: {key}")
    if not manifest["configurations"]:
        raise InputError(f"{path}: configurations is empty")
    for m in manifest["modalities"]:
        _expect(m, str, f"{path}: modalities")
    for m, columns in manifest["feature_columns"].items():
        _expect(columns, list, f"{path}: feature_columns.{m}")
    for key, entry in manifest["configurations"].items():
        where = f"{path}: configurations.{key}"
        _expect(entry, dict, where)
        for field, kind in ENTRY_FIELDS.items():
            if field not in entry:
                raise InputError(f"{where}.{field} is missing")
            _expect(entry[field], kind, f"{where}.{field}")
        if entry["members"] < 1 or len(entry["columns"]) != entry["members"]:
            raise InputError(
                f"{where}.members: {entry['members']}, but columns lists {len(entry['columns'])} members"
            )
        for m, width in entry["widths"].items():
            _expect(width, int, f"{where}.widths.{m}")
        for i, member in enumerate(entry["columns"]):
            _expect(member, dict, f"{where}.columns[{i}]")
            for m, columns in member.items():
                _expect(columns, list, f"{where}.columns[{i}].{m}")
                for c in columns:
                    _expect(c, str, f"{where}.columns[{i}].{m}")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sections(manifest: dict) -> dict[str, str]:
    """The sha256 of each manifest section: top-level keys, and each field of each configuration."""
    out = {}
    for key, value in manifest.items():
        if key in (SHA256, "configurations"):
            continue
        out[key] = _digest(value)
    for name, entry in manifest.get("configurations", {}).items():
        for field, value in entry.items():
            out[f"configurations.{name}.{field}"] = _digest(value)
    return out


def seal(manifest: dict, folder: Path) -> dict:
    """``manifest`` with the ``sha256`` record of its sections and of every file under ``folder``."""
    manifest = {k: v for k, v in manifest.items() if k != SHA256}
    files = {
        p.relative_to(folder).as_posix(): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "bundle.json"
    }
    return {**manifest, SHA256: {"sections": sections(manifest), "files": files}}


def check_hashes(manifest: dict, folder: Path, path: Path) -> None:
    """Every recorded section and file hash matches; one line naming the first that does not."""
    record = manifest[SHA256]
    recorded, files = record.get("sections"), record.get("files")
    if not isinstance(recorded, dict) or not isinstance(files, dict):
        raise InputError(f"{path}: sha256 record is incomplete (sections and files expected)")
    now = sections({k: v for k, v in manifest.items() if k != SHA256})
    for name in sorted(set(recorded) | set(now)):
        if name not in now:
            raise InputError(f"{path}: {name} is missing (it was recorded at fit)")
        if recorded.get(name) != now[name]:
            what = "was not recorded at fit" if name not in recorded else "changed since fit (sha256 differs)"
            raise InputError(f"{path}: {name} {what}; refit the bundle or restore the original")
    for entry in manifest["configurations"].values():
        sub = Path(entry["folder"]).name
        if not any(name.startswith(f"{sub}/") for name in files):
            raise InputError(f"{path}: no file of {sub}/ was recorded at fit")
    for name, expected in sorted(files.items()):
        file = folder / name
        if not file.resolve().is_relative_to(folder.resolve()):
            raise InputError(f"{path}: {name} lies outside the bundle")
        if not file.is_file():
            raise InputError(f"{file}: missing (recorded at fit)")
        if file_sha256(file) != expected:
            raise InputError(f"{file}: changed since fit (sha256 differs); refit the bundle or restore it")


def check_transforms(entry: dict, arrays: Any, feature_columns: dict, where: str) -> None:
    """Columns within the table's feature columns and the padded widths; median, mean and scale one finite
    value per column (scale > 0)."""
    widths = entry["widths"]
    for i, member in enumerate(entry["columns"]):
        for m, columns in member.items():
            known = set(feature_columns.get(m, ()))
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise InputError(
                    f"{where}.columns[{i}].{m}: {unknown[0]!r} is not a feature column of the bundle"
                )
            if m in widths and len(columns) > widths[m]:
                raise InputError(f"{where}.columns[{i}].{m}: {len(columns)} columns, wider than widths.{m}")
            for part in ("median", "mean", "scale"):
                name = f"{i}/{m}/{part}"
                if name not in arrays.files:
                    raise InputError(f"{where}: preprocessing.npz has no {name}")
                values = arrays[name]
                if values.shape != (len(columns),):
                    raise InputError(
                        f"{where}: preprocessing.npz {name} has shape {values.shape}, expected ({len(columns)},)"
                    )
                if not np.isfinite(values).all() or (part == "scale" and (values <= 0).any()):
                    raise InputError(f"{where}: preprocessing.npz {name} holds a non-finite or zero value")


def check_widths(entry: dict, feature_columns: dict, present: tuple[str, ...], where: str) -> None:
    """A width for every modality the model reads, none wider than the table's columns of that modality."""
    widths = entry["widths"]
    for m in present:
        if m not in widths:
            raise InputError(f"{where}.widths: no width for {m}")
        limit = len(feature_columns.get(m, ()))
        if not 1 <= widths[m] <= limit:
            raise InputError(f"{where}.widths.{m}: {widths[m]}, expected 1 to {limit} (the columns of {m})")


def check_state(model: Any, state: dict, where: str) -> None:
    """The state dict has exactly the model's entries, each of its shape, every value finite."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        name = (missing or extra)[0]
        raise InputError(f"{where}: weights.pt {'lacks' if missing else 'has an unexpected'} entry {name}")
    for name, tensor in expected.items():
        value = state[name]
        if not hasattr(value, "shape") or tuple(value.shape) != tuple(tensor.shape):
            shape = tuple(getattr(value, "shape", ()))
            raise InputError(f"{where}: weights.pt {name} has shape {shape}, expected {tuple(tensor.shape)}")
        if value.is_floating_point() and not bool(value.isfinite().all()):
            raise InputError(f"{where}: weights.pt {name} holds a non-finite value")


def check_temperature(entry: dict, config: Any, where: str) -> list[float] | None:
    """A calibrated model's temperatures: one positive finite number per member, and present exactly when
    the configuration says it was calibrated."""
    import math

    value = entry.get("temperature")
    if config.calibration is None:
        if value is not None:
            raise InputError(f"{where}.temperature: given, but the configuration is not calibrated")
        return None
    if not isinstance(value, list) or len(value) != entry["members"]:
        raise InputError(
            f"{where}.temperature: expected one per member ({entry['members']}), found {value!r}"
        )
    for t in value:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise InputError(f"{where}.temperature: {t!r} is not a positive number")
    return [float(t) for t in value]


def check_coefficients(entry: dict, arrays: Any, where: str) -> None:
    """Per member: coef of shape (1, its columns), intercept (1,), classes [0, 1], all finite."""
    for i, member in enumerate(entry["columns"]):
        width = sum(len(columns) for columns in member.values())
        for name, shape in ((f"{i}/coef", (1, width)), (f"{i}/intercept", (1,)), (f"{i}/classes", (2,))):
            if name not in arrays.files:
                raise InputError(f"{where}: coefficients.npz has no {name}")
            value = arrays[name]
            if value.shape != shape:
                raise InputError(
                    f"{where}: coefficients.npz {name} has shape {value.shape}, expected {shape}"
                )
            if not np.isfinite(value).all():
                raise InputError(f"{where}: coefficients.npz {name} holds a non-finite value")
        if list(arrays[f"{i}/classes"]) != [0, 1]:
            raise InputError(f"{where}: coefficients.npz {i}/classes is not [0, 1]")
