"""The promises the reported numbers rest on, each tested as an invariance: perturb what must not matter and
assert that nothing changes, bit for bit (docs/study-protocol.md, docs/method.md).

- preprocessing and every model are fitted on a fold's training rows only;
- nested CV: the outer test rows never reach the inner study or the refit;
- a held-out table is scored by a model that never saw it;
- ``predict`` reads features by name, routes a patient to the best model that can read what it has, and
  treats one empty value as a value to impute, not as a missing sequence;
- robustness scores a subset with exactly that subset; a missing sequence is never read;
- modality dropout (and dropout) act in training only;
- repeated CV uses R different stratified partitions;
- every metric, through every path that reports it, is its confusion-matrix definition;
- the fold cache never hands out the folds of another table or other settings;
- W&B records neither the host nor the user name nor the home folder.

Fast: no Ray; real PyTorch, scikit-learn, imbalanced-learn and wandb (offline); a few seconds each.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import make_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmt_tune.config import PreprocessConfig, TrainConfig
from mmt_tune.metrics import METRICS

MODALITIES = ("T1WI", "FLAIR", "DWI")
SIGNAL = {"T1WI": 1.2, "FLAIR": 0.8, "DWI": 0.5}
#: Tiny deep models: the invariances do not depend on size, and the suite stays fast.
TINY_MMT = {"d_model": 16, "hidden": 16, "n_layers": 1}
TINY_VAE = {"latent": 8, "hidden": 16}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Bit-exact comparisons need one intra-op thread (and it is faster on a busy 2-core machine)."""


def table_of(n: int = 72, seed: int = 0) -> pd.DataFrame:
    return make_table(n=n, signal=SIGNAL, n_features=8, seed=seed)


def options_of(model: str, **options) -> dict:
    """The options of a small configuration of ``model``: 3 folds, 3 epochs, 4 features per modality."""
    defaults = {"folds": 3, "k": 4}
    if model in ("mmt1m", "mmt2m", "mmt"):
        defaults.update(TINY_MMT, epochs=3, lr=1e-3)
    elif model == "mfnvae":
        defaults.update(TINY_VAE, epochs=3)
    elif model == "forest":
        defaults.update(n_estimators=20)
    return {**defaults, **options}


def config_of(model: str, present=MODALITIES, **options) -> TrainConfig:
    return TrainConfig.from_options(model, present, options_of(model, **options), modalities=MODALITIES)


#: One configuration of every model kind whose fit the guarantees cover.
KINDS = {
    "logreg": lambda **o: config_of("logreg", **o),
    "forest": lambda **o: config_of("forest", **o),
    "mmt1m": lambda **o: config_of("mmt1m", ("T1WI",), **o),
    "mmt2m": lambda **o: config_of("mmt2m", ("T1WI", "FLAIR"), **o),
    "mfnvae": lambda **o: config_of("mfnvae", modality_dropout=0.5, **o),
}


def feature_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if "__" in c]


def poison(table: pd.DataFrame, rows: np.ndarray, how: str, seed: int = 1) -> pd.DataFrame:
    """``table`` with the features (and for ``labels``, the labels) of ``rows`` (positions) spoiled."""
    out = table.copy()
    columns = feature_columns(table)
    values = out[columns].to_numpy(dtype=float, copy=True)
    rng = np.random.default_rng(seed)
    if how == "nan":
        values[rows] = np.nan
    elif how == "huge":
        values[rows] = 1e6 * np.sign(rng.standard_normal((len(rows), len(columns))))
    elif how == "shuffled":
        values[rows] = values[rng.permutation(rows)][:, rng.permutation(len(columns))]
    elif how == "labels":
        out.iloc[rows, out.columns.get_loc("label")] = 1 - out["label"].to_numpy()[rows]
        return out
    else:  # pragma: no cover - a test's own typo
        raise ValueError(how)
    out[columns] = values
    return out


POISONS = ("nan", "huge", "shuffled", "labels")


