"""Temperature calibration of deep models: fitted on held-out training rows only, ranking unchanged, kept by
the refit and the bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_table

from mmt_tune.config import TrainConfig
from mmt_tune.training.trainer import fit_temperature


def test_fit_temperature_recovers_a_known_temperature_and_ignores_padding():
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 2, (2, 4000))
    labels = (rng.random((2, 4000)) < 1 / (1 + np.exp(-margin))).astype(np.float32)
    true_t = np.array([0.25, 3.0])  # the model's margins are these multiples of the calibrated ones
    logits = np.stack([np.zeros_like(margin), margin / true_t[:, None]], axis=-1)
    rows = np.ones((2, 4000), dtype=bool)
    rows[:, 3000:] = False  # padding: flip its labels, the fit must not notice
    labels[:, 3000:] = 1 - labels[:, 3000:]
    t = fit_temperature(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels), torch.tensor(rows))
    np.testing.assert_allclose(t.numpy(), 1 / true_t, rtol=0.1)


def _config(**options):
    return TrainConfig.from_options("mfnvae", ("T1WI", "FLAIR", "DWI"), {"epochs": 15, "lr": 1e-3, **options})


@pytest.fixture(scope="module")
def table():
    torch.set_num_threads(1)
    return make_table(160, signal={"DWI": 1.2, "T1WI": 0.8})


def test_calibration_is_fitted_on_training_rows_only_and_keeps_every_ranking(table):
    from mmt_tune.metrics import auc
    from mmt_tune.training.crossval import train_configuration

    config = _config(calibration="temperature", folds=3)
    result = train_configuration(table, config)
    assert "temperature" in result.folds.columns and (result.folds["temperature"] > 0).all()
    # spoil fold 0's validation rows (their features; labels would move the stratified folds): the
    # temperature fitted on that fold's held-out training rows does not move
    spoiled = table.copy()
    rows = result.predictions.query("fold == 0")["row"].to_numpy()
    features = [c for c in table.columns if "__" in c]
    spoiled.loc[rows, features] = np.random.default_rng(1).normal(0, 1e3, (len(rows), len(features)))
    again = train_configuration(spoiled, config)
    assert again.folds.loc[0, "temperature"] == result.folds.loc[0, "temperature"]
    # dividing the logits by a positive temperature keeps each fold's ranking: the AUC of the calibrated
    # probabilities equals that of the same model's uncalibrated ones, recovered as sigmoid(T * logit(p))
    for fold, group in result.predictions.groupby("fold"):
        t = result.folds.set_index("fold").loc[fold, "temperature"]
        p = group["probability"].clip(1e-7, 1 - 1e-7)
        raw = 1 / (1 + np.exp(-t * np.log(p / (1 - p))))
        assert auc(group["label"], group["probability"]) == pytest.approx(auc(group["label"], raw), abs=1e-12)


def test_without_calibration_nothing_is_held_out_and_no_temperature_is_reported(table):
    from mmt_tune.training.crossval import train_configuration

    result = train_configuration(table, _config(folds=3, epochs=2))
    assert "temperature" not in result.folds.columns


def test_the_refit_and_the_bundle_keep_the_temperatures(table, tmp_path):
    from mmt_tune.deploy.bundle import Bundle, load_bundle, save_bundle
    from mmt_tune.errors import InputError
    from mmt_tune.training.refit import fit_configuration

    config = _config(calibration="temperature")
    fitted, _ = fit_configuration(table, config, np.arange(120), members=2)
    assert fitted.temperature is not None and len(fitted.temperature) == 2
    new = table.iloc[120:]
    calibrated = fitted.predict(new)
    raw = fitted.__class__(fitted.config, fitted.transforms, fitted.widths, state=fitted.state).predict(new)
    assert not np.allclose(calibrated, raw)
    info = {
        "modalities": ["T1WI", "FLAIR", "DWI"],
        "feature_columns": {
            m: [c for c in table.columns if c.startswith(f"{m}__")] for m in ("T1WI", "FLAIR", "DWI")
        },
    }
    save_bundle(Bundle({fitted.key: fitted}, info, {fitted.key: 0.5}), tmp_path / "b")
    loaded = load_bundle(tmp_path / "b").configurations[fitted.key]
    assert loaded.temperature == fitted.temperature
    assert np.array_equal(loaded.predict(new), calibrated)
    # a temperature that is not a positive number is refused (with the hashes rewritten, so the check is seen)
    import json

    from mmt_tune.deploy.integrity import seal

    path = tmp_path / "b" / "bundle.json"
    manifest = json.loads(path.read_text())
    manifest["configurations"][fitted.key]["temperature"] = [-1.0, 1.0]
    path.write_text(json.dumps(seal(manifest, tmp_path / "b")))
    with pytest.raises(InputError, match="temperature: -1.0 is not a positive number"):
        load_bundle(tmp_path / "b")


def test_an_unknown_calibration_is_one_line():
    from mmt_tune.errors import InputError

    with pytest.raises(InputError, match="calibration must be one of None, temperature"):
        _config(calibration="platt").validate()
