"""Shapes for every modality configuration, no influence of missing modalities, loss weights."""

from __future__ import annotations

from itertools import combinations

import pytest
import torch

from mmt_tune.modalities import MODALITIES
from mmt_tune.models.blocks import Dropout, NoiseSource, initialize
from mmt_tune.models.losses import loss_terms, loss_weight, weighted_total
from mmt_tune.models.mmt import MMT
from mmt_tune.models.vae import MFNVAE

DIMS = {"T1WI": 7, "FLAIR": 5, "DWI": 6}
K, BATCH = 3, 4


def _ready(model):
    initialize(model, [torch.Generator().manual_seed(i) for i in range(K)])
    model.noise.seed(range(K))
    return model


MMT_CASES = [(list(p), i) for n in (1, 2) for p in combinations(MODALITIES, n) for i in ("hadamard", "sdpa")]


@pytest.mark.parametrize("present, interaction", MMT_CASES)
def test_mmt_shapes(present, interaction):
    model = _ready(MMT(K, DIMS, present, d_model=16, hidden=16, interaction=interaction))
    out = model({m: torch.randn(K, BATCH, DIMS[m]) for m in present})
    missing = [m for m in MODALITIES if m not in present]
    assert out["logits"].shape == (K, BATCH, 2)
    assert {m: tuple(v.shape) for m, v in out["reconstructions"].items()} == {
        m: (K, BATCH, DIMS[m]) for m in missing
    }
    assert (out["aux_logits"] is not None) == (len(present) == 1), "MMT-1M has the auxiliary CLS classifier"


@pytest.mark.parametrize("present", [list(p) for n in (1, 2, 3) for p in combinations(MODALITIES, n)])
def test_mfnvae_shapes_for_all_seven_subsets(present):
    model = _ready(MFNVAE(K, {m: DIMS[m] for m in present}, latent=8, hidden=16))
    out = model({m: torch.randn(K, BATCH, DIMS[m]) for m in present})
    assert out["logits"].shape == (K, BATCH, 2) and out["mu"].shape == (K, BATCH, 8)
    assert set(out["reconstructions"]) == set(present)


@pytest.mark.parametrize("interaction", ["hadamard", "sdpa"])
def test_missing_modality_features_have_no_influence_at_evaluation(interaction):
    model = _ready(MMT(K, DIMS, ["T1WI", "DWI"], d_model=16, hidden=16, interaction=interaction)).eval()
    inputs = {m: torch.randn(K, BATCH, DIMS[m]) for m in MODALITIES}
    perturbed = dict(inputs, FLAIR=inputs["FLAIR"] * 100 + 7)
    with torch.no_grad():
        a, b = model(inputs), model(perturbed)
    assert torch.equal(a["logits"], b["logits"])
    # ...while a present modality does influence them (the check above can fail).
    with torch.no_grad():
        c = model(dict(inputs, DWI=inputs["DWI"] + 1))
    assert not torch.equal(a["logits"], c["logits"])


def test_slices_are_independent():
    """Changing fold 0's input changes only fold 0's outputs."""
    model = _ready(MMT(K, DIMS, ["T1WI"], d_model=16, hidden=16)).eval()
    x = torch.randn(K, BATCH, DIMS["T1WI"])
    y = x.clone()
    y[0] += 5
    with torch.no_grad():
        a, b = model({"T1WI": x})["logits"], model({"T1WI": y})["logits"]
    assert not torch.equal(a[0], b[0]) and torch.equal(a[1:], b[1:])


@pytest.mark.parametrize("interaction", ["hadamard", "sdpa"])
def test_gradients_of_a_slice_do_not_depend_on_another_slice_holding_exact_zeros(interaction):
    """An exact 0 in fold 0's keys must not change fold 1's gradients, not even by rounding.

    ``Tensor.prod``'s backward picks its formula for the whole tensor (``result / input`` unless any element
    is 0), which once made packed and sequential training drift apart; the Hadamard rule now multiplies
    explicitly.
    """

    def slice_one_gradients(zero_fold_zero: bool) -> list[torch.Tensor]:
        model = _ready(MMT(K, DIMS, ["T1WI"], d_model=16, hidden=16, interaction=interaction))
        if zero_fold_zero:
            with torch.no_grad():  # fold 0's first layer outputs q = k = v = 0 exactly
                model.layers[0].qkv.weight[0].zero_()
                model.layers[0].qkv.bias[0].zero_()
        x = torch.randn(K, BATCH, DIMS["T1WI"], generator=torch.Generator().manual_seed(1))
        model({"T1WI": x})["logits"].sum().backward()
        return [p.grad[1].clone() for p in model.parameters() if p.grad is not None]

    for a, b in zip(slice_one_gradients(False), slice_one_gradients(True), strict=True):
        assert torch.equal(a, b)