def assert_same_arrays(a, b, what: str = "") -> None:
    """Deep bit-for-bit equality of nested dicts/lists/dataclasses of arrays, tensors and scalars."""
    import torch

    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), what
        for f in dataclasses.fields(a):
            assert_same_arrays(getattr(a, f.name), getattr(b, f.name), f"{what}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), what
        for key in a:
            assert_same_arrays(a[key], b[key], f"{what}[{key}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_arrays(x, y, f"{what}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), what
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        assert a == b or (a != a and b != b), what


def fold_split(table: pd.DataFrame, fold: int = 0, folds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    from mmt_tune.training.preprocess import make_folds

    return make_folds(table, folds, seed=0)[fold]


# --------------------------------------------------------------------------- in-fold preprocessing
SMOTE_CASES = {
    "smote": PreprocessConfig(k=4),
    "no smote": PreprocessConfig(k=4, smote=False),
    # SMOTE asked for, but the training rows hold a single positive: it turns itself off (no neighbours)
    "smote off by itself": PreprocessConfig(k=4),
}


@pytest.mark.parametrize("smote", list(SMOTE_CASES))
@pytest.mark.parametrize("how", POISONS)
def test_preprocessing_is_fitted_on_the_training_rows_alone(smote, how):
    """Spoiling the validation and early-stopping rows leaves every fitted array, the training rows' features
    and the unspoiled validation rows' features bit-identical."""
    from mmt_tune.training.preprocess import preprocess_fold

    table = table_of()
    train, val = fold_split(table)
    if smote == "smote off by itself":
        positives = train[table["label"].to_numpy()[train] == 1]
        train = np.setdiff1d(train, positives[1:])  # one positive left
    monitor, val = val[::3], np.setdiff1d(val, val[::3])
    spoiled = np.concatenate([val[: len(val) // 2], monitor])
    config = SMOTE_CASES[smote]
    clean = preprocess_fold(table, _columns(table), train, val, config, 7, monitor_index=monitor)
    dirty = preprocess_fold(
        poison(table, spoiled, how), _columns(table), train, val, config, 7, monitor_index=monitor
    )
    assert (clean.n_synthetic > 0) == (smote == "smote")
    for name in ("train", "y_train", "n_synthetic", "selected", "transforms"):
        assert_same_arrays(getattr(clean, name), getattr(dirty, name), name)
    kept = np.isin(val, spoiled, invert=True)
    assert kept.any()
    for m in MODALITIES:
        np.testing.assert_array_equal(clean.val[m][kept], dirty.val[m][kept])


def _columns(table: pd.DataFrame) -> dict[str, list[str]]:
    from mmt_tune.training.preprocess import modality_columns_of

    return modality_columns_of(table, MODALITIES)


def _fitted_parameters(fitted) -> list:
    """What a fitted configuration learned: per-member transforms, and the weights or estimator state."""
    if fitted.config.baseline:
        learned = []
        for e in fitted.estimators:
            if hasattr(e, "coef_"):
                learned.append([e.coef_, e.intercept_])
            else:  # a forest: every tree's split features, thresholds and leaf values
                learned.append([[t.tree_.feature, t.tree_.threshold, t.tree_.value] for t in e.estimators_])
        return [fitted.transforms, learned]
    return [fitted.transforms, fitted.state]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_model_is_fitted_on_its_training_rows_alone(kind):
    """Every model kind: spoiling the rows it scores (features and labels) leaves its learned parameters and
    every other scored row's probability bit-identical."""
    from mmt_tune.training.refit import fit_configuration

    table = table_of()
    train, val = fold_split(table)
    spoiled = val[: len(val) // 2]
    config = KINDS[kind]()
    clean, p_clean = fit_configuration(table, config, train, val)
    dirty_table = poison(poison(table, spoiled, "huge"), spoiled, "labels")
    dirty, p_dirty = fit_configuration(dirty_table, config, train, val)
    assert_same_arrays(_fitted_parameters(clean), _fitted_parameters(dirty), kind)
    kept = np.isin(val, spoiled, invert=True)
    np.testing.assert_array_equal(p_clean[kept], p_dirty[kept])
    assert not np.array_equal(p_clean[~kept], p_dirty[~kept])  # the spoiled rows were read: scored


@pytest.mark.parametrize("kind", ["logreg", "mmt1m"])
def test_cross_validation_fits_each_fold_on_its_training_rows_alone(kind):
    """Through the cross-validation path (fold cache included): spoiling half of fold 0's validation rows
    leaves fold 0's selected features and its other rows' out-of-fold probabilities bit-identical."""
    from mmt_tune.training.crossval import train_configuration

    table = table_of()
    _, val = fold_split(table)
    spoiled = val[: len(val) // 2]
    config = KINDS[kind]()
    clean = train_configuration(table, config)
    dirty = train_configuration(poison(table, spoiled, "huge"), config)
    assert clean.selected[0] == dirty.selected[0]

    def fold0(result):
        p = result.predictions
        return p[(p["fold"] == 0) & ~p["row"].isin(spoiled)].set_index("row")["probability"]

    assert len(fold0(clean)) == len(val) - len(spoiled)
    pd.testing.assert_series_equal(fold0(clean), fold0(dirty))


# --------------------------------------------------------------------------- nested CV and a held-out table
#: The stand-in search of the nested tests: real cross-validation of these configurations on the rows the
#: study is given (no Ray, no sampler), so its trials change whenever those rows do.
SEARCH = [
    ("logreg", MODALITIES, {"C": 0.01}),
    ("logreg", MODALITIES, {"C": 1.0}),
    ("logreg", ("T1WI",), {"C": 0.1}),
    ("mmt1m", ("T1WI",), {}),
]


def search_trials(table: pd.DataFrame, search=SEARCH) -> pd.DataFrame:
    """A trials table (the launcher's format) of ``search`` cross-validated on ``table``."""
    from mmt_tune.records import TrialRecord, trials_table
    from mmt_tune.study.trial_io import final_report
    from mmt_tune.training.crossval import train_configuration

    records = []
    for i, (model, present, options) in enumerate(search):
        config = config_of(model, present, **options)
        result = train_configuration(table, config)
        tune_config = {"model": model, "present": list(config.present), **options_of(model, **options)}
        records.append(
            TrialRecord(tune_config, {**final_report(result), "trial_id": f"t{i}"}, False, Path("."))
        )
    return trials_table(records, "study")


#: The nested tests' search: baselines only (the refit is one code path for every kind; the fit tests above
#: cover the kinds).
NESTED_SEARCH = SEARCH[:3]


def stub_study(prepared, options):
    """A flat study's contract without Ray: search the rows it is given, write its trials.parquet."""
    from mmt_tune.records import TRIALS_TABLE, write_tables
    from mmt_tune.study.options import StudyResult

    trials = search_trials(prepared.table, NESTED_SEARCH)
    folder = Path(options.storage) / options.name
    folder.mkdir(parents=True, exist_ok=True)
    write_tables({TRIALS_TABLE: trials}, folder)
    return StudyResult(folder, trials)


NESTED_SPACE = """name: nested
configurations:
  - {model: logreg, present: [T1WI, FLAIR, DWI]}
  - {model: logreg, present: [T1WI]}
parameters:
  C: {distribution: loguniform, low: 0.01, high: 1.0}
fixed: {folds: 3, k: 4}
"""


class FitSpy:
    """Records every refit (training rows, fitted parameters) while calling the real fit_configuration."""

    def __init__(self, monkeypatch):
        import mmt_tune.training.refit

        self.calls = []
        real = mmt_tune.training.refit.fit_configuration

        def spy(table, config, train_index, evaluate_index=None, members=1):
            fitted, probability = real(table, config, train_index, evaluate_index, members)
            self.calls.append((config.model, "+".join(config.present), np.asarray(train_index), fitted))
            return fitted, probability

        monkeypatch.setattr(mmt_tune.training.refit, "fit_configuration", spy)


def run_nested_study(table, folder: Path, outer_splits, monkeypatch) -> tuple[pd.DataFrame, FitSpy]:
    """run_nested with the stand-in search and the outer split pinned to ``outer_splits``."""
    import mmt_tune.training.preprocess
    from mmt_tune.study.nested import outer_seed, run_nested
    from mmt_tune.study.options import StudyOptions

    real_make_folds = mmt_tune.training.preprocess.make_folds

    def make_folds(t, n_folds, seed):  # the outer split is fixed; every inner split is computed as always
        return outer_splits if seed == outer_seed(0) else real_make_folds(t, n_folds, seed)

    monkeypatch.setattr(mmt_tune.training.preprocess, "make_folds", make_folds)
    spy = FitSpy(monkeypatch)
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.study.prepare import prepare_study

    folder.mkdir(parents=True)
    space, features = folder.parent / f"{folder.name}.yaml", folder.parent / f"{folder.name}.parquet"
    space.write_text(NESTED_SPACE)
    write_feature_table(table, features, {})
    opts = StudyOptions(outer_folds=len(outer_splits), storage=folder.parent, name=folder.name, wandb="off")
    result = run_nested(prepare_study(space, features, opts), opts, run_inner=stub_study)
    monkeypatch.undo()
    return result.nested, spy


def test_nested_cv_never_shows_the_outer_test_rows_to_the_search_or_the_refit(tmp_path, monkeypatch):
    """Spoiling an outer fold's test rows (features and labels) leaves that fold's inner study (its rows and
    trials), the chosen configurations and the refits bit-identical; each refit trains on exactly the outer
    training rows."""
    from mmt_tune.study.nested import outer_seed
    from mmt_tune.training.preprocess import make_folds

    table = table_of(n=90)
    splits = make_folds(table, 3, outer_seed(0))
    clean, clean_fits = run_nested_study(table, tmp_path / "clean", splits, monkeypatch)
    for k, (train, test) in enumerate(splits):
        spoiled_table = poison(poison(table, test, ("huge", "shuffled", "nan")[k]), test, "labels")
        folder = tmp_path / f"spoiled_{k}"
        dirty, dirty_fits = run_nested_study(spoiled_table, folder, splits, monkeypatch)
        inner = f"outer_{k}"
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "clean" / inner / "features.parquet"),
            pd.read_parquet(folder / inner / "features.parquet"),
        )
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "clean" / inner / "trials.parquet"),
            pd.read_parquet(folder / inner / "trials.parquet"),
        )
        chosen = ["model", "present", "trial_id", "inner_auc_mean"]
        pd.testing.assert_frame_equal(
            clean[clean["outer_fold"] == k][chosen].reset_index(drop=True),
            dirty[dirty["outer_fold"] == k][chosen].reset_index(drop=True),
        )
        refits = [c for c in dirty_fits.calls if np.array_equal(np.sort(c[2]), np.sort(train))]
        per_fold = len(clean_fits.calls) // len(splits)
        assert len(refits) == per_fold  # this outer fold's refits, and only on its training rows
        mine = clean_fits.calls[k * per_fold : (k + 1) * per_fold]
        for (model, present, rows, fitted), theirs in zip(mine, refits, strict=True):
            np.testing.assert_array_equal(rows, train)
            assert (model, present) == theirs[:2]
            assert_same_arrays(
                _fitted_parameters(fitted), _fitted_parameters(theirs[3]), f"{model}/{present}"
            )


@pytest.mark.parametrize("shared", [1, 2, 7])
def test_a_held_out_table_sharing_any_patient_with_the_study_is_refused(tmp_path, shared):
    """However few patients the two tables share, the held-out table is refused, naming one of them."""
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.holdout import read_holdout

    whole = table_of(n=100)
    table, holdout = whole.iloc[:70].reset_index(drop=True), whole.iloc[70:].reset_index(drop=True)
    path = tmp_path / "holdout.parquet"
    write_feature_table(holdout, path, {})
    assert len(read_holdout(path, table)) == 30  # disjoint: accepted
    leaked = holdout.copy()
    leaked.loc[: shared - 1, "patient_id"] = table["patient_id"].iloc[:shared].to_numpy()
    write_feature_table(leaked, path, {})
    with pytest.raises(InputError, match=f"{shared} patient"):
        read_holdout(path, table)


def test_a_bundle_transform_gives_the_fitted_pipeline_s_numbers_with_empty_values_and_dropped_columns():
    """The plain-array transform a bundle stores equals the fitted pipeline on every validation row, bit for
    bit, when values are empty and when the constant and correlation filters dropped columns before kept
    ones (so each kept column must be imputed with its own training median)."""
    from mmt_tune.training.preprocess import preprocess_fold

    table = table_of(n=90)
    rng = np.random.default_rng(4)
    for m in MODALITIES:
        table[f"{m}__original_firstorder_F0"] = 7.0  # constant: dropped by the variance filter
        table[f"{m}__original_firstorder_F1"] = table[f"{m}__original_firstorder_F2"] * 2 + 1  # correlated
    train, val = fold_split(table)
    spoiled = table.copy()
    columns = feature_columns(table)
    values = spoiled[columns].to_numpy(copy=True)
    empty = rng.random(values.shape) < 0.3
    empty[np.isin(np.arange(len(table)), train)] = False  # training rows complete: medians well defined
    values[empty] = np.nan
    spoiled[columns] = values
    fold = preprocess_fold(spoiled, _columns(spoiled), train, val, PreprocessConfig(k=5, smote=False), 3)
    rows = spoiled.iloc[val]
    for m in MODALITIES:
        transform = fold.transforms[m]
        assert f"{m}__original_firstorder_F0" not in transform.columns
        np.testing.assert_array_equal(transform.apply(rows), fold.val[m], err_msg=m)
        assert np.isnan(rows[transform.columns].to_numpy()).any()  # the check did meet empty values


@pytest.mark.parametrize("how", ["labels", "huge"])
def test_a_held_out_table_is_scored_by_models_that_never_saw_it(tmp_path, monkeypatch, how):
    """Spoiling the held-out table (its labels, or its features) leaves every refitted model bit-identical;
    with spoiled labels the held-out probabilities are identical too."""
    from mmt_tune.study.holdout import evaluate_holdout

    whole = table_of(n=110)
    table, holdout = whole.iloc[:80].reset_index(drop=True), whole.iloc[80:].reset_index(drop=True)
    trials = search_trials(table)
    fits = []
    for i, held in enumerate([holdout, poison(holdout, np.arange(len(holdout)), how)]):
        spy = FitSpy(monkeypatch)
        (tmp_path / str(i)).mkdir()
        evaluate_holdout(table, held, trials, MODALITIES, 0, tmp_path / str(i))
        monkeypatch.undo()
        assert {len(c[2]) for c in spy.calls} == {len(table)}
        fits.append(spy.calls)
    assert len(fits[0]) == len(fits[1]) == 3  # one refit per configuration
    for a, b in zip(*fits, strict=True):
        assert_same_arrays(_fitted_parameters(a[3]), _fitted_parameters(b[3]), f"{a[0]}/{a[1]}")
    clean, dirty = (pd.read_parquet(tmp_path / str(i) / "test_predictions.parquet") for i in (0, 1))
    if how == "labels":
        pd.testing.assert_series_equal(clean["probability"], dirty["probability"])
        assert not clean["label"].equals(dirty["label"])


# --------------------------------------------------------------------------- predict: reading and routing
#: The bundle of the predict tests: several configurations per present set, with different CV scores.
BUNDLED = [
    ("logreg", MODALITIES, {"C": 0.1}, 0.80),
    ("mfnvae", MODALITIES, {"modality_dropout": 0.5}, 0.78),
    ("logreg", ("T1WI", "FLAIR"), {"C": 0.1}, 0.75),
    ("mmt2m", ("T1WI", "FLAIR"), {}, 0.77),
    ("logreg", ("T1WI",), {"C": 0.1}, 0.70),
    ("mmt1m", ("T1WI",), {}, 0.72),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A real bundle (fitted, saved and loaded) of :data:`BUNDLED`, with the table it was fitted on."""
    import torch

    from mmt_tune.deploy.bundle import Bundle, load_bundle, save_bundle
    from mmt_tune.training.refit import fit_configuration

    torch.set_num_threads(1)
    table = table_of(n=80, seed=5)
    fitted, scores = {}, {}
    for model, present, options, score in BUNDLED:
        result, _ = fit_configuration(table, config_of(model, present, **options), np.arange(len(table)))
        fitted[result.key], scores[result.key] = result, score
    info = {"modalities": list(MODALITIES), "feature_columns": _columns(table)}
    folder = save_bundle(Bundle(fitted, info, scores), tmp_path_factory.mktemp("bundle") / "b")
    return load_bundle(folder), table_of(n=40, seed=6).drop(columns="label")


def with_missing(table: pd.DataFrame, pattern: dict[int, tuple[str, ...]]) -> pd.DataFrame:
    """``table`` with row i lacking the sequences ``pattern[i]`` (every value of them empty)."""
    out = table.copy()
    for row, lacking in pattern.items():
        for m in lacking:
            out.loc[out.index[row], [c for c in out.columns if c.startswith(f"{m}__")]] = np.nan
    return out


#: Rows 0-5 of the new patients lack these sequences (the rest have all three).
MISSING = {0: ("DWI",), 1: ("FLAIR", "DWI"), 2: ("T1WI",), 3: ("T1WI", "FLAIR"), 4: ("FLAIR",), 5: ()}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(25))))
def test_predict_reads_features_by_name_not_by_position(bundle, order):
    """Any order of the new table's columns (IDs and features) gives every row the same model and probability."""
    from mmt_tune.deploy.routing import predict_table

    loaded, new = bundle
    new = with_missing(new, MISSING)
    assert len(new.columns) == len(order)  # patient_id and 3 x 8 features
    columns = [new.columns[i] for i in order]
    expected = predict_table(loaded, new)
    got = predict_table(loaded, new[columns])
    pd.testing.assert_frame_equal(expected, got[expected.columns])
    assert expected["probability"].notna().all()


def test_one_empty_value_is_imputed_not_a_missing_sequence(bundle):
    """A row with one empty value in a sequence it has is scored by the same model, reading the same
    sequences, with exactly the probability it gets when the value is the training median."""
    from mmt_tune.deploy.routing import predict_table

    loaded, new = bundle
    before = predict_table(loaded, new)
    for key, fitted in loaded.configurations.items():
        for modality, transform in fitted.transforms[0].items():
            column = transform.columns[0]  # a feature the model reads
            emptied, at_median = new.copy(), new.copy()
            emptied.loc[emptied.index[0], column] = np.nan
            at_median.loc[at_median.index[0], column] = transform.median[0]
            got, expected = predict_table(loaded, emptied), predict_table(loaded, at_median)
            assert got.loc[0, "available"] == "+".join(MODALITIES), (key, modality)
            pd.testing.assert_frame_equal(got, expected)
            assert got.loc[0, "model"] == before.loc[0, "model"]


def test_a_sequence_a_model_does_not_read_never_changes_its_probability(bundle):
    """For every configuration and every set of sequences it can score: perturbing the other sequences'
    values changes no probability (and a subset-capable model scores different subsets differently)."""
    from mmt_tune.modalities import subsets_of

    loaded, new = bundle
    rng = np.random.default_rng(0)
    for key, fitted in loaded.configurations.items():
        capable = fitted.config.spec.subsets
        readable = subsets_of(fitted.config.present) if capable else [fitted.config.present]
        outputs = {}
        for subset in readable:
            others = [c for c in new.columns if "__" in c and c.split("__")[0] not in subset]
            noisy = new.copy()
            noisy[others] = rng.normal(0, 1e3, (len(new), len(others)))
            p = fitted.predict(new, available=subset)
            np.testing.assert_array_equal(
                p, fitted.predict(noisy, available=subset), err_msg=f"{key} {subset}"
            )
            outputs[subset] = p
        if capable:
            singles = [outputs[(m,)] for m in fitted.config.present]
            assert not np.array_equal(singles[0], singles[1])


def _configuration(model: str, present: tuple[str, ...]):
    """A fitted configuration's routing identity (model, present set) without weights: route reads no more."""
    from mmt_tune.training.refit import FittedConfiguration

    options = {"folds": 3}
    config = TrainConfig.from_options(model, present, options, modalities=MODALITIES)
    return FittedConfiguration(config, transforms=[{}], widths={})


def _candidates():
    from mmt_tune.modalities import subsets_of

    shapes = {"mmt1m": 1, "mmt2m": 2}
    every = []
    for model in ("logreg", "forest", "mfnvae", "mmt1m", "mmt2m"):
        for present in subsets_of(MODALITIES):
            if model in shapes and len(present) != shapes[model]:
                continue
            every.append((model, present))
    return every


@settings(max_examples=300, deadline=None)
@given(
    chosen=st.lists(
        st.tuples(st.sampled_from(_candidates()), st.one_of(st.none(), st.floats(0.3, 1.0))),
        min_size=1,
        max_size=8,
        unique_by=lambda c: c[0],
    ),
    available=st.sets(st.sampled_from(MODALITIES)),
)
def test_a_patient_is_routed_to_the_best_model_that_can_read_what_it_has(chosen, available):
    """Over bundle shapes (one or several models per present set, subset-capable or not, scores or none) and
    every set of sequences a patient may have: the chosen model reads only sequences the patient has and
    needs none it lacks unless it scores subsets; it comes from the first non-empty group of candidates
    (exactly the patient's set, else a subset-capable model of a wider set, else a narrower set), and no
    candidate of that group has a better cross-validated score."""
    from mmt_tune.deploy.bundle import Bundle
    from mmt_tune.deploy.routing import route
    from mmt_tune.errors import InputError

    configurations = {f"{m}/{'+'.join(p)}": _configuration(m, p) for (m, p), _ in chosen}
    scores = {f"{m}/{'+'.join(p)}": s for (m, p), s in chosen}
    bundle = Bundle(configurations, {"modalities": list(MODALITIES)}, scores)
    have = tuple(m for m in MODALITIES if m in available)
    groups = [
        [k for k, f in configurations.items() if set(f.config.present) == set(have)],
        [k for k, f in configurations.items() if f.config.spec.subsets and set(have) < set(f.config.present)],
        [k for k, f in configurations.items() if set(f.config.present) < set(have)],
    ]
    group = next((g for g in groups if g), None)
    if not have or group is None:
        with pytest.raises(InputError):
            route(bundle, have)
        return
    key, reads = route(bundle, have)
    present = configurations[key].config.present
    assert set(reads) <= set(have) and reads
    assert configurations[key].config.spec.subsets or set(present) <= set(have)
    assert set(reads) <= set(present)
    assert key in group
    score = lambda k: -np.inf if scores[k] is None else scores[k]  # noqa: E731
    assert score(key) == max(score(k) for k in group)


# --------------------------------------------------------------------------- robustness and evaluation mode
def test_robustness_scores_a_subset_with_exactly_that_subset():
    """Each fold's validation rows scored with subset S: perturbing the other sequences' validation features
    changes nothing; two single-sequence subsets score differently; all sequences give the trial's scores."""
    from mmt_tune.modalities import subsets_of
    from mmt_tune.training.crossval import _score_subsets, check_table
    from mmt_tune.training.fold_cache import prepare_folds
    from mmt_tune.training.trainer import Layout, fit_packed

    table = table_of()
    config = config_of("mfnvae", epochs=6)
    columns, splits = check_table(table, config)
    folds = prepare_folds(table, config, columns, splits)
    layout = Layout.of(folds, config, columns)
    probabilities, _, model = fit_packed(folds, config, None, None, layout, return_model=True)
    rng = np.random.default_rng(0)
    scored = {}
    for subset in subsets_of(MODALITIES):
        clean = _score_subsets(config, [folds], [model], layout, [subset])
        noisy_folds = [
            dataclasses.replace(
                fd,
                val={
                    m: v if m in subset else rng.normal(0, 50, v.shape).astype(np.float32)
                    for m, v in fd.val.items()
                },
            )
            for fd in folds
        ]
        pd.testing.assert_frame_equal(clean, _score_subsets(config, [noisy_folds], [model], layout, [subset]))
        scored[subset] = clean[list(METRICS)].to_numpy()
    assert not np.array_equal(scored[("T1WI",)], scored[("DWI",)])
    from mmt_tune.metrics import all_metrics

    trial = [
        [all_metrics(fd.y_val, p)[m] for m in METRICS] for fd, p in zip(folds, probabilities, strict=True)
    ]
    np.testing.assert_array_equal(scored[MODALITIES], np.asarray(trial))


def test_modality_dropout_and_dropout_act_in_training_only():
    """An MFN-VAE trained with modality dropout: two evaluations agree bit for bit, equal the same weights
    with modality dropout 0, and equal the probabilities the trainer reported for those rows."""
    from mmt_tune.training.refit import FittedConfiguration, fit_configuration

    table = table_of()
    train, val = fold_split(table)
    config = config_of("mfnvae", modality_dropout=0.5, dropout=0.5)
    fitted, reported = fit_configuration(table, config, train, val)
    rows = table.iloc[val]
    first, second = fitted.predict(rows), fitted.predict(rows)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, reported)
    plain = config_of("mfnvae", modality_dropout=0.0, dropout=0.0)
    same_weights = FittedConfiguration(plain, fitted.transforms, fitted.widths, state=fitted.state)
    np.testing.assert_array_equal(first, same_weights.predict(rows))
    for subset in [("T1WI",), ("FLAIR", "DWI")]:
        np.testing.assert_array_equal(fitted.predict(rows, subset), same_weights.predict(rows, subset))


@pytest.mark.parametrize("kind", ["mmt1m", "mmt2m"])
def test_an_mmt_evaluates_without_dropout(kind):
    """MMT with heavy dropout: the trainer's reported probabilities equal two later evaluations and the same
    weights with dropout 0."""
    from mmt_tune.training.refit import FittedConfiguration, fit_configuration

    table = table_of()
    train, val = fold_split(table)
    fitted, reported = fit_configuration(table, KINDS[kind](dropout=0.6), train, val)
    rows = table.iloc[val]
    np.testing.assert_array_equal(fitted.predict(rows), reported)
    np.testing.assert_array_equal(fitted.predict(rows), fitted.predict(rows))
    plain = KINDS[kind](dropout=0.0)
    np.testing.assert_array_equal(
        reported,
        FittedConfiguration(plain, fitted.transforms, fitted.widths, state=fitted.state).predict(rows),
    )


@pytest.mark.parametrize("kind", ["mfnvae", "mmt1m"])
def test_every_epoch_scores_its_validation_rows_in_evaluation_mode(kind):
    """What Tune and ASHA see each epoch (the validation probabilities behind the epoch AUC) is the model in
    evaluation mode: the last epoch's equal the final out-of-fold probabilities, bit for bit."""
    from mmt_tune.training.crossval import train_configuration

    seen = {}

    def on_epoch(epoch, info):
        seen[epoch] = [
            info.val_probabilities[i, :n].numpy().astype(float) for i, n in enumerate(info.val_counts)
        ]

    config = KINDS[kind](dropout=0.6)
    result = train_configuration(table_of(), config, on_epoch=on_epoch)
    last = seen[config.epochs - 1]
    for fold, rows in result.predictions.groupby("fold"):
        np.testing.assert_array_equal(rows["probability"].to_numpy(), last[fold])


# --------------------------------------------------------------------------- repeated CV
@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(20, 90),
    folds=st.integers(2, 5),
    repeats=st.integers(2, 4),
    seed=st.integers(0, 10_000),
    positives=st.floats(0.2, 0.6),
    grouped=st.booleans(),
)
def test_repeated_cv_uses_r_different_stratified_partitions(n, folds, repeats, seed, positives, grouped):
    """Each repeat's validation sets partition every row (training rows: the rest), stratified within one
    row per class of an even share (per patient when rows share a patient), and no two repeats agree."""
    from mmt_tune.training.preprocess import make_repeated_folds

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(int)
    y[: 2 * folds] = np.arange(2 * folds) % 2  # enough of each class
    table = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "label": y})
    if grouped:  # two rows (lesions) per patient, same label
        table = pd.concat([table, table], ignore_index=True)
    splits = make_repeated_folds(table, folds, seed, repeats)
    assert len(splits) == folds * repeats
    labels, patients = table["label"].to_numpy(), table["patient_id"].to_numpy()
    partitions = []
    for r in range(repeats):
        mine = splits[r * folds : (r + 1) * folds]
        every = np.sort(np.concatenate([val for _, val in mine]))
        np.testing.assert_array_equal(every, np.arange(len(table)))
        for train, val in mine:
            np.testing.assert_array_equal(np.sort(train), np.setdiff1d(np.arange(len(table)), val))
            assert not set(patients[train]) & set(patients[val])
            for c in (0, 1):
                share = (labels == c).sum() / folds
                slack = 1 if not grouped else 2
                assert abs((labels[val] == c).sum() - share) <= slack
        partitions.append(frozenset(frozenset(val.tolist()) for _, val in mine))
    assert len(set(partitions)) == repeats


