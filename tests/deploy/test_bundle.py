"""From study to patient: fit, bundle, predict by the modalities a patient has, and safe loading."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from helpers import make_table

MODS = ("T1WI", "FLAIR", "DWI")
SIGNAL = {"DWI": 1.5, "T1WI": 1.0}


def test_a_bundle_round_trip_reproduces_the_in_process_predictions_exactly(bundle_parts):
    from mmt_tune.deploy.bundle import load_bundle

    fitted, in_pass, folder, new = bundle_parts
    loaded = load_bundle(folder)
    assert set(loaded.configurations) == set(fitted)
    for key, original in fitted.items():
        mine = original.predict(new)
        assert np.array_equal(loaded.configurations[key].predict(new), mine), key
        # the same numbers the training pass gave for these rows (same weights, another batch shape)
        np.testing.assert_allclose(mine, in_pass[key], rtol=0, atol=1e-6)
    assert loaded.scores["mmt2m/T1WI+FLAIR"] == 0.8


def test_each_patient_goes_to_the_model_for_exactly_the_modalities_it_has(bundle_parts):
    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.deploy.routing import predict_table

    _, _, folder, new = bundle_parts
    bundle = load_bundle(folder)
    table = new.iloc[:5].copy()
    columns = {m: [c for c in table.columns if c.startswith(f"{m}__")] for m in MODS}
    table.loc[0, columns["DWI"]] = np.nan  # T1WI+FLAIR
    table.loc[1, columns["DWI"] + columns["FLAIR"]] = np.nan  # T1WI only
    table.loc[2, columns["FLAIR"]] = np.nan  # T1WI+DWI: no exact model, MFN-VAE reads both
    table.loc[3, [c for cols in columns.values() for c in cols]] = np.nan  # nothing
    table.loc[4, columns["T1WI"] + columns["FLAIR"]] = np.nan  # DWI: the logistic regression
    out = predict_table(bundle, table)
    assert list(out["model"]) == ["mmt2m/T1WI+FLAIR", "mmt1m/T1WI", "mfnvae/T1WI+FLAIR+DWI", "", "logreg/DWI"]
    assert list(out["reads"]) == ["T1WI+FLAIR", "T1WI", "T1WI+DWI", "", "DWI"]
    assert out["probability"].isna().tolist() == [False, False, False, True, False]
    assert "no usable modality" in out.loc[3, "reason"]
    # MFN-VAE without FLAIR is the product of the other two experts, not the full model's output
    full = bundle.configurations["mfnvae/T1WI+FLAIR+DWI"].predict(new.iloc[2:3])
    assert out.loc[2, "probability"] != pytest.approx(float(full[0]), abs=1e-9)


def _write(table, path, settings="a" * 64):
    from mmt_tune.data.table import write_feature_table

    write_feature_table(table, path, {"settings_sha256": settings})
    return path


def test_predict_cli_writes_predictions_metrics_and_a_calibration_plot(bundle_parts, tmp_path, capsys):
    from mmt_tune.predict import main

    _, _, folder, new = bundle_parts
    features = _write(new, tmp_path / "new.parquet")
    assert main(["--bundle", str(folder), "--features", str(features), "--out", str(tmp_path / "p.csv")]) == 0
    out = pd.read_csv(tmp_path / "p.csv")
    assert len(out) == 40 and out["probability"].notna().all()
    assert set(out["model"]) == {"mfnvae/T1WI+FLAIR+DWI"}  # every new patient has all three
    printed = capsys.readouterr().out
    assert "external validation (40 rows, 95% bootstrap CI)" in printed
    report = __import__("json").loads((tmp_path / "p.metrics.json").read_text())
    low, high = report["auc"]["ci95"]
    assert low <= report["auc"]["value"] <= high and high - low > 0.05
    assert (tmp_path / "p.calibration.png").stat().st_size > 5000


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns=["FLAIR__original_firstorder_F3"]), "lacks FLAIR__original_firstorder_F3"),
        (lambda t: t.assign(DWI__original_shape_Extra=1.0), "has DWI__original_shape_Extra"),
    ],
)
def test_a_table_with_other_feature_columns_is_refused_with_one_line(
    bundle_parts, tmp_path, capsys, change, message
):
    from mmt_tune.predict import main

    _, _, folder, new = bundle_parts
    features = _write(change(new), tmp_path / "other.parquet")
    out = tmp_path / "p.csv"
    assert main(["--bundle", str(folder), "--features", str(features), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(features) in err[0]
    assert not out.exists()


def test_a_table_extracted_with_other_settings_is_refused(bundle_parts, tmp_path, capsys):
    from mmt_tune.predict import main

    _, _, folder, new = bundle_parts
    features = _write(new, tmp_path / "other.parquet", settings="b" * 64)
    assert main(["--bundle", str(folder), "--features", str(features), "--out", str(tmp_path / "p.csv")]) == 2
    assert "other PyRadiomics settings" in capsys.readouterr().err


def test_a_bundle_holds_no_patient_identifier_or_path(bundle_parts):
    _, _, folder, new = bundle_parts
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"P0100" not in data and b"P0001" not in data, path
            assert str(folder.parent).encode() not in data and b"/home/" not in data, path


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a malicious weights file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def reseal(folder):
    """Rewrite a bundle's recorded hashes after tampering with it, as a determined tamperer would."""
    import json

    from mmt_tune.deploy.integrity import seal

    path = folder / "bundle.json"
    path.write_text(json.dumps(seal(json.loads(path.read_text()), folder)))