def test_each_weight_scales_its_own_term():
    model = _ready(MMT(K, DIMS, ["T1WI"], d_model=16, hidden=16))
    out = model({"T1WI": torch.randn(K, BATCH, 7)})
    rows = torch.ones(K, BATCH)
    targets = {m: torch.randn(K, BATCH, DIMS[m]) for m in MODALITIES}
    features = {m: torch.ones(K, DIMS[m]) for m in MODALITIES}
    terms = loss_terms(out, torch.randint(0, 2, (K, BATCH)), targets, rows, features)
    assert set(terms) == {"classification", "auxiliary", "reconstruction_FLAIR", "reconstruction_DWI"}
    base = {"alpha_FLAIR": 0.5, "alpha_DWI": 0.5, "beta": 0.5, "gamma": 0.5}
    names = {
        "alpha_FLAIR": "reconstruction_FLAIR",
        "alpha_DWI": "reconstruction_DWI",
        "beta": "classification",
        "gamma": "auxiliary",
    }
    for weight, term in names.items():
        moved = weighted_total(terms, dict(base, **{weight: 1.0})) - weighted_total(terms, base)
        torch.testing.assert_close(moved, 0.5 * terms[term])
        assert loss_weight(term, base) == 0.5


def _draws(noise: NoiseSource, n_slices: int, shapes) -> list[torch.Tensor]:
    return [noise.uniform(torch.empty(n_slices, *shape)) for shape in shapes]


# Requests of several sizes, one larger than the block, so the streams cross block boundaries.
SHAPES = [(4, 5), (3,), (30,), (2, 2, 2), (7, 4), (1,), (9, 3)]


def test_noise_of_a_slice_is_the_same_alone_or_packed_across_blocks():
    packed = NoiseSource(block=16)
    packed.seed([11, 12, 13])
    together = _draws(packed, 3, SHAPES)
    for i, seed in enumerate([11, 12, 13]):
        alone = NoiseSource(block=16)
        alone.seed([seed])
        for a, b in zip(_draws(alone, 1, SHAPES), together, strict=True):
            assert torch.equal(a[0], b[i])
    assert not torch.equal(together[0][0], together[0][1]), "slices draw different numbers"
    values = torch.cat([t.flatten() for t in together])
    assert values.min() >= 0.0 and values.max() < 1.0


def test_step_windows_replay_the_plain_streams_across_refills_at_fixed_addresses():
    """Capturable steps: from the second step on, a step's numbers are copied into one fixed tensor before
    the step, and they are exactly the numbers the plain path draws, also for steps that straddle a refill."""
    plain = NoiseSource(block=16)
    plain.seed([5, 6])
    expected = [_draws(plain, 2, SHAPES[:4]) for _ in range(6)]  # 43 numbers a step: refills mid-step
    windowed = NoiseSource(block=16)
    windowed.seed([5, 6])
    addresses = set()
    for step, want in enumerate(expected):
        windowed.begin_step()
        got = _draws(windowed, 2, SHAPES[:4])
        windowed.end_step()
        if step > 0:
            addresses.add(windowed.window.data_ptr())
            assert all(g.data_ptr() - windowed.window.data_ptr() < windowed.window.nbytes for g in got)
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b), step
    assert windowed.sizes == [20, 3, 30, 8] and len(addresses) == 1
    windowed.begin_step()  # a step that draws more than the first one is an error, not other numbers
    _draws(windowed, 2, SHAPES[:4])
    with pytest.raises(RuntimeError, match="more random numbers"):
        _draws(windowed, 2, SHAPES[:1])


def test_noise_state_round_trip_continues_the_same_streams():
    """A checkpoint taken mid-block (state_dict) continues exactly where the stream stood."""
    noise = NoiseSource(block=16)
    noise.seed([3, 4])
    _draws(noise, 2, SHAPES[:3])
    state = noise.state_dict()
    expected = _draws(noise, 2, SHAPES)
    fresh = NoiseSource(block=16)
    fresh.seed([0, 0])  # other seeds: everything must come from the state
    fresh.load_state_dict(state)
    for a, b in zip(_draws(fresh, 2, SHAPES), expected, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="model slices"):
        NoiseSource().load_state_dict({**state, "generators": state["generators"][:1]})


def test_dropout_drops_about_p_and_rescales_the_rest():
    noise = NoiseSource()
    noise.seed([1, 2])
    drop = Dropout(0.3, noise).train()
    out = drop(torch.ones(2, 200, 100))
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(out[kept], torch.tensor(1 / 0.7))
    assert torch.equal(drop.eval()(out), out), "no dropout at evaluation"
    z = noise.normal(torch.empty(2, 100_000))
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1.0) < 0.02