def test_a_repeated_cross_validation_scores_every_row_once_per_repeat_on_different_folds():
    from mmt_tune.training.crossval import train_configuration

    table = table_of()
    result = train_configuration(table, KINDS["logreg"](repeats=3))
    p = result.predictions
    assert len(result.folds) == 9
    folds_of = []
    for r in range(3):
        rows = p[p["repeat"] == r]
        np.testing.assert_array_equal(np.sort(rows["row"]), np.arange(len(table)))
        folds_of.append(rows.set_index("row")["fold"] % 3)
    assert not folds_of[0].equals(folds_of[1]) and not folds_of[1].equals(folds_of[2])


# --------------------------------------------------------------------------- metrics through every path
def _counts(y, p):
    y, predicted = np.asarray(y).astype(int), np.asarray(p) >= 0.5
    return (
        int(np.sum(predicted & (y == 1))),
        int(np.sum(~predicted & (y == 0))),
        int(np.sum(predicted & (y == 0))),
        int(np.sum(~predicted & (y == 1))),
    )


def _pairs_auc(y, p):
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype=float)
    pos, neg = p[y == 1][:, None], p[y == 0][None, :]
    if pos.size == 0 or neg.size == 0:
        return np.nan
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


#: Each metric's definition on the confusion matrix at threshold 0.5 (AUC: the share of ordered pairs).
DEFINITIONS = {
    "accuracy": lambda y, p: (lambda tp, tn, fp, fn: (tp + tn) / (tp + tn + fp + fn))(*_counts(y, p)),
    "auc": _pairs_auc,
    "precision": lambda y, p: (lambda tp, tn, fp, fn: tp / (tp + fp) if tp + fp else np.nan)(*_counts(y, p)),
    "sensitivity": lambda y, p: (lambda tp, tn, fp, fn: tp / (tp + fn) if tp + fn else np.nan)(
        *_counts(y, p)
    ),
    "specificity": lambda y, p: (lambda tp, tn, fp, fn: tn / (tn + fp) if tn + fp else np.nan)(
        *_counts(y, p)
    ),
}


