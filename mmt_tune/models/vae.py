"""MFN-VAE: multimodal fusion variational autoencoder, the paper's baseline (section 2.1).

Per present modality an encoder to ``(mu, logvar)`` in a shared latent space; the experts are fused by a
product of Gaussians together with a standard-normal prior expert; a decoder per modality reconstructs its
features from the fused latent, and a predictor classifies from it (from the latent mean at evaluation).
Works for any non-empty modality subset. Parameters have a leading model dimension (one slice per fold).

Example::

    model = MFNVAE(n_models=5, feature_dims={"T1WI": 32, "DWI": 32})
    out = model({"T1WI": x_t1, "DWI": x_dwi})  # logits, mu, logvar, reconstructions
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmt_tune.models.blocks import MLP, NoiseSource


def product_of_experts(
    mus: list[torch.Tensor], logvars: list[torch.Tensor], keep: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse Gaussian experts and a N(0, I) prior expert: precision-weighted mean, summed precisions.
    ``keep`` ``[..., experts]`` (0/1) leaves an expert out of a row's product (modality dropout)."""
    precisions = [torch.ones_like(mus[0])] + [torch.exp(-lv) for lv in logvars]
    if keep is not None:
        precisions[1:] = [p * keep[..., i : i + 1] for i, p in enumerate(precisions[1:])]
    weighted = [torch.zeros_like(mus[0])] + [mu * p for mu, p in zip(mus, precisions[1:], strict=True)]
    total = torch.stack(precisions).sum(0)
    return torch.stack(weighted).sum(0) / total, -torch.log(total)


class MFNVAE(nn.Module):
    def __init__(
        self,
        n_models: int,
        feature_dims: Mapping[str, int],
        latent: int = 32,
        hidden: int = 128,
        dropout: float = 0.3,  # the sweep's best (benchmarks/RESULTS.md); 0.1 overfits
        modality_dropout: float = 0.0,  # training only: drop each expert of a row with this probability
    ):
        super().__init__()
        self.modality_dropout = float(modality_dropout)
        if not feature_dims:
            raise ValueError("MFN-VAE needs at least one modality")
        self.modalities = list(feature_dims)
        self.noise = NoiseSource()
        self.encoders = nn.ModuleDict(
            {m: MLP(n_models, f, hidden, 2 * latent, dropout, self.noise) for m, f in feature_dims.items()}
        )
        self.decoders = nn.ModuleDict(
            {m: MLP(n_models, latent, hidden, f, dropout, self.noise) for m, f in feature_dims.items()}
        )
        self.predictor = MLP(n_models, latent, hidden, 2, dropout, self.noise)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict:
        """Fuse the experts of the modalities in ``inputs`` (any non-empty subset of the trained ones: a
        patient without a sequence is scored by the product of the remaining experts and the prior)."""
        given = [m for m in self.modalities if m in inputs]
        if not given:
            raise ValueError(f"MFN-VAE needs at least one of {', '.join(self.modalities)}")
        stats = [self.encoders[m](inputs[m]).chunk(2, dim=-1) for m in given]
        keep = None
        if self.training and self.modality_dropout > 0 and len(given) > 1:
            # Train for missing modalities: each row keeps each expert with probability 1 - p, and always
            # at least one (its highest draw), so the model learns to classify from any subset.
            u = self.noise.uniform(stats[0][0][..., : len(given)])
            keep = ((u >= self.modality_dropout) | (u == u.max(dim=-1, keepdim=True).values)).to(u.dtype)
        # Clamp log-variances so exp() stays finite early in training.
        mu, logvar = product_of_experts([s[0] for s in stats], [s[1].clamp(-8.0, 8.0) for s in stats], keep)
        z = mu + torch.exp(0.5 * logvar) * self.noise.normal(mu) if self.training else mu
        return {
            "logits": self.predictor(z),
            "mu": mu,
            "logvar": logvar,
            "reconstructions": {m: self.decoders[m](z) for m in self.modalities},
        }
