"""Missing Modality Transformer (MMT-2M / MMT-1M), paper section 2.3 and docs/design.md "Models".

Tokens: one per present modality (``Linear_p(x_p)``), one learnable token per missing modality (no feature
information), one learnable classification (CLS) token. Two modal-interaction layers (not weight-shared),
each followed by a FeedForward shared by all tokens of that layer, with a residual connection. The head
concatenates all tokens (present, missing, CLS) and classifies; a linear head per missing modality
reconstructs that modality's (scaled, selected) features from its token. MMT-1M adds an auxiliary classifier
on the CLS token alone (our reading of eq. 5's second cross-entropy).

Every parameter has a leading model dimension (see :mod:`mmt_tune.models.blocks`): ``MMT(n_models=5, ...)``
is five independent models, one per cross-validation fold.

Example::

    model = MMT(n_models=5, feature_dims={"T1WI": 32, "FLAIR": 32, "DWI": 32}, present=["T1WI", "FLAIR"])
    out = model({"T1WI": x_t1, "FLAIR": x_flair})  # x: [5, batch, 32]
    out["logits"], out["reconstructions"]["DWI"]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmt_tune.models.blocks import ClassifierHead, Dropout, FeedForward, LayerNorm, Linear, NoiseSource, Token

INTERACTIONS = ("hadamard", "sdpa")


class ModalInteraction(nn.Module):
    """One modal-interaction layer over tokens ``[n, batch, T, D]`` ordered (present..., missing..., CLS).

    ``hadamard`` (our reading of the paper's rule): ``k_all = prod_j k_j`` over modality tokens,
    ``o_i = q_i + k_all + v_i * k_i``; CLS: ``o_c = q_c + sum_{m in missing} k_m * v_m``.
    ``sdpa``: scaled dot-product attention (eq. 1) among modality tokens; the CLS query attends only to the
    missing-modality tokens. Then ``h <- h + FeedForward(LayerNorm(o))`` for every token.
    """

    def __init__(
        self,
        n_models: int,
        d_model: int,
        expanded: int,
        n_present: int,
        n_missing: int,
        interaction: str,
        dropout: float,
        noise: NoiseSource,
    ):
        super().__init__()
        if interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {INTERACTIONS}, got {interaction!r}")
        self.n_present, self.n_missing, self.interaction = n_present, n_missing, interaction
        self.norm_in = LayerNorm(n_models, d_model)
        # One projection for all modality tokens; the CLS token keeps only its Q part (paper 2.3).
        self.qkv = Linear(n_models, d_model, 3 * expanded)
        self.norm_out = LayerNorm(n_models, expanded)
        self.ffn = FeedForward(n_models, expanded, d_model, dropout, noise)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n_mod = self.n_present + self.n_missing
        q, k, v = self.qkv(self.norm_in(tokens)).chunk(3, dim=-1)
        q_mod, k_mod, v_mod = q[..., :n_mod, :], k[..., :n_mod, :], v[..., :n_mod, :]
        q_cls = q[..., n_mod:, :]
        k_miss, v_miss = k[..., self.n_present : n_mod, :], v[..., self.n_present : n_mod, :]
        if self.interaction == "hadamard":
            # An explicit chain of products, not ``k_mod.prod(dim=-2)``: prod's backward switches to another
            # formula for the *whole* tensor when any element is exactly 0, so one fold's zero changed the
            # other folds' gradients by rounding, and packed training drifted from sequential.
            # The product rule is also stable where prod's ``result / input`` divides by tiny keys.
            k_all = k_mod[..., :1, :]
            for j in range(1, n_mod):
                k_all = k_all * k_mod[..., j : j + 1, :]
            o_mod = q_mod + k_all + v_mod * k_mod
            o_cls = q_cls + (k_miss * v_miss).sum(dim=-2, keepdim=True)
        else:
            o_mod = F.scaled_dot_product_attention(q_mod, k_mod, v_mod)
            o_cls = F.scaled_dot_product_attention(q_cls, k_miss, v_miss)
        o = torch.cat([o_mod, o_cls], dim=-2)
        return tokens + self.ffn(self.norm_out(o))


class MMT(nn.Module):
    """MMT over ``feature_dims`` (every modality, in fixed order) with ``present`` as inputs.

    ``forward`` takes only the present modalities' features, so a missing modality cannot influence a
    prediction. It returns ``logits`` ``[n, batch, 2]``, ``aux_logits`` (MMT-1M, else None) and
    ``reconstructions`` (missing modality -> ``[n, batch, F_m]``). Losses live in :mod:`.losses`.
    """

    def __init__(
        self,
        n_models: int,
        feature_dims: Mapping[str, int],
        present: Sequence[str],
        d_model: int = 64,
        expansion: int = 2,
        hidden: int = 128,
        dropout: float = 0.3,  # the sweep's best (benchmarks/RESULTS.md); 0.1 overfits
        interaction: str = "hadamard",
        n_layers: int = 2,
        auxiliary_head: bool | None = None,
    ):
        super().__init__()
        self.present = [m for m in feature_dims if m in present]
        self.missing = [m for m in feature_dims if m not in present]
        if not self.present or not self.missing:
            raise ValueError(
                f"MMT needs at least one present and one missing modality, got present={list(present)}"
            )
        self.noise = NoiseSource()
        expanded = expansion * d_model
        self.embed = nn.ModuleDict({m: Linear(n_models, feature_dims[m], d_model) for m in self.present})
        self.missing_tokens = nn.ModuleDict({m: Token(n_models, d_model) for m in self.missing})
        self.cls_token = Token(n_models, d_model)
        self.embed_dropout = Dropout(dropout, self.noise)
        self.layers = nn.ModuleList(
            ModalInteraction(
                n_models,
                d_model,
                expanded,
                len(self.present),
                len(self.missing),
                interaction,
                dropout,
                self.noise,
            )
            for _ in range(n_layers)
        )
        n_tokens = len(self.present) + len(self.missing) + 1
        self.head = ClassifierHead(n_models, n_tokens * d_model, hidden, dropout, self.noise)
        self.reconstruct = nn.ModuleDict(
            {m: Linear(n_models, d_model, feature_dims[m]) for m in self.missing}
        )
        use_aux = len(self.missing) >= 2 if auxiliary_head is None else auxiliary_head
        self.aux_head = (
            nn.Sequential(LayerNorm(n_models, d_model), Linear(n_models, d_model, 2)) if use_aux else None
        )

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict:
        batch = inputs[self.present[0]].shape[1]
        tokens = [self.embed[m](inputs[m]) for m in self.present]
        tokens += [self.missing_tokens[m].expand(batch) for m in self.missing]
        tokens.append(self.cls_token.expand(batch))
        h = self.embed_dropout(torch.stack(tokens, dim=-2))  # [n, batch, T, D]
        for layer in self.layers:
            h = layer(h)
        logits = self.head(h.flatten(start_dim=-2))
        n_present = len(self.present)
        reconstructions = {
            m: self.reconstruct[m](h[..., n_present + i, :]) for i, m in enumerate(self.missing)
        }
        aux_logits = self.aux_head(h[..., -1, :]) if self.aux_head is not None else None
        return {"logits": logits, "aux_logits": aux_logits, "reconstructions": reconstructions}
