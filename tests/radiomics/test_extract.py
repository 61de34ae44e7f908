"""Extraction end to end with real PyRadiomics on real (phantom) NIfTI files and a real local Ray."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from mmt_tune.data.table import modality_columns, read_feature_table
from mmt_tune.errors import InputError
from mmt_tune.radiomics import cli as extract_cli
from mmt_tune.radiomics.cache import FeatureCache
from mmt_tune.radiomics.extract import extract_features
from mmt_tune.radiomics.settings import load_settings


@pytest.fixture(scope="module")
def extracted(small_cohort, ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "features.parquet"
    return extract_features(small_cohort, "fast", out, progress=False)


def test_end_to_end_table_follows_the_contract(extracted, small_cohort):
    table, metadata = read_feature_table(extracted.output)
    assert len(table) == 8 and list(table.columns[:2]) == ["patient_id", "label"]
    assert set(table["label"]) == {0, 1} and table["label"].sum() == 3
    columns = modality_columns(table)
    assert all(len(cols) == len(columns["T1WI"]) > 50 for cols in columns.values())
    assert "DWI__original_glcm_Contrast" in table.columns
    assert not any("diagnostics" in c for c in table.columns)
    assert metadata["pyradiomics_version"].lstrip("v").startswith("3.")
    assert metadata["settings_sha256"] == load_settings("fast").sha256
    assert extracted.n_computed == 8 * 3 - 1 and extracted.n_cached == 0
    assert not (extracted.output.parent / "failures.csv").exists()
    assert extracted.warnings == [], "ordinary 3-D scans with binary masks raise no warning"


def test_missing_modality_gives_nan_columns_not_an_error(extracted):
    table = extracted.table
    dwi = modality_columns(table)["DWI"]
    assert table.loc[1, dwi].isna().all(), "patient 2 has no DWI"
    assert table.loc[1, modality_columns(table)["T1WI"]].notna().all()
    assert table.drop(index=1)[dwi].notna().all().all()


def test_rerun_is_served_from_the_cache(extracted, small_cohort, tmp_path):
    out = tmp_path / "again.parquet"
    result = extract_features(
        small_cohort,
        "fast",
        out,
        cache_dir=extracted.output.parent / ".mmt-cache" / "radiomics",
        progress=False,
    )
    assert (result.n_cached, result.n_computed) == (23, 0)
    pd.testing.assert_frame_equal(result.table, extracted.table)


def test_unchanged_rerun_is_up_to_date_and_a_changed_label_is_not(small_cohort, extracted, tmp_path):
    cache_dir = extracted.output.parent / ".mmt-cache" / "radiomics"
    out = tmp_path / "features.parquet"
    extract_features(small_cohort, "fast", out, cache_dir=cache_dir, progress=False)
    written = out.stat().st_mtime_ns
    again = extract_features(small_cohort, "fast", out, cache_dir=cache_dir, progress=False)
    assert again.up_to_date and again.n_computed == 0 and out.stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(again.table, extracted.table)
    # Flip one label: the table must be rewritten (from the cache), with the new label.
    manifest = tmp_path / "manifest.csv"
    rows = pd.read_csv(small_cohort, dtype=str, keep_default_na=False)
    rows.loc[0, "label"] = "NSCLC" if rows.loc[0, "label"] == "SCLC" else "SCLC"
    rows = rows.assign(
        **{
            c: [str(small_cohort.parent / v) if v else "" for v in rows[c]]
            for c in rows.columns
            if c.endswith(("_image", "_mask"))
        }
    )
    rows.to_csv(manifest, index=False)
    changed = extract_features(manifest, "fast", out, cache_dir=cache_dir, progress=False)
    assert not changed.up_to_date and changed.n_computed == 0
    assert changed.table.loc[0, "label"] == 1 - extracted.table.loc[0, "label"]


def test_changed_settings_or_image_miss_the_cache(extracted, small_cohort, tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.key("a", "b", "s", 1, "3.1.0") != cache.key("a", "b", "s2", 1, "3.1.0")
    assert cache.key("a", "b", "s", 1, "3.1.0") != cache.key("a2", "b", "s", 1, "3.1.0")
    assert cache.key("a", "b", "s", 1, "3.1.0") != cache.key("a", "b", "s", 2, "3.1.0")


def test_interrupted_run_resumes_from_cache(extracted, small_cohort, tmp_path):
    """SIGKILL a real CLI run part-way, then resume: finished scans are not recomputed, the table is complete."""
    cache_dir = tmp_path / "cache"
    out = tmp_path / "features.parquet"
    cmd = [
        sys.executable,
        "-m",
        "mmt_tune.extract",
        "--manifest",
        str(small_cohort),
        "--params",
        "fast",
        "--out",
        str(out),
        "--cache-dir",
        str(cache_dir),
        "--workers",
        "1",
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while len(FeatureCache(cache_dir)) < 4:
            assert proc.poll() is None, "extraction finished before it could be interrupted"
            assert time.time() < deadline, "no progress within 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        proc.wait()
    done_before = len(FeatureCache(cache_dir))
    assert 4 <= done_before < 23 and not out.exists()
    result = extract_features(small_cohort, "fast", out, cache_dir=cache_dir, progress=False)
    assert result.n_cached == done_before and result.n_cached + result.n_computed == 23
    pd.testing.assert_frame_equal(result.table, extracted.table)


# ----------------------------------------------------------------------------------------------- bad input
def _bad_cohort(small_cohort, tmp_path):
    """Copy of the small cohort with one defect per patient; returns (manifest path, expected errors)."""
    root = tmp_path / "bad"
    shutil.copytree(small_cohort.parent, root)
    rows = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)

    def image(row, modality):
        return root / rows.loc[row, f"{modality}_image"]

    def write(array_like, path, spacing=None, reference=None):
        img = sitk.GetImageFromArray(array_like)
        img.CopyInformation(reference) if reference is not None else None
        if spacing:
            img.SetSpacing(spacing)
        sitk.WriteImage(img, str(path))

    ref = sitk.ReadImage(str(image(0, "T1WI")))
    mask0 = sitk.GetArrayFromImage(sitk.ReadImage(str(root / rows.loc[0, "T1WI_mask"])))
    # row 0: T1WI image file missing
    image(0, "T1WI").unlink()
    # row 2: unreadable FLAIR image (not an image at all)
    image(2, "FLAIR").write_bytes(b"this is not a NIfTI file")
    # row 3: T1WI mask with a different spacing from its image
    write(mask0, root / "masks" / "spacing.nii.gz", spacing=(1.0, 1.0, 5.0))
    rows.loc[3, "T1WI_mask"] = "masks/spacing.nii.gz"
    # row 4: empty FLAIR mask
    write(np.zeros_like(mask0), root / "masks" / "empty.nii.gz", reference=ref)
    rows.loc[4, "FLAIR_mask"] = "masks/empty.nii.gz"
    # row 5: DWI mask whose lesion is labelled 2, not 1
    write(mask0 * 2, root / "masks" / "label2.nii.gz", reference=ref)
    rows.loc[5, "DWI_mask"] = "masks/label2.nii.gz"
    # row 6: T1WI mask with a different size (cropped)
    write(mask0[:, :-4, :], root / "masks" / "small.nii.gz")
    rows.loc[6, "T1WI_mask"] = "masks/small.nii.gz"
    # row 7: FLAIR image cut to half its voxel bytes and re-compressed (a valid gzip stream): SimpleITK would
    # read it with the missing voxels as zeros
    data = gzip.decompress(image(7, "FLAIR").read_bytes())
    image(7, "FLAIR").write_bytes(gzip.compress(data[: len(data) // 2]))
    rows.to_csv(root / "manifest.csv", index=False)
    expected = {
        (rows.loc[0, "patient_id"], "T1WI"): "file not found",
        (rows.loc[2, "patient_id"], "FLAIR"): "unreadable image",
        (rows.loc[3, "patient_id"], "T1WI"): "mask spacing (1, 1, 5) differs from image spacing",
        (rows.loc[4, "patient_id"], "FLAIR"): "empty mask",
        (rows.loc[5, "patient_id"], "DWI"): "label value 1 absent in mask (values present: 2)",
        (rows.loc[6, "patient_id"], "T1WI"): "mask size",
        (rows.loc[7, "patient_id"], "FLAIR"): "truncated image (",
    }
    return root / "manifest.csv", expected


def test_per_case_failures_are_listed_and_do_not_stop_the_others(small_cohort, ray_local, tmp_path, capsys):
    manifest, expected = _bad_cohort(small_cohort, tmp_path)
    out = tmp_path / "out" / "features.parquet"
    code = extract_cli.main(
        ["--manifest", str(manifest), "--params", "fast", "--out", str(out), "--no-progress"]
    )
    assert code == extract_cli.EXIT_FAILURES
    failures = pd.read_csv(out.parent / "failures.csv", dtype=str, keep_default_na=False)
    got = {(r.patient_id, r.modality): (r.file, r.error) for r in failures.itertuples()}
    assert got.keys() == expected.keys()
    for key, fragment in expected.items():
        file, error = got[key]
        assert fragment in error, (key, error)
        assert file.endswith((".nii.gz", ".nii")), file
    table = pd.read_parquet(out)
    assert len(table) == 1, "the untouched patient is still extracted"
    assert not {k[0] for k in expected} & set(table["patient_id"])
    err = capsys.readouterr().err
    assert "7 scan(s) failed" in err
    # --allow-failures: same output, exit 0
    assert (
        extract_cli.main(
            [
                "--manifest",
                str(manifest),
                "--params",
                "fast",
                "--out",
                str(out),
                "--no-progress",
                "--allow-failures",
            ]
        )
        == 0
    )


def test_structural_errors_exit_2_with_one_line_and_write_nothing(small_cohort, tmp_path, capsys):
    bad = tmp_path / "manifest.csv"
    text = small_cohort.read_text().splitlines()
    bad.write_text("\n".join([text[0], text[1], text[1]]) + "\n")  # duplicate patient
    out = tmp_path / "out" / "features.parquet"
    assert extract_cli.main(["--manifest", str(bad), "--params", "fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "line 3: duplicate patient_id" in err[0]
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_invalid_settings_name_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("setting:\n  binWidth: -3\nimageType:\n  Original: {}\nfeatureClass:\n  notaclass:\n")
    with pytest.raises(InputError, match=rf"{bad}: invalid PyRadiomics settings"):
        load_settings(bad)
    with pytest.raises(InputError, match="settings file not found"):
        load_settings(tmp_path / "none.yaml")
    (tmp_path / "broken.yaml").write_text("setting: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_settings(tmp_path / "broken.yaml")


def test_shipped_settings_load():
    fast, paper = load_settings("fast"), load_settings("paper")
    assert set(paper.params["imageType"]) == {
        "Original",
        "Wavelet",
        "LoG",
        "Square",
        "SquareRoot",
        "Logarithm",
        "Exponential",
        "Gradient",
        "LBP3D",
    }
    assert set(paper.params["featureClass"]) == {
        "shape",
        "firstorder",
        "glcm",
        "glrlm",
        "glszm",
        "gldm",
        "ngtdm",
    }
    assert fast.sha256 != paper.sha256


def test_paper_settings_produce_every_filter_of_the_paper(small_cohort):
    """All nine image types of paper.yaml yield features (PyRadiomics would drop LBP3D silently without trimesh)."""
    from mmt_tune.data.manifest import read_manifest
    from mmt_tune.radiomics.worker import extract_one

    case = read_manifest(small_cohort)[0]
    settings = load_settings("paper")
    outcome = extract_one(
        str(case.images["FLAIR"]), str(case.masks["FLAIR"]), settings.params, settings.sha256, 1
    )
    assert "error" not in outcome, outcome
    prefixes = {name.split("_", 1)[0].split("-")[0] for name in outcome["features"]}
    assert prefixes == {
        "original",
        "wavelet",
        "log",
        "square",
        "squareroot",
        "logarithm",
        "exponential",
        "gradient",
        "lbp",
    }
    assert len(outcome["features"]) > 1800


def test_a_filter_dropped_by_pyradiomics_is_a_failure():
    from mmt_tune.radiomics.worker import _missing_image_types

    settings = {"imageType": {"Original": {}, "LBP3D": {}, "Square": {}}}
    assert _missing_image_types(
        settings, {"original_glcm_Contrast": 1.0, "squareroot_glcm_Contrast": 1.0}
    ) == ["LBP3D", "Square"]
    assert _missing_image_types(settings, {"original_a_b": 1, "lbp-3D-k_a_b": 1, "square_a_b": 1}) == []


def test_lesion_level_manifest_gives_one_row_per_lesion(ray_local, tmp_path):
    from mmt_tune.data.synth import PhantomConfig, generate_cohort

    manifest = generate_cohort(
        tmp_path / "c", PhantomConfig(n_sclc=2, n_nsclc=2, seed=9, max_lesions=3), progress=False
    )
    manifest_rows = pd.read_csv(manifest, dtype=str)
    result = extract_features(manifest, "fast", tmp_path / "f.parquet", progress=False)
    assert not result.failures
    table, metadata = read_feature_table(tmp_path / "f.parquet")
    assert metadata["unit"] == "lesion"
    assert list(table.columns[:3]) == ["patient_id", "lesion_id", "label"]
    assert (
        table[["patient_id", "lesion_id"]].values.tolist()
        == manifest_rows[["patient_id", "lesion_id"]].values.tolist()
    )
    # Lesions of one patient share the images but not the masks, so their shape features differ.
    twice = table[table.duplicated("patient_id", keep=False)]
    assert len(twice) >= 2
    assert twice.groupby("patient_id")["T1WI__original_shape_VoxelVolume"].nunique().max() > 1


def test_settings_with_empty_sections_and_custom_label(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("setting:\nimageType:\n  Original: {}\n")
    assert load_settings(path, validate=False).label == 1
    with pytest.raises(InputError, match="'/setting'"):  # PyRadiomics' schema: setting must be a mapping
        load_settings(path)
    path.write_text("setting:\n  label: 2\n")
    assert load_settings(path).label == 2


def test_truncated_nifti_files_are_detected(small_cohort, tmp_path):
    """Plain and gzipped NIfTI cut short, and a gzip stream cut mid-way; the intact file passes."""
    import gzip

    from mmt_tune.radiomics.worker import truncated

    rows = pd.read_csv(small_cohort, dtype=str, keep_default_na=False)
    original = small_cohort.parent / rows.loc[0, "T1WI_image"]
    assert truncated(original) is None
    data = gzip.decompress(original.read_bytes())
    plain = tmp_path / "plain.nii"
    plain.write_bytes(data)
    assert truncated(plain) is None
    plain.write_bytes(data[:-10])
    assert "bytes of data where the header" in truncated(plain)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(original.read_bytes()[:200])
    assert "compressed stream ends early" in truncated(cut)
    assert truncated(tmp_path / "image.nrrd") is None  # other formats are left to SimpleITK


def test_an_unwritable_out_fails_before_any_work(small_cohort, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "features.parquet"
    assert extract_cli.main(["--manifest", str(small_cohort), "--params", "fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{blocker}: cannot write here (--out)" in err[0]


def test_odd_but_accepted_scans_are_extracted_with_a_warning(tmp_path):
    from mmt_tune.radiomics.settings import load_settings
    from mmt_tune.radiomics.worker import extract_one

    settings = load_settings("fast")
    rng = np.random.default_rng(0)
    # An integer image used as its own mask: several labels, and identical to the image.
    volume = rng.integers(0, 4, size=(8, 24, 24)).astype(np.int16)
    volume[2:6, 8:16, 8:16] = 1
    path = tmp_path / "image.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(path))
    outcome = extract_one(str(path), str(path), settings.params, settings.sha256, 1)
    assert "features" in outcome
    assert any("identical to its image" in w for w in outcome["warnings"])
    assert any("mask has 3 labels (1, 2, 3); only 1 is used" in w for w in outcome["warnings"])
    # A 2-D image and mask.
    image = sitk.GetImageFromArray(rng.normal(100, 10, size=(32, 32)).astype(np.float32))
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[10:20, 10:20] = 1
    sitk.WriteImage(image, str(tmp_path / "flat.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / "flat_mask.nii.gz"))
    flat = extract_one(
        str(tmp_path / "flat.nii.gz"), str(tmp_path / "flat_mask.nii.gz"), settings.params, settings.sha256, 1
    )
    assert any(w.startswith("2-D image (32x32)") for w in flat.get("warnings", [])), flat


def test_the_extractor_keys_its_cache_by_every_setting(small_cohort, ray_local, tmp_path, extracted):
    """The key the extractor builds (not only FeatureCache.key): the same cache folder never serves features
    computed with other settings, and a changed setting is recomputed."""
    cache = tmp_path / "cache"
    first = extract_features(
        small_cohort, "fast", tmp_path / "a" / "f.parquet", cache_dir=cache, progress=False
    )
    assert first.n_computed == 23
    settings = load_settings("fast").text.replace("binWidth: 5", "binWidth: 7")
    assert "binWidth: 7" in settings
    (tmp_path / "wider-bins.yaml").write_text(settings)
    second = extract_features(
        small_cohort,
        tmp_path / "wider-bins.yaml",
        tmp_path / "b" / "f.parquet",
        cache_dir=cache,
        progress=False,
    )
    assert second.n_cached == 0 and second.n_computed == 23
    texture = [c for c in second.table.columns if "glcm" in c][:5]
    assert not np.allclose(second.table[texture], first.table[texture])


def test_the_settings_label_value_selects_the_lesion(small_cohort, ray_local, tmp_path):
    """Masks whose lesion is labelled 2: extracted with `label: 2`, a failure with the default label 1."""
    root = tmp_path / "cohort"
    shutil.copytree(small_cohort.parent, root)
    rows = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False).iloc[:3]
    for mask in {m for column in ("T1WI_mask", "FLAIR_mask", "DWI_mask") for m in rows[column] if m}:
        image = sitk.ReadImage(str(root / mask))
        sitk.WriteImage(sitk.Cast(image, sitk.sitkUInt8) * 2, str(root / mask))
    rows.to_csv(root / "manifest.csv", index=False)
    settings = tmp_path / "label2.yaml"
    settings.write_text(load_settings("fast").text.replace("  label: 1\n", "  label: 2\n"))
    assert load_settings(settings).label == 2
    good = extract_features(root / "manifest.csv", settings, tmp_path / "a" / "f.parquet", progress=False)
    assert not good.failures and len(good.table) == 3
    bad = extract_features(root / "manifest.csv", "fast", tmp_path / "b" / "f.parquet", progress=False)
    assert bad.failures and all("label value 1 absent" in f["error"] for f in bad.failures)
