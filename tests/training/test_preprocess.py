"""The in-fold pipeline never fits on validation rows, never leaks synthetic rows into validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_table

from mmt_tune.config import PreprocessConfig
from mmt_tune.errors import InputError
from mmt_tune.training.preprocess import make_folds, modality_columns_of, preprocess_fold

CONFIG = PreprocessConfig(k=5)


def _fold(table, config=CONFIG, split=None):
    columns = modality_columns_of(table, ("T1WI", "FLAIR", "DWI"))
    train, val = split if split is not None else make_folds(table, 4, seed=1)[0]
    return preprocess_fold(table, columns, train, val, config, random_state=3), train, val


def test_validation_rows_never_reach_a_fit():
    table = make_table(160, signal={"DWI": 1.5})
    reference, train, val = _fold(table)
    # Wreck the validation rows (features and labels); nothing fitted may change.
    wrecked = table.copy()
    feature_columns = [c for c in table.columns if "__" in c]
    rng = np.random.default_rng(0)
    wrecked.loc[wrecked.index[val], feature_columns] = rng.normal(1e6, 1e5, (len(val), len(feature_columns)))
    wrecked.loc[wrecked.index[val[:3]], feature_columns[0]] = np.nan
    wrecked.loc[wrecked.index[val], "label"] = 1 - table["label"].to_numpy()[val]
    changed, _, _ = _fold(wrecked, split=(train, val))  # same split: folds are fixed before any fitting
    assert changed.selected == reference.selected, "selection depends only on training rows"
    for modality in reference.train:
        np.testing.assert_array_equal(changed.train[modality], reference.train[modality])
    np.testing.assert_array_equal(changed.y_train, reference.y_train)
    # The validation rows themselves are transformed with the training statistics (so they do change).
    assert not np.allclose(changed.val["DWI"], reference.val["DWI"])


def test_synthetic_rows_stay_in_training_and_validation_rows_are_the_real_ones():
    table = make_table(160, signal={"DWI": 1.5})
    fold, train, val = _fold(table)
    assert fold.n_synthetic > 0
    assert np.bincount(fold.y_train).tolist() == [np.bincount(fold.y_train)[0]] * 2, (
        "SMOTE balances the classes"
    )
    assert len(fold.y_val) == len(val) and np.array_equal(fold.y_val, table["label"].to_numpy()[val])
    assert np.array_equal(fold.val_index, val)
    joined_val = np.hstack([fold.val[m] for m in fold.val])
    synthetic = np.hstack([fold.train[m] for m in fold.train])[len(train) :]
    distances = np.abs(synthetic[:, None, :] - joined_val[None, :, :]).sum(-1)
    assert distances.min() > 1e-6, "no synthetic row coincides with a validation row"


def test_selection_keeps_k_per_modality_and_prefers_the_signal():
    table = make_table(200, signal={"DWI": 2.0}, n_features=12)
    fold, _, _ = _fold(table, PreprocessConfig(k={"T1WI": 3, "FLAIR": 4, "DWI": 3}))
    assert [len(fold.selected[m]) for m in ("T1WI", "FLAIR", "DWI")] == [3, 4, 3]
    assert all(a.shape[1] == len(fold.selected[m]) for m, a in fold.train.items())
    assert set(fold.selected["DWI"]) == {f"DWI__original_firstorder_F{j}" for j in range(3)}


@pytest.mark.parametrize("score", ["anova", "mutual_info", "forest"])
def test_every_selection_score_finds_the_planted_features(score):
    """Each score keeps the three features that carry the class signal among its top four."""
    fold, _, _ = _fold(make_table(200, signal={"T1WI": 2.0}), PreprocessConfig(k=4, score=score))
    assert len(fold.selected["T1WI"]) == 4
    planted = {f"T1WI__original_firstorder_F{j}" for j in range(3)}
    assert planted <= set(fold.selected["T1WI"]), fold.selected["T1WI"]


def test_correlation_filter_drops_a_duplicated_feature():
    table = make_table(120)
    table["T1WI__original_firstorder_copy"] = table["T1WI__original_firstorder_F0"] * 2 + 1
    fold, _, _ = _fold(table, PreprocessConfig(k=50))
    assert not {"T1WI__original_firstorder_F0", "T1WI__original_firstorder_copy"} <= set(
        fold.selected["T1WI"]
    )


def test_lesion_level_folds_keep_each_patient_in_one_fold():
    table = make_table(150)
    table["patient_id"] = [f"P{i // 3:03d}" for i in range(150)]  # three lesions per patient
    table["label"] = table.groupby("patient_id")["label"].transform("first")
    for train, val in make_folds(table, 5, seed=0):
        assert not set(table["patient_id"].iloc[train]) & set(table["patient_id"].iloc[val])
        assert set(table["label"].iloc[val]) == {0, 1}


def test_folds_are_fixed_by_the_seed():
    table = make_table(100)
    a, b, c = make_folds(table, 5, 7), make_folds(table, 5, 7), make_folds(table, 5, 8)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c, strict=True))


def test_too_few_rows_of_a_class_for_the_folds_is_an_error():
    table = make_table(40)
    table["label"] = 0
    table.loc[:2, "label"] = 1
    with pytest.raises(InputError, match="cannot make 5 stratified folds: the table has 3 SCLC"):
        make_folds(table, 5, 0)


def test_missing_or_all_nan_modality_is_an_error():
    table = make_table(40)
    with pytest.raises(InputError, match="no columns for modality PET"):
        modality_columns_of(table, ["PET"])
    nan = table.copy()
    nan[[c for c in nan.columns if c.startswith("DWI__")]] = np.nan
    with pytest.raises(InputError, match="modality DWI is NaN in every row"):
        modality_columns_of(nan, ["DWI"])
    assert isinstance(table, pd.DataFrame)