def designed_scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """600 rows whose five metrics all differ: sensitivity 0.2, specificity 0.95, precision 0.8, accuracy
    0.575 and an AUC near 0.88."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(300), np.zeros(300)].astype(int)
    p = np.r_[
        rng.uniform(0.5, 1, 60),
        rng.uniform(0.3, 0.5, 240),
        rng.uniform(0.5, 1, 15),
        rng.uniform(0, 0.45, 285),
    ]
    order = rng.permutation(len(y))
    return y[order], p[order]


def assert_distinct(values: dict) -> None:
    """The five metrics differ, so a swap of two of them cannot go unseen."""
    numbers = sorted(values.values())
    assert all(b - a > 1e-3 for a, b in zip(numbers, numbers[1:], strict=False)), values


def assert_metric(y, p, metric, value, interval=None, seed=0) -> None:
    """``value`` is ``metric``'s definition on (y, p) and ``interval`` the bootstrap interval of that definition."""
    from mmt_tune.stats import bootstrap_interval

    assert value == DEFINITIONS[metric](y, p), metric
    if interval is not None:
        expected = bootstrap_interval(y, p, DEFINITIONS[metric], seed=seed)
        assert tuple(interval) == expected, metric


def test_every_metric_function_is_its_definition():
    from mmt_tune.metrics import METRIC_FUNCTIONS, all_metrics

    y, p = designed_scores()
    values = all_metrics(y, p)
    assert_distinct(values)
    for metric in METRICS:
        assert_metric(y, p, metric, values[metric])
        assert_metric(y, p, metric, METRIC_FUNCTIONS[metric](y, p))
    for seed in range(20):  # small, tied and one-sided samples too
        rng = np.random.default_rng(seed)
        n = int(rng.integers(4, 30))
        y = rng.integers(0, 2, n)
        p = np.round(rng.random(n), 1)
        for metric, value in all_metrics(y, p).items():
            expected = DEFINITIONS[metric](y, p)
            assert value == expected or (np.isnan(value) and np.isnan(expected)), (seed, metric)


