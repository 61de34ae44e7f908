"""Read and validate a cohort manifest (docs/design.md "Data contracts").

``patient_id,label,T1WI_image,T1WI_mask,FLAIR_image,FLAIR_mask,DWI_image,DWI_mask`` (+ optional ``lesion_id``).
An empty image/mask pair means the modality is missing for that case. Paths are relative to the manifest's
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
    label: int  # 1 = SCLC (positive class), 0 = NSCLC
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
    raise InputError(f"{where}: label {value!r} is not binary (expected SCLC/NSCLC or 1/0)")


def read_manifest(path: str | Path, modalities: Sequence[str] = MODALITIES) -> list[Case]:
    """Parse ``path`` into cases; raise :class:`InputError` naming the file and line on structural errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    base = path.parent
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required_columns(modalities) if c not in header]
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

    cases: list[Case] = []
    first_line: dict[tuple[str, str | None], int] = {}
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
        label = parse_label(row.get("label") or "", where)
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


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
