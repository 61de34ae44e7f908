"""``scan``: symbolic links are followed, entries that resolve to one file are named, and labels are optional
(a cohort to be predicted)."""

from __future__ import annotations

import csv


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"scan reads names only")


def _cohort(tmp_path):
    images = tmp_path / "images"
    for patient in ("p1", "p3"):
        for m in ("T1", "FLAIR"):
            _touch(images / patient / f"{m}.nii.gz")
            _touch(images / patient / f"{m}_mask.nii.gz")
    elsewhere = tmp_path / "other-disk" / "p2"  # a patient folder kept elsewhere, linked in
    for m in ("T1", "FLAIR"):
        _touch(elsewhere / f"{m}.nii.gz")
        _touch(elsewhere / f"{m}_mask.nii.gz")
    (images / "p2").symlink_to(elsewhere, target_is_directory=True)
    (images / "p1" / "loop").symlink_to(images, target_is_directory=True)  # a link back up must not loop
    labels = tmp_path / "labels.csv"
    labels.write_text("patient_id,label\np1,1\np2,0\np3,0\n")
    return images, labels


def _scan(images, labels, capsys):
    from mmt_tune.data import scan

    argv = [
        str(images),
        "--image",
        "{patient}/{modality}.nii.gz",
        "--mask",
        "{patient}/{modality}_mask.nii.gz",
    ]
    code = scan.main([*argv, *(["--labels", str(labels)] if labels is not None else [])])
    with (images / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle)) if code == 0 else None
    return code, rows, capsys.readouterr()


def test_a_linked_patient_folder_is_scanned_like_any_other(tmp_path, capsys):
    images, labels = _cohort(tmp_path)
    code, rows, printed = _scan(images, labels, capsys)
    assert code == 0, printed.err
    assert [r["patient_id"] for r in rows] == ["p1", "p2", "p3"]
    p2 = next(r for r in rows if r["patient_id"] == "p2")
    assert (images / p2["T1_image"]).resolve() == (tmp_path / "other-disk" / "p2" / "T1.nii.gz").resolve()
    assert "warning" not in printed.err


def test_an_image_linked_to_another_patients_file_is_warned_about(tmp_path, capsys):
    images, labels = _cohort(tmp_path)
    (images / "p3" / "T1.nii.gz").unlink()
    (images / "p3" / "T1.nii.gz").symlink_to(images / "p1" / "T1.nii.gz")
    code, rows, printed = _scan(images, labels, capsys)
    assert code == 0
    warnings = [line for line in printed.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "p1 T1 image, p3 T1 image are one file" in warnings[0] and "p1/T1.nii.gz" in warnings[0]


def test_without_labels_the_manifest_has_none_and_reads_as_a_cohort_to_predict(tmp_path, capsys):
    from mmt_tune.data.manifest import read_manifest

    images, _ = _cohort(tmp_path)
    code, rows, printed = _scan(images, None, capsys)
    assert code == 0, printed.err
    assert [r["patient_id"] for r in rows] == ["p1", "p2", "p3"] and {r["label"] for r in rows} == {""}
    assert "no --labels: the manifest has no labels" in printed.out
    cases = read_manifest(images / "manifest.csv")
    assert [c.label for c in cases] == [None, None, None]
    assert sorted(cases[0].images) == ["FLAIR", "T1"]
