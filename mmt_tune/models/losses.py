"""Loss terms of MMT (eqs. 2-5) and MFN-VAE, per model slice, with row and feature masks.

Every function returns one value per slice (``[n_models]``): each fold's loss is a masked mean over its own
rows, so packed folds with different row counts get exactly the loss they would get alone. Weights are named
as in the search spaces: ``alpha_<MOD>`` (reconstruction of modality MOD), ``beta`` (classification),
``gamma`` (MMT-1M's auxiliary CLS classifier), ``kl_weight`` (MFN-VAE).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from mmt_tune.models import TERM_WEIGHTS


def _masked_mean(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean over rows (dim 1) of ``values [n, batch]`` where ``rows`` is 1; 0 for a slice with no rows."""
    return (values * rows).sum(1) / rows.sum(1).clamp(min=1.0)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Eq. 3 per slice: ``logits [n, batch, 2]``, ``y [n, batch]`` (0/1)."""
    per_row = F.cross_entropy(logits.flatten(0, 1), y.flatten().long(), reduction="none").view_as(rows)
    return _masked_mean(per_row, rows)


def _feature_mean(errors: torch.Tensor, rows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mean of element-wise ``errors [n, batch, F]`` over real features (``features [n, F]`` is 0/1) and rows."""
    per_row = (errors * features[:, None, :]).sum(-1) / features.sum(-1, keepdim=True).clamp(min=1.0)
    return _masked_mean(per_row, rows)


def mean_absolute_error(
    pred: torch.Tensor, target: torch.Tensor, rows: torch.Tensor, features: torch.Tensor
) -> torch.Tensor:
    """Eq. 2 per slice, over real rows and real (not padded) features."""
    return _feature_mean((pred - target).abs(), rows, features)


def mean_squared_error(
    pred: torch.Tensor, target: torch.Tensor, rows: torch.Tensor, features: torch.Tensor
) -> torch.Tensor:
    return _feature_mean((pred - target) ** 2, rows, features)


def loss_terms(
    out: dict,
    y: torch.Tensor,
    targets: Mapping[str, torch.Tensor],
    rows: torch.Tensor,
    features: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The separate loss terms of a model's output, per slice.

    MMT: ``classification``, ``auxiliary`` (MMT-1M's CLS classifier), ``reconstruction_<MOD>`` as MAE (eq. 2)
    for each missing modality. MFN-VAE (its output has ``mu``/``logvar``): ``classification``, ``kl`` to
    N(0, I), and ``reconstruction_<MOD>`` as MSE for each present modality.
    """
    variational = "mu" in out
    terms = {"classification": cross_entropy(out["logits"], y, rows)}
    if out.get("aux_logits") is not None:
        terms["auxiliary"] = cross_entropy(out["aux_logits"], y, rows)
    if variational:
        # Mean over latent dimensions, as the reconstruction is a mean over features: summed, KL outweighed
        # the other terms by the latent width and the posterior collapsed.
        kl = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - out["logvar"].exp()).mean(-1)
        terms["kl"] = _masked_mean(kl, rows)
    error = mean_squared_error if variational else mean_absolute_error
    for modality, pred in out["reconstructions"].items():
        terms[f"reconstruction_{modality}"] = error(pred, targets[modality], rows, features[modality])
    return terms


def weighted_total(
    terms: Mapping[str, torch.Tensor], weights: Mapping[str, float | torch.Tensor]
) -> torch.Tensor:
    """Eqs. 4-5: ``sum_m alpha_m * reconstruction_m + beta * classification (+ gamma * auxiliary)``.
    A weight is a number, or a ``[n_models]`` tensor when packed trials weigh the terms differently."""
    total = torch.zeros_like(terms["classification"])
    for name, value in terms.items():
        total = total + loss_weight(name, weights) * value
    return total


def loss_weight(term: str, weights: Mapping[str, float | torch.Tensor]) -> float | torch.Tensor:
    """The weight of ``term`` (named as in :data:`mmt_tune.models.TERM_WEIGHTS`), 1 when none is given."""
    if term.startswith("reconstruction_"):
        modality = term.removeprefix("reconstruction_")
        value = weights.get(TERM_WEIGHTS["reconstruction_<MOD>"].replace("<MOD>", modality), 1.0)
    else:
        value = weights.get(TERM_WEIGHTS[term], 1.0)
    return value if isinstance(value, torch.Tensor) else float(value)
