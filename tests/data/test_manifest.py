from __future__ import annotations

import pytest

from mmt_tune.data.manifest import read_manifest
from mmt_tune.errors import InputError

HEADER = "patient_id,label,T1WI_image,T1WI_mask,FLAIR_image,FLAIR_mask,DWI_image,DWI_mask"


def _write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_parses_labels_ids_missing_modalities_and_relative_paths(tmp_path):
    path = _write(
        tmp_path, "007,SCLC,a.nii,am.nii,,,/abs/d.nii,/abs/dm.nii", "008,0,b.nii,bm.nii,c.nii,cm.nii,,"
    )
    first, second = read_manifest(path)
    assert first.patient_id == "007", "identifiers stay strings"
    assert (first.label, second.label) == (1, 0)
    assert set(first.images) == {"T1WI", "DWI"} and set(second.images) == {"T1WI", "FLAIR"}
    assert first.images["T1WI"] == tmp_path / "a.nii"
    assert str(first.masks["DWI"]) == "/abs/dm.nii"
    assert first.line == 2 and second.line == 3


@pytest.mark.parametrize(
    "rows, header, message",
    [
        (
            ["1,SCLC,a,b,c,d,e,f"],
            "patient_id,label,T1WI_image,T1WI_mask,FLAIR_image,FLAIR_mask,DWI_image",
            "missing required column(s): DWI_mask",
        ),
        (["1,SCLC,a,b,,,,", "1,NSCLC,c,d,,,,"], HEADER, "line 3: duplicate patient_id '1' (first on line 2)"),
        (
            ["1,adeno,a,b,,,,"],
            HEADER,
            "line 2: label 'adeno' is not binary (expected SCLC/NSCLC or 1/0; for other label values, name the positive class with --positive",
        ),
        (["1,2,a,b,,,,"], HEADER, "label '2' is not binary"),
        (["1,SCLC,a,,,,,"], HEADER, "line 2: T1WI_mask is empty but its pair is set"),
        (["1,SCLC,,,,,,"], HEADER, "line 2: no modality has an image"),
        ([",SCLC,a,b,,,,"], HEADER, "line 2: empty patient_id"),
        ([], HEADER, "manifest has no rows"),
    ],
)
def test_structural_errors_name_file_and_line(tmp_path, rows, header, message):
    path = _write(tmp_path, *rows, header=header)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_duplicate_lesion_is_an_error_but_two_lesions_are_not(tmp_path):
    header = "patient_id,lesion_id," + HEADER.split(",", 1)[1]
    ok = _write(tmp_path, "1,1,SCLC,a,b,,,,", "1,2,SCLC,a,c,,,,", header=header)
    assert [c.lesion_id for c in read_manifest(ok)] == ["1", "2"]
    bad = _write(tmp_path, "1,1,SCLC,a,b,,,,", "1,1,SCLC,a,c,,,,", header=header)
    with pytest.raises(InputError, match="duplicate patient_id '1' lesion_id '1'"):
        read_manifest(bad)


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_labels_are_all_or_none(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("patient_id,T1_image,T1_mask\np1,a.nii.gz,a_mask.nii.gz\n")  # no label column
    assert [c.label for c in read_manifest(path)] == [None]
    path.write_text("patient_id,label,T1_image,T1_mask\np1,1,a.nii.gz,m.nii.gz\np2,,b.nii.gz,n.nii.gz\n")
    with pytest.raises(InputError, match=r"m.csv line 3: empty label \(label every row, or none"):
        read_manifest(path)