def test_predict_prints_each_metric_with_its_own_interval():
    """External validation in ``predict``: each metric and its bootstrap interval are the definition's."""
    from mmt_tune.deploy.validation import validation

    y, p = designed_scores(1)
    report = validation(pd.DataFrame({"label": y, "probability": p}), seed=3)
    assert_distinct({m: report[m]["value"] for m in METRICS})
    for metric in METRICS:
        assert_metric(y, p, metric, report[metric]["value"], report[metric]["ci95"], seed=3)
    assert report["brier"] == np.mean((p - y) ** 2)


def test_a_held_out_table_reports_each_metric_with_its_own_interval():
    from mmt_tune.study.holdout import score_chosen

    table = table_of(n=140, seed=2)
    config = config_of("logreg", ("DWI",), C=0.1)
    train, test = np.arange(70), np.arange(70, 140)
    summary, predictions = score_chosen(table, [(config, 0.7, "t0")], train, test, seed=4)
    y, p = predictions["label"].to_numpy(), predictions["probability"].to_numpy()
    np.testing.assert_array_equal(y, table["label"].to_numpy()[test])
    row = summary.iloc[0]
    assert_distinct({m: row[f"test_{m}"] for m in METRICS})
    for metric in METRICS:
        interval = (row[f"test_{metric}_low"], row[f"test_{metric}_high"])
        assert_metric(y, p, metric, row[f"test_{metric}"], interval, seed=4)
    # the Brier score of the held-out rows, with its own interval around it
    assert row["test_brier"] == np.mean((p - y) ** 2)
    assert row["test_brier_low"] <= row["test_brier"] <= row["test_brier_high"] < 1
    assert (row["test_brier_low"], row["test_brier_high"]) != (row["test_auc_low"], row["test_auc_high"])


