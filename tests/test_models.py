"""Shapes for every modality configuration, no influence of missing modalities, loss weights."""

from __future__ import annotations

from itertools import combinations

import pytest
import torch

from mmt_tune.modalities import MODALITIES
from mmt_tune.models import MFNVAE, MMT
from mmt_tune.models.blocks import initialize
from mmt_tune.models.losses import loss_terms, loss_weight, weighted_total

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
