from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from mmt_tune.data import synth
from mmt_tune.data.synth import PhantomConfig, generate_case, generate_cohort
from mmt_tune.errors import InputError


def _arrays(folder):
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted(folder.rglob("*.nii.gz"))}


def test_same_seed_gives_identical_cohort(tmp_path):
    config = PhantomConfig(n_sclc=2, n_nsclc=3, seed=11, max_lesions=2)
    a = generate_cohort(tmp_path / "a", config, progress=False)
    b = generate_cohort(tmp_path / "b", config, progress=False)
    assert a.read_bytes() == b.read_bytes()
    arrays_a, arrays_b = _arrays(tmp_path / "a"), _arrays(tmp_path / "b")
    assert arrays_a.keys() == arrays_b.keys() and len(arrays_a) > 5
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def test_different_seed_gives_different_images(tmp_path):
    a = generate_case(PhantomConfig(seed=1), 0, "PH0001", "SCLC")
    b = generate_case(PhantomConfig(seed=2), 0, "PH0001", "SCLC")
    assert not np.array_equal(a.images["DWI"], b.images["DWI"])


def test_default_cohort_follows_paper_ratio_and_contract(tmp_path):
    assert synth.main(["--out", str(tmp_path), "--patients", "14", "--seed", "0", "--no-progress"]) == 0
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open()))
    assert [r["label"] for r in rows].count("SCLC") == round(14 * 100 / 279)
    assert len(rows) == 14 and len({r["patient_id"] for r in rows}) == 14
    image = sitk.ReadImage(str(tmp_path / rows[0]["DWI_image"]))
    mask = sitk.ReadImage(str(tmp_path / rows[0]["DWI_mask"]))
    spacing = image.GetSpacing()
    assert spacing[2] > 2 * spacing[0], "slices should be thicker than in-plane voxels, like clinical MRI"
    assert mask.GetSize() == image.GetSize() and mask.GetSpacing() == spacing
    assert set(np.unique(sitk.GetArrayFromImage(mask))) == {0, 1}
    assert PhantomConfig().n_sclc == 100 and PhantomConfig().n_nsclc == 179


def test_multiple_lesions_get_lesion_ids_and_own_masks(tmp_path):
    manifest = generate_cohort(
        tmp_path, PhantomConfig(n_sclc=4, n_nsclc=4, seed=5, max_lesions=3), progress=False
    )
    rows = list(csv.DictReader(manifest.open()))
    assert "lesion_id" in rows[0]
    assert len(rows) > 8, "with up to 3 lesions some patients should have more than one"
    masks = {r["T1WI_mask"] for r in rows}
    assert len(masks) == len(rows)
    for row in rows:  # every lesion mask is non-empty
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / row["T1WI_mask"]))).sum() >= 8


def test_missing_rate_leaves_empty_cells_and_no_file(tmp_path):
    manifest = generate_cohort(
        tmp_path, PhantomConfig(n_sclc=5, n_nsclc=5, seed=2, missing_rate=1.0), progress=False
    )
    for row in csv.DictReader(manifest.open()):
        empty = [m for m in ("T1WI", "FLAIR", "DWI") if row[f"{m}_image"] == ""]
        assert len(empty) == 1 and row[f"{empty[0]}_mask"] == ""
        assert not (tmp_path / "images" / f"{row['patient_id']}_{empty[0]}.nii.gz").exists()


def _lesion_mean(config, modality, label, n=30):
    values = []
    for i in range(n):
        case = generate_case(config, i, f"P{i}", label)
        values.append(case.images[modality][case.masks[0].astype(bool)].mean())
    return np.array(values)


def test_dwi_effect_makes_sclc_brighter_and_zero_effect_does_not():
    strong = PhantomConfig(effects={"T1WI": 0.0, "FLAIR": 0.0, "DWI": 3.0}, seed=4)
    sclc, nsclc = _lesion_mean(strong, "DWI", "SCLC"), _lesion_mean(strong, "DWI", "NSCLC")
    assert sclc.mean() > nsclc.mean() + 2 * np.sqrt((sclc.var() + nsclc.var()) / 30)
    null = PhantomConfig(effects={"T1WI": 0.0, "FLAIR": 0.0, "DWI": 0.0}, size_effect=0.0, seed=4)
    sclc0, nsclc0 = _lesion_mean(null, "DWI", "SCLC"), _lesion_mean(null, "DWI", "NSCLC")
    # Same per-patient streams: with no effect the class cannot change the lesion's DWI signal at all.
    np.testing.assert_allclose(sclc0, nsclc0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--effect", "PET=1"], "MODALITY=VALUE"),
        (["--effect", "DWI=big"], "must be a number"),
        (["--patients", "1"], "--patients must be >= 2"),
        (["--lesions", "0"], "max_lesions must be >= 1"),
    ],
)
def test_bad_options_fail_with_one_clear_line(tmp_path, capsys, argv, message):
    try:
        code = synth.main(["--out", str(tmp_path / "x"), "--no-progress", *argv])
    except SystemExit as exc:  # argparse rejects malformed values itself
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not (tmp_path / "x" / "manifest.csv").exists()


def test_config_validation():
    with pytest.raises(InputError, match="unknown modality"):
        PhantomConfig(effects={"CT": 1.0}).validate()