#: Table 2's column headings, as a reader of the table sees them.
HEADINGS = {
    "accuracy": "Accuracy",
    "auc": "AUC",
    "precision": "Precision",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
}


def test_table2_and_performance_json_report_each_metric_as_its_definition_over_folds(tmp_path):
    """Fold metrics of a trial, Table 2's mean ± std and performance.json's means are the definitions applied
    to each fold's out-of-fold predictions."""
    from mmt_tune.analysis.curves import performance
    from mmt_tune.analysis.metrics import aggregate
    from mmt_tune.analysis.results import Study
    from mmt_tune.metrics import mean_std
    from mmt_tune.records import TrialRecord, trials_table
    from mmt_tune.stats import clipped, corrected_t_interval
    from mmt_tune.study.trial_io import final_report
    from mmt_tune.training.crossval import train_configuration

    table = table_of(n=150, seed=3)
    config = config_of("logreg", ("FLAIR",), C=0.1, folds=5)
    result = train_configuration(table, config)
    record = TrialRecord(
        {"model": "logreg", "present": ["FLAIR"], "C": 0.1},
        {**final_report(result), "trial_id": "t0"},
        False,
        tmp_path,
    )
    predictions = result.predictions.assign(model="logreg", present="FLAIR", trial_id="t0")
    study = Study(
        tmp_path, trials_table([record], "s"), predictions=predictions, data={"modalities": list(MODALITIES)}
    )
    metrics = aggregate(study)
    by_fold = {m: [] for m in METRICS}
    for fold, rows in result.predictions.groupby("fold"):
        y, p = rows["label"].to_numpy(), rows["probability"].to_numpy()
        for metric in METRICS:
            by_fold[metric].append(DEFINITIONS[metric](y, p))
            assert result.folds.set_index("fold").loc[fold, metric] == by_fold[metric][-1]
    means = {m: float(np.mean(v)) for m, v in by_fold.items()}
    assert_distinct(means)
    best = metrics.best.iloc[0]
    row = metrics.table2().iloc[0]
    entry = performance(metrics, {"rows": len(table), "positives": int(table["label"].sum())})[
        "configurations"
    ][0]
    for metric in METRICS:
        assert best[f"{metric}_mean"] == pytest.approx(means[metric], abs=1e-15)
        assert row[HEADINGS[metric]] == mean_std(means[metric], float(np.std(by_fold[metric])))
        assert entry["metrics"][metric]["mean"] == pytest.approx(means[metric], abs=1e-15)
        assert entry["metrics"][metric]["n_scores"] == 5
        # each metric's interval is the corrected resampled t over *its* fold scores (1/(k-1): 5 folds)
        expected = clipped(corrected_t_interval(by_fold[metric], 1 / 4))
        assert tuple(entry["metrics"][metric]["ci95"]) == pytest.approx(expected, abs=1e-12), metric