def test_a_loaded_bundle_never_executes_code_from_its_files(bundle_parts, tmp_path):
    import shutil

    import torch

    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.errors import InputError

    _, _, folder, _ = bundle_parts
    marker = tmp_path / "executed"
    # 1. weights.pt whose pickle calls open() when unpickled without weights_only
    evil = tmp_path / "evil"
    shutil.copytree(folder, evil)
    weights = evil / "mmt1m_T1WI" / "weights.pt"
    torch.save({"x": torch.zeros(1), "payload": _Payload(marker)}, weights)
    with zipfile.ZipFile(weights) as archive:  # the payload is really in there
        assert any(b"open" in archive.read(n) for n in archive.namelist() if n.endswith(".pkl"))
    with pytest.raises(InputError, match="weights.pt: changed since fit"):
        load_bundle(evil)
    reseal(evil)  # someone who rewrites the recorded hashes too: safe loading still holds
    with pytest.raises(InputError, match="cannot load mmt1m/T1WI safely"):
        load_bundle(evil)
    assert not marker.exists()
    # 2. an .npz holding a pickled object array
    evil2 = tmp_path / "evil2"
    shutil.copytree(folder, evil2)
    np.savez(
        evil2 / "logreg_DWI" / "coefficients.npz", **{"0/coef": np.array([_Payload(marker)], dtype=object)}
    )
    reseal(evil2)
    with pytest.raises(InputError, match="cannot load logreg/DWI safely"):
        load_bundle(evil2)
    assert not marker.exists()
    # the unsafe loader would have run it (the test can fail)
    with open(weights, "rb"):
        torch.load(weights, weights_only=False)
    assert marker.exists()
    assert pickle  # the payload class pickles by reference to this module


def test_a_subset_capable_model_needs_one_of_its_modalities(bundle_parts):
    from mmt_tune.errors import InputError

    fitted, _, _, new = bundle_parts
    mmt = fitted["mmt2m/T1WI+FLAIR"]
    with pytest.raises(InputError, match="needs FLAIR"):
        mmt.predict(new, available=("T1WI",))
    assert fitted["mfnvae/T1WI+FLAIR+DWI"].reads(("DWI",)) == ("DWI",)


SPACE = (
    "name: to-patient\n"
    "configurations:\n"
    "  - {model: mmt2m, present: [T1WI, FLAIR]}\n"
    "  - {model: mmt1m, present: [T1WI]}\n"
    "  - {model: mfnvae, present: [T1WI, FLAIR, DWI]}\n"
    "  - {model: forest, present: [DWI]}\n"
    "parameters:\n"
    "  lr: {distribution: loguniform, low: 1.0e-4, high: 1.0e-2}\n"
    "fixed: {batch_size: 16, n_estimators: 20}\n"
)


