"""Read and validate a cohort manifest (docs/design.md "Data contracts").

``patient_id,label,T1WI_image,T1WI_mask,FLAIR_image,FLAIR_mask,DWI_image,DWI_mask`` (+ optional ``lesion_id``).
An empty image/mask pair means the modality is missing for that case. A manifest of patients to be
predicted has no labels: no ``label`` column, or every label empty (``scan`` without ``--labels``). Paths are relative to the manifest's
folder or absolute. Structural problems (columns, duplicate cases, labels, half-filled pairs) raise
:class:`~mmt_tune.errors.InputError` naming the file and line; problems with the image files themselves are
per-case failures reported by the extractor, so one bad case does not stop a cohort.

The manifest is read with the ``csv`` module, not pandas, so identifiers such as ``007`` stay strings.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmt_tune.errors import InputError
from mmt_tune.modalities import LABEL_VALUES, MODALITIES


@dataclass(frozen=True)
class Case:
    """One manifest row: a patient (or one lesion of a patient) with its per-modality image and mask."""

    patient_id: str
    lesion_id: str | None
    label: int | None  # 1 = SCLC (positive class), 0 = NSCLC; None in a manifest without labels
    line: int  # line number in the manifest file (the header is line 1)
    images: dict[str, Path]  # only the modalities present for this case
    masks: dict[str, Path]

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.patient_id, self.lesion_id)


def required_columns(modalities: Sequence[str] = MODALITIES) -> list[str]:
    columns = ["patient_id", "label"]
    for modality in modalities:
        columns += [f"{modality}_image", f"{modality}_mask"]
    return columns


def parse_label(value: str, where: str) -> int:
    key = value.strip()
    if key.upper() in LABEL_VALUES:
        return LABEL_VALUES[key.upper()]
    if key in LABEL_VALUES:
        return LABEL_VALUES[key]
    raise InputError(
        f"{where}: label {value!r} is not binary (expected SCLC/NSCLC or 1/0; for other label values, name "
        "the positive class with --positive, e.g. --positive high)"
    )


def header_modalities(header: Sequence[str]) -> tuple[str, ...]:
    """The modalities a manifest's header has ``<MOD>_image`` or ``<MOD>_mask`` columns for, in order (the
    paper's order when they are the paper's three); a column without its pair is then reported missing."""
    found = tuple(
        dict.fromkeys(
            c.rsplit("_", 1)[0] for c in header if c.endswith(("_image", "_mask")) and c.rsplit("_", 1)[0]
        )
    )
    return MODALITIES if set(found) == set(MODALITIES) else found


def manifest_modalities(path: str | Path) -> tuple[str, ...]:
    """:func:`header_modalities` of the manifest file at ``path`` (empty when it cannot be read)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return header_modalities(next(csv.reader(handle), []))
    except (OSError, UnicodeDecodeError, csv.Error):
        return ()


def read_manifest(
    path: str | Path, modalities: Sequence[str] | None = None, positive: str | None = None
) -> list[Case]:
    """Parse ``path`` into cases; raise :class:`InputError` naming the file and line on structural errors.

    ``modalities``: default, every ``<MOD>_image``/``<MOD>_mask`` pair of the header. ``positive``: the
    label value of the positive class when labels are not SCLC/NSCLC or 1/0 (any two values then)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    base = path.parent
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            if modalities is None:
                modalities = header_modalities(header)
                if not modalities:
                    raise InputError(
                        f"{path}: no <MODALITY>_image and <MODALITY>_mask column pair (e.g. T1WI_image, T1WI_mask)"
                    )
            missing = [c for c in required_columns(modalities) if c not in header and c != "label"]
            if missing:
                raise InputError(f"{path}: missing required column(s): {', '.join(missing)}")
            with_lesions = "lesion_id" in header
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file ({exc})") from None
    if not rows:
        raise InputError(f"{path}: manifest has no rows")

    # A manifest of patients to be predicted has no labels (no label column, or every label empty).
    labelled = any((row.get("label") or "").strip() for row in rows)
    cases: list[Case] = []
    first_line: dict[tuple[str, str | None], int] = {}
    seen_labels: dict[str, int] = {}
    for offset, row in enumerate(rows):
        line = offset + 2
        where = f"{path} line {line}"
        patient_id = (row.get("patient_id") or "").strip()
        if not patient_id:
            raise InputError(f"{where}: empty patient_id")
        lesion_id = ((row.get("lesion_id") or "").strip() or None) if with_lesions else None
        if with_lesions and lesion_id is None:
            raise InputError(f"{where}: empty lesion_id (the manifest has a lesion_id column)")
        key = (patient_id, lesion_id)
        if key in first_line:
            what = f"patient_id {patient_id!r}" + (f" lesion_id {lesion_id!r}" if lesion_id else "")
            raise InputError(f"{where}: duplicate {what} (first on line {first_line[key]})")
        first_line[key] = line
        label = _label(row.get("label") or "", where, positive, seen_labels) if labelled else None
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        for modality in modalities:
            image = (row.get(f"{modality}_image") or "").strip()
            mask = (row.get(f"{modality}_mask") or "").strip()
            if bool(image) != bool(mask):
                empty = f"{modality}_mask" if image else f"{modality}_image"
                raise InputError(
                    f"{where}: {empty} is empty but its pair is set (leave both empty for a missing modality)"
                )
            if image:
                images[modality] = _resolve(base, image)
                masks[modality] = _resolve(base, mask)
        if not images:
            raise InputError(f"{where}: no modality has an image for patient_id {patient_id!r}")
        cases.append(Case(patient_id, lesion_id, label, line, images, masks))
    return cases


def _label(value: str, where: str, positive: str | None, seen: dict[str, int]) -> int:
    """1 for the positive class. Without ``positive``: SCLC/NSCLC or 1/0. With it: ``positive`` is 1 and the
    one other value the manifest uses is 0 (a third value is an error naming its line)."""
    if not value.strip():
        raise InputError(
            f"{where}: empty label (label every row, or none: a manifest of patients to be predicted)"
        )
    if positive is None:
        return parse_label(value, where)
    key = value.strip()
    if not key:
        raise InputError(f"{where}: empty label")
    seen.setdefault(key, len(seen))
    if len(seen) > 2 + (positive not in seen):
        others = [v for v in seen if v != positive]
        raise InputError(
            f"{where}: label {key!r} is a third class (the manifest already has {', '.join(others[:2])})"
        )
    return int(key == positive)


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