# --------------------------------------------------------------------------- the fold cache
def _perturbations(table: pd.DataFrame, config: TrainConfig):
    """(what, table, config) pairs that each change the folds a study must get."""
    swap = {c: c.replace("T1WI__", "FLAIR__") for c in table.columns if c.startswith("T1WI__")}
    swap.update({c: c.replace("FLAIR__", "T1WI__") for c in table.columns if c.startswith("FLAIR__")})
    value, label = table.copy(), table.copy()
    value.iloc[3, value.columns.get_loc("DWI__original_firstorder_F0")] += 1e-9
    label.iloc[5, label.columns.get_loc("label")] = 1 - label["label"].iloc[5]
    yield "two sequences' column names swapped", table.rename(columns=swap), config
    yield "one value changed in its last digits", value, config
    yield "one label changed", label, config
    yield "rows in another order", table.iloc[::-1].reset_index(drop=True), config
    preprocess = config.preprocess
    for change in (
        {"k": 3},
        {"k": {"T1WI": 4, "FLAIR": 4, "DWI": 3}},
        {"score": "mutual_info"},
        {"correlation_threshold": 0.5},
        {"smote": False},
        {"smote_neighbors": 2},
    ):
        yield (
            f"preprocessing {change}",
            table,
            dataclasses.replace(config, preprocess=dataclasses.replace(preprocess, **change)),
        )
    for change in ({"folds": 4}, {"repeats": 2}, {"seed": 1}, {"early_stopping": 3}):
        yield f"{change}", table, dataclasses.replace(config, **change)
    yield "other sequences", table, config_of("logreg", ("T1WI", "FLAIR"))


