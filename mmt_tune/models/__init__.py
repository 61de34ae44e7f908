"""Models: MMT (mmt.py), MFN-VAE (vae.py), shared batched blocks (blocks.py), losses (losses.py)."""

from mmt_tune.models.mmt import MMT
from mmt_tune.models.vae import MFNVAE

__all__ = ["MMT", "MFNVAE"]