def test_a_held_out_table_sharing_a_patient_is_refused_before_the_search(tmp_path):
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.entry import run_study

    table = make_table(80, signal=SIGNAL)
    write_feature_table(table.iloc[:60], tmp_path / "train.parquet", {})
    write_feature_table(table.iloc[55:], tmp_path / "test.parquet", {})
    (tmp_path / "space.yaml").write_text(SPACE)
    with pytest.raises(InputError, match=r"5 patient\(s\) are also in --features \(first: P0055\)"):
        run_study(
            tmp_path / "space.yaml",
            tmp_path / "train.parquet",
            test_features=tmp_path / "test.parquet",
            storage=tmp_path / "results",
            wandb="off",
        )
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("trials.*"))


@pytest.mark.slow
def test_study_with_a_held_out_table_then_fit_and_predict(ray_local, tmp_path, capsys):
    """--test-features adds test columns to Table 2; fit --study bundles the best trials (the forest is
    left out, with a reason); predict scores the held-out patients and routes a patient without DWI."""
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import load_study
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.fit import main as fit
    from mmt_tune.predict import main as predict
    from mmt_tune.study.entry import run_study

    table = make_table(150, signal=SIGNAL)
    write_feature_table(table.iloc[:100], tmp_path / "train.parquet", {})
    holdout = table.iloc[100:].copy()
    write_feature_table(holdout, tmp_path / "test.parquet", {})
    (tmp_path / "space.yaml").write_text(SPACE)
    result = run_study(
        tmp_path / "space.yaml",
        tmp_path / "train.parquet",
        samples=1,
        epochs=2,
        folds=2,
        storage=tmp_path / "results",
        wandb="off",
        verbose=0,
        test_features=tmp_path / "test.parquet",
    )
    assert len(result.test) == 4 and (result.test["n_test"] == 50).all()
    # the forest has nothing searched (everything fixed): one trial, no Optuna study
    assert result.trials.groupby("model")["trial_id"].nunique()["forest"] == 1
    low, auc, high = result.test.loc[0, ["test_auc_low", "test_auc", "test_auc_high"]]
    assert low <= auc <= high
    table2 = aggregate(load_study(result.experiment)).table2()
    assert "Test AUC [95% CI]" in table2.columns and not (table2["Test AUC [95% CI]"] == "—").any()
    assert not (table2["Test Brier [95% CI]"] == "—").any()
    predictions = pd.read_parquet(result.experiment / "test_predictions.parquet")
    assert set(predictions["patient_id"]) == set(holdout["patient_id"])  # held-out rows only

    assert fit(["--study", str(result.experiment), "--features", str(tmp_path / "train.parquet")]) == 0
    printed = capsys.readouterr().out
    assert "skipped" not in printed and "wrote bundle (4 configuration(s))" in printed  # the forest too
    # A fitted study refuses another table than its own.
    assert fit(["--study", str(result.experiment), "--features", str(tmp_path / "test.parquet")]) == 2
    assert "not the table this study was run on" in capsys.readouterr().err

    holdout.loc[holdout.index[0], [c for c in holdout.columns if c.startswith("DWI__")]] = np.nan
    write_feature_table(holdout, tmp_path / "test2.parquet", {})
    out = tmp_path / "predictions.csv"
    bundle = result.experiment / "bundle"
    assert (
        predict(["--bundle", str(bundle), "--features", str(tmp_path / "test2.parquet"), "--out", str(out)])
        == 0
    )
    scored = pd.read_csv(out)
    assert scored.loc[0, "model"] == "mmt2m/T1WI+FLAIR"
    assert set(scored["model"].iloc[1:]) == {"mfnvae/T1WI+FLAIR+DWI"}


def test_predictions_name_the_positive_class_the_training_table_recorded(bundle_parts):
    from mmt_tune.deploy.bundle import load_bundle
    from mmt_tune.deploy.routing import predict_table

    _, _, folder, new = bundle_parts
    bundle = load_bundle(folder)
    assert "positive_class" not in predict_table(bundle, new).columns  # none recorded: nothing invented
    bundle.info["training"] = {"positive_class": "high"}
    predictions = predict_table(bundle, new)
    assert set(predictions["positive_class"]) == {"high"}
