"""A manifest from a folder of images: ``python -m mmt_tune.data.scan DIR --image PATTERN --mask PATTERN
--labels labels.csv [--out DIR/manifest.csv]``.

Patterns are paths below DIR with ``{patient}`` and ``{modality}`` placeholders, e.g.
``--image "{patient}/{modality}.nii.gz" --mask "{patient}/{modality}_mask.nii.gz"``. Every file matching the
image pattern (and not the mask pattern) is an image; its mask is the mask pattern filled with the same
patient and modality. ``labels.csv`` has ``patient_id`` and ``label`` columns. The command prints, per
patient, what is missing (a modality without image, an image without mask, a patient without label or without
images) and writes the manifest (paths relative to it) for the patients it can use; a missing modality is an
empty cell, as the manifest contract says. Symbolic links are followed (to folders too); the manifest holds
the file each resolves to, and a warning names entries that resolve to the same file.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmt_tune.cli import HelpFormatter, add_version
from mmt_tune.errors import InputError, describe

FIELDS = ("patient", "modality")


def pattern_regex(pattern: str, where: str) -> re.Pattern:
    """``{patient}/{modality}.nii.gz`` -> a regex with named groups (each placeholder once, both required)."""
    for name in FIELDS:
        if pattern.count(f"{{{name}}}") != 1:
            raise InputError(f"{where}: {pattern!r} must contain {{{name}}} exactly once")
    parts = re.split(r"(\{patient\}|\{modality\})", pattern)
    regex = "".join(
        f"(?P<{p[1:-1]}>[^/]+?)" if p in ("{patient}", "{modality}") else re.escape(p) for p in parts
    )
    return re.compile(f"^{regex}$")


@dataclass
class Scan:
    modalities: tuple[str, ...]
    rows: list[dict[str, str]]  # manifest rows (paths relative to the manifest's folder)
    problems: list[str] = field(default_factory=list)  # one line per patient with something missing
    warnings: list[str] = field(default_factory=list)  # one line per file that two entries resolve to


def scan_folder(
    folder: Path,
    image: str,
    mask: str,
    labels: dict[str, str] | None,
    out: Path,
    modalities: Sequence[str] | None = None,
) -> Scan:
    """Match the folder's files to the patterns; see the module docstring."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    image_re, mask_re = pattern_regex(image, "--image"), pattern_regex(mask, "--mask")
    files = _files(folder)
    found: dict[str, dict[str, str]] = {}
    for relative in files:
        if mask_re.match(relative):
            continue
        match = image_re.match(relative)
        if match:
            found.setdefault(match["patient"], {})[match["modality"]] = relative
    seen = sorted({m for images in found.values() for m in images})
    modalities = tuple(modalities or seen)
    if not modalities:
        raise InputError(f"{folder}: no file matches --image {image!r}")
    rows, problems = [], []
    for patient in sorted(set(found) | set(labels or {})):
        missing = []
        if labels is not None and patient not in labels:
            problems.append(f"{patient}: images but no label in --labels: left out")
            continue
        images = found.get(patient, {})
        row = {"patient_id": patient, "label": labels[patient] if labels is not None else ""}
        for modality in modalities:
            row[f"{modality}_image"] = row[f"{modality}_mask"] = ""
            if modality not in images:
                missing.append(f"{modality} (no image)")
                continue
            mask_path = mask.format(patient=patient, modality=modality)
            if not (folder / mask_path).is_file():
                missing.append(f"{modality} (image without mask {mask_path})")
                continue
            row[f"{modality}_image"] = _relative(folder / images[modality], out.parent)
            row[f"{modality}_mask"] = _relative(folder / mask_path, out.parent)
        if all(not row[f"{m}_image"] for m in modalities):
            problems.append(f"{patient}: no usable image: left out")
            continue
        if missing:
            problems.append(f"{patient}: missing {', '.join(missing)}")
        rows.append(row)
    return Scan(modalities, rows, problems, _shared_files(rows, modalities))


def _files(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative, sorted), following symbolic links to folders (a patient folder
    that links elsewhere), each real folder walked once (a link back up cannot loop)."""
    import os

    seen, files = set(), []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        base = Path(root)
        files += [(base / n).relative_to(folder).as_posix() for n in names if (base / n).is_file()]
    return sorted(files)


def _shared_files(rows: list[dict[str, str]], modalities: Sequence[str]) -> list[str]:
    """One line per real file that two manifest entries resolve to (a link to another patient's image, or
    one file for two sequences): one scan's features would be counted twice."""
    users: dict[str, list[str]] = {}
    for row in rows:
        for m in modalities:
            for kind in ("image", "mask"):
                if row[f"{m}_{kind}"]:  # already the resolved path (links followed)
                    users.setdefault(row[f"{m}_{kind}"], []).append(f"{row['patient_id']} {m} {kind}")
    return [
        f"{', '.join(who)} are one file ({path}): check the links; its features would count more than once"
        for path, who in users.items()
        if len(who) > 1
    ]


def _relative(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def read_labels(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputError(f"{path}: labels file not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not {"patient_id", "label"} <= set(reader.fieldnames or []):
            raise InputError(f"{path}: expected columns patient_id and label")
        labels = {}
        for line, row in enumerate(reader, start=2):
            patient = (row["patient_id"] or "").strip()
            if not patient or not (row["label"] or "").strip():
                raise InputError(f"{path} line {line}: empty patient_id or label")
            if patient in labels:
                raise InputError(f"{path} line {line}: patient_id {patient!r} appears twice")
            labels[patient] = row["label"].strip()
    return labels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmt_tune.data.scan",
        description="Write a manifest from a folder of images and masks named by a pattern.",
        formatter_class=HelpFormatter,
    )
    add_version(parser)
    parser.add_argument("folder", type=Path, help="folder holding the images and masks")
    parser.add_argument(
        "--image", required=True, help='image path pattern, e.g. "{patient}/{modality}.nii.gz"'
    )
    parser.add_argument(
        "--mask", required=True, help='mask path pattern, e.g. "{patient}/{modality}_mask.nii.gz"'
    )
    parser.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="CSV with patient_id and label columns (leave it out for patients to be predicted: the manifest's "
        "label column stays empty; a study needs labels)",
    )
    parser.add_argument("--modalities", default=None, help="comma-separated (default: every one found)")
    parser.add_argument(
        "--out", type=Path, default=None, help="manifest to write (default: FOLDER/manifest.csv)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mmt_tune._io import atomic_path, check_output_file

    args = build_parser().parse_args(argv)
    out = args.out or args.folder / "manifest.csv"
    try:
        check_output_file(out, "--out")
        labels = read_labels(args.labels) if args.labels is not None else None
        modalities = [m for m in args.modalities.split(",") if m] if args.modalities else None
        result = scan_folder(args.folder, args.image, args.mask, labels, out, modalities)
        for line in result.problems:
            print(f"note: {line}", file=sys.stderr)
        for line in result.warnings:
            print(f"warning: {line}", file=sys.stderr)
        if not result.rows:
            what = "a label and a usable image" if labels is not None else "a usable image"
            raise InputError(f"{args.folder}: no patient has {what}: nothing written")
        columns = ["patient_id", "label", *(f"{m}_{k}" for m in result.modalities for k in ("image", "mask"))]
        with atomic_path(out) as tmp, Path(tmp).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(result.rows)
    except (InputError, OSError) as exc:
        print(f"error: {describe(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {len(result.rows)} patients, modalities {', '.join(result.modalities)} -> {out}")
    if labels is None:
        print("no --labels: the manifest has no labels (patients to be predicted; a study needs labels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