def test_the_fold_cache_hands_out_only_folds_fitted_on_this_table_with_these_settings():
    """After the cache holds a table's folds, any change of the table's content, column names, row order or
    the preprocessing settings gets folds equal to a fresh fit of *that* table; the same table and settings
    get the cached folds back (the same objects)."""
    from mmt_tune.training import fold_cache
    from mmt_tune.training.crossval import check_table

    table = table_of()
    config = KINDS["logreg"]()

    def fresh(t, c):
        columns, splits = check_table(t, c)
        return fold_cache._fit_folds(t, c, columns, splits)

    def cached(t, c):
        columns, splits = check_table(t, c)
        return fold_cache.prepare_folds(t, c, columns, splits)

    fold_cache._FOLD_CACHE.clear()
    first = cached(table, config)
    for what, other_table, other_config in _perturbations(table, config):
        got = cached(other_table, other_config)
        assert got is not first, what
        assert_same_arrays(got, fresh(other_table, other_config), what)
        assert cached(table, config) is first or len(fold_cache._FOLD_CACHE) >= fold_cache.FOLD_CACHE_SIZE
        first = cached(table, config)
        assert_same_arrays(first, fresh(table, config), "the table itself")


# --------------------------------------------------------------------------- W&B privacy
WANDB_TRIAL = """
import sys
import wandb
from mmt_tune.study.tracking import Tracking, start_trial_run

run = start_trial_run(
    Tracking(mode="offline", study="s", dir=sys.argv[1]), {"lr": 1e-5, "present": ["DWI"]}, "mmt1m/DWI", "mmt1m"
)
for epoch in range(3):
    run.log({"epoch": epoch, "auc": 0.7, "train/total": 1.0})
run.summary.update({"cv/auc": 0.7, "fold0/auc": 0.71})
run.finish()
wandb.teardown()
"""


def test_wandb_records_no_host_user_or_home_name(tmp_path):
    """A trial's W&B run, opened by the tracking code on a machine with a made-up host name (its own UTS
    namespace, where the system allows one), a made-up user and home: no file W&B writes names any of them
    (the .wandb record `wandb sync` uploads, the run's files and logs)."""
    host, user = "zqhost-4417", "zquser-8263"
    home = tmp_path / "h0me-7f3a"
    work = home / "cohort-project"
    work.mkdir(parents=True)
    (work / "trial.py").write_text(WANDB_TRIAL)
    runs = work / "results" / "wandb"  # where a study keeps its runs: under the user's home
    env = {
        **os.environ,
        "USER": user,
        "LOGNAME": user,
        "HOME": str(home),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.pop("WANDB_SERVICE", None)
    command = [sys.executable, "trial.py", str(runs)]
    unshare = shutil.which("unshare")
    own_host = (
        unshare is not None
        and subprocess.run([unshare, "-u", "hostname", host], capture_output=True).returncode == 0
    )
    if own_host:
        script = f"hostname {host} && exec " + " ".join(f"'{c}'" for c in command)
        command = [unshare, "-u", "sh", "-c", script]
    else:  # no namespace here: the real host name stands in
        import socket

        host = socket.gethostname()
    subprocess.run(command, cwd=work, env=env, check=True, capture_output=True, timeout=120)
    written = [p for p in runs.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in written)
    for path in written:
        content = path.read_bytes()
        # W&B's own debug logs name the folder they are in (local files, never uploaded); what `wandb sync`
        # uploads (the .wandb record and files/) must not name the home either
        uploaded = path.suffix == ".wandb" or "files" in path.relative_to(runs).parts
        for needle in (host, user, *([str(home), home.name] if uploaded else [])):
            if len(needle) >= 4:
                assert needle.encode() not in content, f"{needle} in {path.relative_to(runs)}"
    if own_host:  # and the check can see a name: the record does carry a host field, masked
        record = next(p for p in written if p.suffix == ".wandb").read_bytes()
        assert b"masked" in record


@pytest.mark.parametrize("patience", [True, 0, 2.5, "3"])
def test_early_stopping_that_is_not_a_patience_is_one_line(patience):
    from mmt_tune.errors import InputError

    with pytest.raises(InputError, match="early_stopping is a patience in epochs"):
        config_of("mmt1m", ("T1WI",), early_stopping=patience)
