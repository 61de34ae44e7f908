"""Cross-validated training: packed == sequential, determinism, outputs, errors, scientific sanity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, make_table

from mmt_tune import train as train_cli
from mmt_tune.config import TrainConfig
from mmt_tune.errors import InputError
from mmt_tune.metrics import METRICS
from mmt_tune.training.crossval import train_configuration

SMALL = {"d_model": 16, "hidden": 32, "k": 6}


@pytest.mark.parametrize(
    "model, present, options",
    [
        ("mmt1m", ("DWI",), {**SMALL, "dropout": 0.2}),
        ("mmt2m", ("T1WI", "FLAIR"), {**SMALL, "interaction": "sdpa"}),
        ("mmt2m", ("T1WI", "DWI"), {**SMALL, "dropout": 0.3, "batch_size": 7}),
        ("mfnvae", ("T1WI", "DWI"), {"latent": 8, "hidden": 32, "k": 6}),
        ("mfnvae", ("FLAIR",), {"latent": 8, "hidden": 32, "k": 20, "early_stopping": 3}),
    ],
)
def test_packed_and_sequential_training_give_identical_results(model, present, options):
    """Same seeds -> the same numbers bit for bit, dropout and VAE sampling included.

    A fold trained alone is padded like the pack (feature width, steps per epoch, validation length), so
    every kernel sees the same shapes and sums in the same order. The cases include folds with different
    numbers of batches per epoch (batch 7) and a k larger than the features left after selection.
    Single-threaded, as Ray runs a one-CPU trial: with several intra-op threads a reduction may be split
    differently for 1 and k folds (README: rounding-level differences).
    """
    import torch  # a hard dependency of the trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _assert_packed_equals_sequential(model, present, options)
    finally:
        torch.set_num_threads(threads)


def _assert_packed_equals_sequential(model, present, options):
    table = make_table(90, signal={"DWI": 1.0, "T1WI": 0.5})
    config = TrainConfig.from_options(model, present, options, epochs=12, folds=3, seed=5)
    packed = train_configuration(table, config, packed=True)
    sequential = train_configuration(table, config, packed=False)
    pd.testing.assert_frame_equal(packed.folds, sequential.folds)
    np.testing.assert_array_equal(packed.predictions["probability"], sequential.predictions["probability"])
    pd.testing.assert_frame_equal(packed.losses, sequential.losses)


@pytest.mark.slow
@pytest.mark.parametrize("model, present", [("mmt2m", ("T1WI", "DWI")), ("mfnvae", ("T1WI", "FLAIR", "DWI"))])
def test_packing_is_exact_at_the_default_model_on_the_phantom(model, present):
    """The issue-11 check: default width and depth, dropout 0.1, VAE sampling on, 50 epochs, the phantom
    cohort (extracted with PyRadiomics on first use): out-of-fold probabilities within 1e-5 (they agree
    exactly here; the tolerance is the issue's)."""
    import torch

    from mmt_tune.data.phantom import phantom_features
    from mmt_tune.data.table import read_feature_table

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    table, _ = read_feature_table(phantom_features(progress=False))
    config = TrainConfig.from_options(model, present, {}, epochs=50)
    assert config.model_options == {}  # the defaults: d_model 64, 2 layers, dropout 0.1 (MMT); latent 32
    try:
        packed = train_configuration(table, config, packed=True)
        sequential = train_configuration(table, config, packed=False)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(
        packed.predictions["probability"], sequential.predictions["probability"], rtol=0, atol=1e-5
    )


@pytest.mark.parametrize(
    "model, present, options",
    [("mmt1m", ("DWI",), {**SMALL, "dropout": 0.2}), ("mfnvae", ("T1WI", "DWI"), {"latent": 8, "k": 6})],
)
def test_resuming_from_a_mid_training_state_gives_the_uninterrupted_result(model, present, options):
    """The checkpoint of epoch 3 (weights, AdamW moments, noise streams, history) continues bit for bit."""
    table = make_table(80, signal={"DWI": 1.0})
    config = TrainConfig.from_options(model, present, options, epochs=7, folds=3, seed=4)
    states = {}

    def keep(epoch, info):
        if epoch == 3:
            states["state"] = info.state()

    straight = train_configuration(table, config, on_epoch=keep)
    resumed = train_configuration(table, config, resume=states["state"])
    pd.testing.assert_frame_equal(straight.folds, resumed.folds)
    pd.testing.assert_frame_equal(straight.losses, resumed.losses)
    # ...while resuming with the noise streams rewound would not (so the comparison above can fail).
    rewound = {
        **states["state"],
        "noise": {"generators": states["state"]["noise"]["generators"], "block": None},
    }
    assert not train_configuration(table, config, resume=rewound).losses.equals(straight.losses)


def test_same_seed_same_metrics_and_another_seed_differs():
    table = make_table(80, signal={"DWI": 1.0})
    config = TrainConfig.from_options("mmt1m", ("DWI",), SMALL, epochs=8, folds=3, seed=1)
    a, b = train_configuration(table, config), train_configuration(table, config)
    pd.testing.assert_frame_equal(a.folds, b.folds)
    pd.testing.assert_frame_equal(a.losses, b.losses)
    c = train_configuration(
        table, TrainConfig.from_options("mmt1m", ("DWI",), SMALL, epochs=8, folds=3, seed=2)
    )
    assert not a.predictions["probability"].equals(c.predictions["probability"])


def test_outputs_cover_every_row_once_and_losses_per_epoch():
    table = make_table(60, signal={"DWI": 1.0})
    result = train_configuration(
        table, TrainConfig.from_options("mmt1m", ("T1WI",), SMALL, epochs=5, folds=3)
    )
    assert sorted(result.predictions["row"]) == list(range(60))
    assert result.predictions["patient_id"].tolist() == table["patient_id"].tolist()
    assert list(result.folds.columns[-5:]) == list(METRICS)
    assert set(result.losses.columns) == {
        "epoch",
        "fold",
        "split",
        "classification",
        "auxiliary",
        "reconstruction_FLAIR",
        "reconstruction_DWI",
        "total",
    }
    assert len(result.losses) == 5 * 3 * 2
    assert (result.folds["n_train"] + result.folds["n_val"] == 60).all()


def test_early_stopping_stops_and_keeps_the_best_weights_of_the_held_out_training_rows():
    table = make_table(80, signal={"DWI": 1.0})
    config = TrainConfig.from_options(
        "mmt1m", ("DWI",), {**SMALL, "early_stopping": 2, "lr": 0.05}, epochs=60, folds=3
    )
    result = train_configuration(table, config)
    assert result.losses["epoch"].max() < 59, "training stopped before the last epoch"
    assert set(result.losses["split"]) == {"train", "val", "monitor"}
    # The returned model is each fold's epoch with the lowest classification loss on the monitor rows (held
    # out of the training rows): the validation cross-entropy recomputed from the out-of-fold probabilities
    # equals the one logged at that epoch, and is not in general the lowest validation loss.
    monitor = result.losses[result.losses["split"] == "monitor"]
    val = result.losses[result.losses["split"] == "val"].set_index(["fold", "epoch"])
    for fold, rows in result.predictions.groupby("fold"):
        best_epoch = monitor[monitor["fold"] == fold].sort_values("classification", kind="stable").iloc[0]
        p_true = np.where(rows["label"] == 1, rows["probability"], 1 - rows["probability"])
        logged = val.loc[(fold, int(best_epoch["epoch"])), "classification"]
        assert -np.log(p_true).mean() == pytest.approx(logged, rel=1e-4)
    # Fewer rows trained on: the monitor rows (about a fifth, stratified) left the fitting set.
    plain = train_configuration(table, TrainConfig.from_options("mmt1m", ("DWI",), SMALL, epochs=2, folds=3))
    assert (result.folds["n_train"] < plain.folds["n_train"]).all()
    assert (plain.folds["n_train"] - result.folds["n_train"]).between(8, 12).all()


@pytest.mark.parametrize("model, present", [("mmt2m", ("T1WI", "FLAIR")), ("mmt1m", ("DWI",))])
def test_early_stopping_cannot_see_a_missing_modality_of_the_validation_rows(model, present):
    """Changing only the validation rows' features of a missing modality leaves every prediction unchanged,
    bit for bit, with early stopping on (it once monitored a validation loss that included reconstructing
    them, which moved predictions by up to 0.35)."""
    table = make_table(90, signal={"DWI": 1.0, "T1WI": 0.8})
    config = TrainConfig.from_options(model, present, {**SMALL, "early_stopping": 3, "lr": 0.02}, epochs=40)
    reference = train_configuration(table, config)
    changed = table.copy()
    missing = [m for m in ("T1WI", "FLAIR", "DWI") if m not in present]
    columns = [c for c in table.columns if c.split("__")[0] in missing]
    rng = np.random.default_rng(7)
    changed[columns] = rng.normal(50, 200, size=(len(table), len(columns)))
    # Edit one fold's validation rows (the others' training rows, so their models change: not this one's).
    fold, rows = next(iter(reference.predictions.groupby("fold")))
    edited = table.copy()
    edited.loc[edited.index[rows["row"]], columns] = changed.loc[changed.index[rows["row"]], columns]
    other = train_configuration(edited, config)
    mine = other.predictions[other.predictions["fold"] == fold]["probability"].to_numpy()
    np.testing.assert_array_equal(mine, rows["probability"].to_numpy())
    # ...while the validation loss, which reconstructs them, does see the change (the test can fail).
    val = other.losses[(other.losses["split"] == "val") & (other.losses["fold"] == fold)]
    before = reference.losses[(reference.losses["split"] == "val") & (reference.losses["fold"] == fold)]
    n = min(len(val), len(before))  # packed folds log until the last fold stops
    assert not np.allclose(val["total"].to_numpy()[:n], before["total"].to_numpy()[:n])


@pytest.mark.parametrize("seed", [0, 2])
def test_each_loss_weight_moves_its_term_in_training(seed):
    """A larger weight on a term makes training reduce that term further (for several study seeds: with one
    seed the check once held by luck and failed for seed 2 on a 2-fold split)."""
    table = make_table(80, signal={"DWI": 1.0})
    final = {}
    for weight in ("alpha_FLAIR", "beta", "gamma"):
        for value in (0.05, 1.0):
            options = {
                **SMALL,
                "alpha_FLAIR": 0.5,
                "alpha_DWI": 0.5,
                "beta": 0.5,
                "gamma": 0.5,
                weight: value,
                "dropout": 0.0,
                "lr": 3e-3,
            }
            result = train_configuration(
                table, TrainConfig.from_options("mmt1m", ("T1WI",), options, epochs=15, folds=3, seed=seed)
            )
            last = result.losses[(result.losses["split"] == "train") & (result.losses["epoch"] == 14)]
            final[weight, value] = last[
                {"alpha_FLAIR": "reconstruction_FLAIR", "beta": "classification", "gamma": "auxiliary"}[
                    weight
                ]
            ].mean()
    for weight in ("alpha_FLAIR", "beta", "gamma"):
        assert final[weight, 1.0] < final[weight, 0.05], weight


def test_cli_writes_fold_metrics_losses_and_predictions(tmp_path, capsys):
    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(60, signal={"DWI": 1.0}), features, {})
    (tmp_path / "cfg.yaml").write_text("d_model: 16\nhidden: 32\nalpha_T1WI: 0.3\nbeta: 0.8\nk: 5\n")
    out = tmp_path / "run"
    code = train_cli.main(
        [
            "--features",
            str(features),
            "--model",
            "mmt2m",
            "--present",
            "FLAIR+DWI",
            "--config",
            str(tmp_path / "cfg.yaml"),
            "--epochs",
            "3",
            "--folds",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean ± std" in printed and "auc" in printed
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == 3 and set(METRICS) <= set(folds.columns)
    assert len(pd.read_csv(out / "predictions.csv")) == 60
    assert {"epoch", "fold", "split", "total"} <= set(pd.read_csv(out / "losses.csv").columns)
    assert "alpha_T1WI: 0.3" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "mmt1m", "--present", "T1WI+FLAIR"], "mmt1m needs exactly 1 present modality"),
        (["--model", "mmt2m", "--present", "T1WI+PET"], "unknown modality 'PET'"),
        (["--model", "mfnvae", "--present", "T1WI", "--config", "{cfg}"], "unknown option 'dropout_rate'"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, argv, message):
    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "f.parquet"
    write_feature_table(make_table(40), features, {})
    (tmp_path / "cfg.yaml").write_text("dropout_rate: 0.3\n")
    argv = [a.replace("{cfg}", str(tmp_path / "cfg.yaml")) for a in argv]
    assert train_cli.main(["--features", str(features), *argv, "--epochs", "1", "--folds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    if "cfg" in " ".join(argv):
        assert str(tmp_path / "cfg.yaml") in err[0], "names the config file"


def test_config_errors_name_the_key():
    with pytest.raises(InputError, match="alpha_T1WI: mmt2m with present=T1WI\\+DWI reconstructs only FLAIR"):
        TrainConfig.from_options("mmt2m", ("T1WI", "DWI"), {"alpha_T1WI": 1.0})
    with pytest.raises(InputError, match="unknown option .gamma. for mmt2m"):
        TrainConfig.from_options("mmt2m", ("T1WI", "DWI"), {"gamma": 1.0})
    with pytest.raises(InputError, match="unknown model"):
        TrainConfig.from_options("mmt3m", ("T1WI",), {})


def test_table_errors():
    table = make_table(40).drop(columns=[c for c in make_table(40).columns if c.startswith("FLAIR__")])
    with pytest.raises(InputError, match="no columns for modality FLAIR"):
        train_configuration(table, TrainConfig.from_options("mmt1m", ("T1WI",), SMALL, epochs=1, folds=2))
    one_class = make_table(40)
    one_class["label"] = 0
    with pytest.raises(InputError, match="stratified folds"):
        train_configuration(one_class, TrainConfig.from_options("mfnvae", ("T1WI",), {}, epochs=1, folds=2))


@pytest.mark.slow
def test_planted_signal_modality_beats_the_others():
    table = make_table(240, signal={"DWI": 1.5}, seed=3)
    auc = {}
    for present in ("DWI", "T1WI"):
        config = TrainConfig.from_options("mmt1m", (present,), {**SMALL, "lr": 3e-3}, epochs=40, folds=5)
        auc[present] = train_configuration(table, config).summary()["auc"][0]
    assert auc["DWI"] > 0.75 and auc["DWI"] > auc["T1WI"] + 0.15, auc


@pytest.mark.slow
def test_labels_independent_of_features_give_chance_auc():
    """Leakage through selection or SMOTE would push this above chance (feature selection on all rows gives
    0.6-0.7 here). Measured on 16 no-signal tables (data seeds 11-18 x 2 training seeds), the CV AUC of one
    run scatters with a standard deviation of 0.045 (folds are correlated: more than the per-fold SE suggests),
    so one table can reach 0.6 by chance. The mean over 4 tables has SD ~0.023: |mean - 0.5| < 0.08 is a
    ~3.5-sigma bound."""
    config = TrainConfig.from_options("mmt2m", ("T1WI", "DWI"), {**SMALL, "lr": 3e-3}, epochs=40, folds=5)
    aucs = [
        train_configuration(make_table(300, signal={}, n_features=40, seed=seed), config).summary()["auc"][0]
        for seed in (11, 12, 13, 14)
    ]
    assert abs(np.mean(aucs) - 0.5) < 0.08, aucs


def test_packed_benchmark_runs_both_modes_on_a_small_table(tmp_path):
    """benchmarks/train_packed.py keeps working as the trainer changes (both modes, the scaling fit)."""
    import subprocess
    import sys

    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(60, signal={"DWI": 1.0}), features, {})
    script = REPO / "benchmarks" / "train_packed.py"
    for extra in ([], ["--scaling"]):
        done = subprocess.run(
            [sys.executable, str(script), "--features", str(features), "--epochs", "2", *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        rows = [line for line in done.stdout.splitlines() if line.startswith(("| mmt1m", "| mfnvae"))]
        assert len(rows) == 4, done.stdout  # each model's row, printed live and in the final table
        for row in rows:
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            ratios = [cell for cell in cells if cell.endswith("x")]
            assert ratios and all(float(r[:-1]) > 0 for r in ratios), row
            if not extra:  # both modes' fold AUCs agree (exact packing)
                assert cells[-1] == "0.000", row


def test_mfnvae_does_not_collapse_on_a_single_strong_modality():
    """Breast cancer, FLAIR (the 'error' features) only: with KL summed over latent dimensions the posterior
    collapsed (out-of-fold probabilities 0.48-0.55, accuracy 0.47 < majority 0.63); as a mean it learns."""

    from mmt_tune.data.public import breast_cancer_table

    table = breast_cancer_table()
    result = train_configuration(
        table, TrainConfig.from_options("mfnvae", ("FLAIR",), {}, epochs=40, folds=3)
    )
    probability = result.predictions["probability"]
    majority = 1 - table["label"].mean()
    assert result.folds["accuracy"].mean() > majority + 0.1
    assert probability.std() > 0.2 and probability.quantile(0.9) - probability.quantile(0.1) > 0.5
    kl = result.losses[(result.losses["split"] == "train") & (result.losses["epoch"] == 39)]["kl"]
    assert (kl > 0.02).all(), "the latent carries information (KL well above 0)"


def test_kl_warmup_ramps_the_kl_weight():
    from mmt_tune.training.trainer import _epoch_weights

    config = TrainConfig.from_options("mfnvae", ("DWI",), {"kl_weight": 0.5, "kl_warmup": 4})
    assert [_epoch_weights(config, e)["kl_weight"] for e in range(6)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    with pytest.raises(InputError, match="kl_warmup: only MFN-VAE"):
        TrainConfig.from_options("mmt1m", ("DWI",), {"kl_warmup": 4})


def test_cli_pins_torch_threads(tmp_path, capsys):
    """The training command sets torch's intra-op threads (default 1) instead of torch's one per core."""
    import torch

    from mmt_tune.data.table import write_feature_table

    features = tmp_path / "features.parquet"
    write_feature_table(make_table(40), features, {})
    argv = ["--features", str(features), "--model", "logreg", "--present", "DWI", "--folds", "2"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert train_cli.main(argv) == 0 and torch.get_num_threads() == 1
        assert train_cli.main([*argv, "--threads", "2"]) == 0 and torch.get_num_threads() == 2
        assert train_cli.main([*argv, "--threads", "0"]) == 2
        assert "--threads must be >= 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_trials_with_the_same_preprocessing_share_the_fitted_folds_read_only():
    """The per-process fold cache: a trial that differs only in what the model sees (lr, C) gets the
    same fitted folds (no refit), numbers equal to a fresh fit; another k, seed or table content refits."""
    from mmt_tune.training.crossval import check_table
    from mmt_tune.training.fold_cache import _FOLD_CACHE, prepare_folds

    table = make_table(60, signal={"DWI": 1.5})
    _FOLD_CACHE.clear()

    def folds(model, options, data=table):
        config = TrainConfig.from_options(model, ("DWI",), {"folds": 3, **options})
        return prepare_folds(data, config, *check_table(data, config))

    first = folds("mmt1m", {"lr": 1e-4})
    assert folds("mmt1m", {"lr": 1e-3, "beta": 0.2}) is first
    assert folds("logreg", {"C": 0.1}) is not first  # a baseline uses only its present modality's columns
    assert folds("logreg", {"C": 1.0}) is folds("logreg", {"C": 0.1})
    assert folds("mmt1m", {"k": 8}) is not first and folds("mmt1m", {"seed": 1}) is not first
    changed = table.copy()
    changed.iloc[0, changed.columns.get_loc("DWI__original_firstorder_F0")] += 1.0
    assert folds("mmt1m", {"lr": 1e-4}, changed) is not first
    _FOLD_CACHE.clear()
    fresh = folds("mmt1m", {"lr": 1e-4})
    assert fresh is not first
    for a, b in zip(fresh, first, strict=True):
        np.testing.assert_array_equal(a.train["DWI"], b.train["DWI"])
        np.testing.assert_array_equal(a.val["T1WI"], b.val["T1WI"])
    with pytest.raises(ValueError, match="read-only"):
        first[0].train["DWI"][0, 0] = 0.0
    results = [train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {"folds": 3}))]
    _FOLD_CACHE.clear()
    results.append(train_configuration(table, TrainConfig.from_options("logreg", ("DWI",), {"folds": 3})))
    np.testing.assert_array_equal(
        results[0].predictions["probability"], results[1].predictions["probability"]
    )
