"""New tables a bundle scores: their extraction settings are checked however the labels look, an output that
is not a probability is refused with its reason, a held-out table with other settings is refused."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_table

from mmt_tune.config import TrainConfig

MODALITIES = ("T1WI", "FLAIR", "DWI")


@pytest.fixture(scope="module")
def bundle_folder(tmp_path_factory):
    """A logistic regression and an MMT-1M bundled from a table extracted with settings 'a'."""
    import torch

    from mmt_tune.data.table import modality_columns
    from mmt_tune.deploy.bundle import Bundle, save_bundle
    from mmt_tune.training.refit import fit_configuration

    torch.set_num_threads(1)
    table = make_table(n=60, signal={"T1WI": 1.0}, n_features=6, seed=1)
    fitted = {}
    for model, present, options in (
        ("logreg", MODALITIES, {"folds": 3, "k": 4}),
        ("mmt1m", ("T1WI",), {"folds": 3, "k": 4, "epochs": 2, "d_model": 16, "hidden": 16}),
    ):
        config = TrainConfig.from_options(model, present, options, modalities=MODALITIES)
        result, _ = fit_configuration(table, config, np.arange(len(table)))
        fitted[result.key] = result
    info = {
        "modalities": list(MODALITIES),
        "feature_columns": modality_columns(table, MODALITIES),
        "settings_sha256": "a" * 64,
    }
    scores = {"logreg/T1WI+FLAIR+DWI": 0.8, "mmt1m/T1WI": 0.7}
    return save_bundle(Bundle(fitted, info, scores), tmp_path_factory.mktemp("b") / "bundle")


def _new_patients(path, settings: str | None, label: str = "none"):
    from mmt_tune.data.table import write_feature_table

    table = make_table(n=20, n_features=6, seed=2)
    if label == "none":
        table = table.drop(columns="label")
    elif label == "one missing":
        table["label"] = table["label"].astype(float)
        table.loc[3, "label"] = np.nan
    write_feature_table(table, path, {"settings_sha256": settings} if settings else {})
    return table


@pytest.mark.parametrize("label", ["none", "one missing", "all"])
def test_predict_refuses_a_table_extracted_with_other_settings_however_its_labels_look(
    bundle_folder, tmp_path, capsys, label
):
    from mmt_tune.predict import main

    path = tmp_path / "new.parquet"
    _new_patients(path, "b" * 64, label)
    out = tmp_path / "predictions.csv"
    code = main(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "other PyRadiomics settings" in err and str(path) in err
    assert not out.exists()
    _new_patients(path, "a" * 64, label)  # the bundle's settings: scored
    assert main(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(out)]) == 0
    assert "records no extraction settings" not in capsys.readouterr().err


def test_a_row_whose_output_is_not_a_probability_is_refused_with_its_reason(bundle_folder, tmp_path):
    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.deploy.routing import predict_table

    bundle = load_bundle(bundle_folder)
    table = make_table(n=10, n_features=6, seed=3).drop(columns="label")
    only_t1 = [c for c in table.columns if c.startswith(("FLAIR__", "DWI__"))]
    table[only_t1] = np.nan  # routed to MMT-1M T1WI
    table.loc[0, [c for c in table.columns if c.startswith("T1WI__")]] = np.inf
    predictions = predict_table(bundle, table)
    assert predictions["model"].eq("mmt1m/T1WI").all()
    assert (
        np.isnan(predictions.loc[0, "probability"])
        and "not a finite probability" in predictions.loc[0, "reason"]
    )
    assert (
        predictions.loc[1:, "probability"].between(0, 1).all() and predictions.loc[1:, "reason"].eq("").all()
    )


def test_a_held_out_table_extracted_with_other_settings_is_refused(tmp_path):
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.holdout import read_holdout

    whole = make_table(n=60, n_features=4, seed=4)
    table, holdout = whole.iloc[:40].reset_index(drop=True), whole.iloc[40:].reset_index(drop=True)
    path = tmp_path / "holdout.parquet"
    write_feature_table(holdout, path, {"settings_sha256": "b" * 64})
    with pytest.raises(InputError, match="other PyRadiomics settings"):
        read_holdout(path, table, {"settings_sha256": "a" * 64})
    assert len(read_holdout(path, table, {"settings_sha256": "b" * 64})) == 20
    assert len(read_holdout(path, table, {})) == 20  # the study's table records none: nothing to compare


def test_predict_and_convert_refuse_an_out_that_is_a_folder_before_any_work(bundle_folder, tmp_path, capsys):
    from mmt_tune.data.convert import main as convert
    from mmt_tune.predict import main as predict

    path = tmp_path / "new.parquet"
    _new_patients(path, "a" * 64)
    folder = tmp_path / "out"
    folder.mkdir()
    assert predict(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(folder)]) == 2
    assert f"{folder}: is a folder" in capsys.readouterr().err
    csv = tmp_path / "table.csv"
    make_table(n=10, n_features=2).to_csv(csv, index=False)
    assert convert([str(csv), "--out", str(folder)]) == 2
    assert f"{folder}: is a folder" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_repeated_patients_get_no_validation_metrics_and_an_empty_id_is_refused(
    bundle_folder, tmp_path, capsys
):
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.predict import main

    table = make_table(n=20, n_features=6, seed=5)
    path, out = tmp_path / "new.parquet", tmp_path / "predictions.csv"
    repeated = table.copy()
    repeated.loc[1, "patient_id"] = repeated.loc[0, "patient_id"]
    write_feature_table(repeated, path, {"settings_sha256": "a" * 64})
    assert main(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 scored rows repeat a patient_id (first: P0000)" in captured.err
    assert "external validation" not in captured.out and out.is_file()
    assert not (tmp_path / "predictions.metrics.json").exists()
    write_feature_table(table, path, {"settings_sha256": "a" * 64})  # distinct patients: metrics
    assert main(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(out)]) == 0
    assert "external validation (20 rows" in capsys.readouterr().out
    empty = table.drop(columns="label").astype({"patient_id": object})
    empty.loc[4, "patient_id"] = ""
    write_feature_table(empty, path, {"settings_sha256": "a" * 64})
    out.unlink()
    assert main(["--bundle", str(bundle_folder), "--features", str(path), "--out", str(out)]) == 2
    assert "row 5: patient_id is empty" in capsys.readouterr().err and not out.exists()
