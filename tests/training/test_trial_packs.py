"""Many trials of one configuration as one packed model: a trial's numbers do not depend on its pack."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_table

from mmt_tune._internals import optuna_study

MODS = ("T1WI", "FLAIR", "DWI")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "model, present, options",
    [
        (
            "mmt1m",
            ("DWI",),
            [{"lr": 1e-4}, {"lr": 3e-4, "beta": 0.5, "alpha_T1WI": 2.0}, {"lr": 1e-3, "gamma": 0.2}],
        ),
        ("mfnvae", MODS, [{"lr": 1e-4, "kl_warmup": 4}, {"lr": 3e-4, "kl_weight": 0.1, "weight_decay": 0.0}]),
    ],
)
def test_a_trial_gets_the_same_numbers_alone_in_a_pack_of_folds_and_packed_with_other_trials(
    model, present, options
):
    """Tolerance: none. Fold metrics, out-of-fold probabilities and every loss value are bit-identical (one
    torch thread; each slice has its own parameters, optimizer group, loss weights and random streams)."""
    from mmt_tune.config import TrainConfig
    from mmt_tune.training.crossval import train_configuration
    from mmt_tune.training.trial_packs import train_trials

    table = make_table(90, signal={"DWI": 1.5, "T1WI": 1.0})
    configs = [TrainConfig.from_options(model, present, {"epochs": 6, "folds": 3, **o}) for o in options]
    packed = train_trials(table, configs)
    for config, result in zip(configs, packed, strict=True):
        alone = train_configuration(table, config)  # its folds packed, no other trial
        sequential = train_configuration(table, config, packed=False)  # one fold at a time
        for other in (alone, sequential):
            np.testing.assert_array_equal(other.folds["auc"], result.folds["auc"])
            np.testing.assert_array_equal(other.predictions["probability"], result.predictions["probability"])
        numeric = alone.losses.select_dtypes("number").columns
        np.testing.assert_array_equal(alone.losses[numeric].to_numpy(), result.losses[numeric].to_numpy())
    # the trials differ: the pack did not give every trial the first one's settings
    assert not np.array_equal(packed[0].predictions["probability"], packed[1].predictions["probability"])


@pytest.mark.parametrize(
    "model, present, options", [("mmt1m", ("DWI",), {}), ("mfnvae", MODS, {"kl_warmup": 2})]
)
def test_the_training_step_is_captured_as_one_graph_with_the_same_numbers(model, present, options):
    """``compile``: the step's forward pass and losses traced as one graph (fullgraph: a host sync or a
    Python branch on data would fail), reused by every later step (a recompile fails: the KL warm-up
    changes its weight every epoch, as a tensor), with bit-identical numbers (aot_eager: the traced graph
    runs the same kernels)."""
    import torch._dynamo

    from mmt_tune.config import TrainConfig
    from mmt_tune.training.crossval import train_configuration

    table = make_table(90, signal={"DWI": 1.5, "T1WI": 1.0})
    base = {"epochs": 3, "folds": 3, **options}
    eager = train_configuration(table, TrainConfig.from_options(model, present, base))
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = train_configuration(
            table, TrainConfig.from_options(model, present, {**base, "compile": "aot_eager"})
        )
    torch._dynamo.reset()
    np.testing.assert_array_equal(compiled.predictions["probability"], eager.predictions["probability"])
    numeric = eager.losses.select_dtypes("number").columns
    np.testing.assert_array_equal(compiled.losses[numeric].to_numpy(), eager.losses[numeric].to_numpy())


def test_a_pack_resumed_from_a_mid_training_checkpoint_gives_the_uninterrupted_numbers():
    import torch

    from mmt_tune.config import TrainConfig
    from mmt_tune.training.trial_packs import train_trials

    table = make_table(90, signal={"DWI": 1.5})
    configs = [
        TrainConfig.from_options("mmt1m", ("DWI",), {"epochs": 6, "folds": 3, "lr": lr})
        for lr in (1e-4, 1e-3)
    ]
    saved = {}

    def keep(epoch, info):
        if epoch == 2:
            saved["state"] = info.state()

    whole = train_trials(table, configs, on_epoch=keep)
    state = torch.load(_round_trip(saved["state"]), weights_only=False)  # as a checkpoint file holds it
    resumed = train_trials(table, configs, resume=state)
    for a, b in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(a.predictions["probability"], b.predictions["probability"])
        numeric = a.losses.select_dtypes("number").columns
        np.testing.assert_array_equal(a.losses[numeric].to_numpy(), b.losses[numeric].to_numpy())


def _round_trip(state):
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_an_unknown_compile_backend_is_one_line_naming_it():
    from mmt_tune.config import TrainConfig
    from mmt_tune.errors import InputError
    from mmt_tune.training.crossval import train_configuration

    config = TrainConfig.from_options("mmt1m", ("DWI",), {"epochs": 1, "folds": 2, "compile": "nope"})
    with pytest.raises(InputError, match="--compile: unknown torch.compile backend 'nope'"):
        train_configuration(make_table(40), config)


def test_trials_that_differ_in_more_than_per_slice_options_are_not_packed():
    from mmt_tune.config import TrainConfig
    from mmt_tune.errors import InputError
    from mmt_tune.training.trial_packs import pack_key, train_trials

    a = TrainConfig.from_options("mmt1m", ("DWI",), {"lr": 1e-4})
    b = TrainConfig.from_options("mmt1m", ("DWI",), {"lr": 1e-3, "beta": 0.3, "kl_warmup": 0})
    c = TrainConfig.from_options("mmt1m", ("DWI",), {"d_model": 64})
    assert pack_key(a) == pack_key(b) != pack_key(c)
    with pytest.raises(InputError, match="may differ only in lr"):
        train_trials(make_table(60), [a, c])
    assert train_trials(make_table(60), []) == []


def test_the_searcher_packs_only_configurations_that_search_per_slice_options(tmp_path):
    from mmt_tune.spaces import load_space
    from mmt_tune.study.search import PerConfigurationSearch

    space = tmp_path / "space.yaml"
    space.write_text(
        "name: packs\nconfigurations:\n  - {model: mmt1m, present: [DWI]}\n  - {model: logreg, present: [DWI]}\n"
        "parameters:\n  lr: {distribution: loguniform, low: 1.0e-5, high: 1.0e-3}\n"
        "  beta: {distribution: uniform, low: 0.5, high: 1.5}\n"
        "  C: {distribution: loguniform, low: 1.0e-2, high: 1.0}\n"
    )
    searcher = PerConfigurationSearch(load_space(space), samples_per_configuration=5, seed=0, pack=3)
    assert searcher.total_trials == 2 + 5  # mmt1m: packs of 3 and 2; logreg: 5 single trials
    configs = [searcher.suggest(f"t{i}") for i in range(7)]
    assert searcher.suggest("t7") == PerConfigurationSearch.FINISHED
    packs = [c for c in configs if "pack" in c]
    assert [len(c["pack"]) for c in packs] == [3, 2] and all(c["model"] == "mmt1m" for c in packs)
    lrs = [member["lr"] for c in packs for member in c["pack"]]
    assert len(set(lrs)) == 5  # the constant liar spreads a pack's members
    first = configs.index(packs[0])
    searcher.on_trial_complete(f"t{first}", result={"members": '[{"auc": 0.6}, {"auc": 0.7}, {"auc": 0.8}]'})
    study = optuna_study(searcher.studies["mmt1m/DWI"])
    assert sorted(t.value for t in study.trials if t.value is not None) == [0.6, 0.7, 0.8]
    # d_model changes the model's shapes: trials searching it are not packed
    space.write_text(space.read_text() + "  d_model: {distribution: choice, values: [32, 64]}\n")
    searcher = PerConfigurationSearch(load_space(space), samples_per_configuration=5, seed=0, pack=3)
    assert searcher.total_trials == 10


def test_a_packed_study_records_every_member_as_a_trial_with_the_numbers_it_gets_alone(
    ray_local, tmp_path, capsys
):
    import json

    import optuna
    import pandas as pd

    from mmt_tune.config import TrainConfig
    from mmt_tune.data.table import write_feature_table
    from mmt_tune.errors import InputError
    from mmt_tune.study.entry import run_study
    from mmt_tune.study.search import open_storage
    from mmt_tune.training.crossval import train_configuration
    from mmt_tune.training.refit import trial_options

    table = make_table(60, signal={"DWI": 1.5})
    write_feature_table(table, tmp_path / "t.parquet", {})
    options = {"samples": 3, "epochs": 2, "folds": 2, "storage": tmp_path / "r", "verbose": 0}
    # one trial slot (2 CPUs per trial on 2): the pack of 3 is kept whole
    result = run_study(
        "mmt1m",
        tmp_path / "t.parquet",
        pack_trials=3,
        configurations=["mmt1m/DWI"],
        cpus_per_trial=2,
        **options,
    )
    trials = result.trials
    assert sorted(trials["trial_id"].unique()) == sorted(
        f"{trials['trial_id'].iloc[0][:-2]}-{j}" for j in range(3)
    )
    assert (trials["status"] == "ok").all() and len(trials) == 3 * 2
    for _, rows in trials.groupby("trial_id"):
        row = rows.iloc[0]
        config = TrainConfig.from_options("mmt1m", ["DWI"], trial_options(row), seed=0)
        alone = train_configuration(table, config)
        np.testing.assert_array_equal(
            alone.folds["auc"].to_numpy(), rows.sort_values("fold")["auc"].to_numpy()
        )
    study = optuna.load_study(
        study_name="mmt1m/DWI", storage=open_storage(result.experiment / "optuna.journal")
    )
    means = trials.groupby("trial_id")["auc"].mean()
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(means))
    predictions = pd.read_parquet(result.experiment / "predictions.parquet")
    assert set(predictions["trial_id"]) == set(means.index) and "member" not in predictions.columns
    runs = [p.name for p in (result.experiment / "wandb").glob("*/wandb/offline-run-*")]
    assert sorted(r.rsplit("-", 2)[-2] + "-" + r.rsplit("-", 1)[-1] for r in runs) == sorted(means.index)
    for run in (result.experiment / "wandb").glob("*/wandb/offline-run-*/*.wandb"):
        assert str(tmp_path).encode() not in run.read_bytes()
    # two slots: packs of 2 and 1 instead, so the second CPU does not idle, and the study says so
    capsys.readouterr()
    two = run_study(
        "mmt1m",
        tmp_path / "t.parquet",
        pack_trials=3,
        configurations=["mmt1m/DWI"],
        name="two",
        **{**options, "epochs": 1},
    )
    members = two.trials.groupby(two.trials["trial_id"].str[:-2])["trial_id"].nunique()
    assert sorted(members) == [1, 2]
    assert "--pack-trials 3: packs of 2 instead" in capsys.readouterr().err
    with pytest.raises(InputError, match="ASHA"):
        run_study("mmt1m", tmp_path / "t.parquet", pack_trials=2, asha=True, name="x", **options)
    assert json  # members travel as JSON in the final report
