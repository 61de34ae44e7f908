"""Many trials of one configuration as one packed model (issue 18): a trial's numbers do not depend on its pack."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_table

MODS = ("T1WI", "FLAIR", "DWI")


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    from mmt_tune.batch import train_trials
    from mmt_tune.config import TrainConfig
    from mmt_tune.train import train_configuration

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


def test_trials_that_differ_in_more_than_per_slice_options_are_not_packed():
    from mmt_tune.batch import pack_key, train_trials
    from mmt_tune.config import TrainConfig
    from mmt_tune.errors import InputError

    a = TrainConfig.from_options("mmt1m", ("DWI",), {"lr": 1e-4})
    b = TrainConfig.from_options("mmt1m", ("DWI",), {"lr": 1e-3, "beta": 0.3, "kl_warmup": 0})
    c = TrainConfig.from_options("mmt1m", ("DWI",), {"d_model": 64})
    assert pack_key(a) == pack_key(b) != pack_key(c)
    with pytest.raises(InputError, match="may differ only in lr"):
        train_trials(make_table(60), [a, c])
    assert train_trials(make_table(60), []) == []
