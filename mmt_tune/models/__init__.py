"""The model registry: one :class:`ModelSpec` per model, the only place a model is described.

Training (:mod:`mmt_tune.training`), the options schema (:mod:`mmt_tune.config`), search-space validation,
the W&B dashboard and the analysis all read a model's facts from here: its label and colour, how many
modalities it needs, which it reconstructs, its options and their defaults, its loss terms and the weight
names that scale them, and how to build it. This module imports neither torch nor scikit-learn; builders
import them when called.

Adding a model is one :func:`register` call::

    register(ModelSpec(name="mlp", label="MLP", colour="#937860", role="proposed",
                       options={"hidden": 64}, default_lr=1e-3, build=build_mlp))

where ``build_mlp(n_models, feature_dims, present, options)`` returns a packed ``torch.nn.Module`` (one
slice per fold, see :mod:`mmt_tune.models.blocks`) whose ``forward`` maps present-modality tensors to
``{"logits": [n, batch, 2], "reconstructions": {modality: [n, batch, F]}}`` and which has a ``noise``
attribute (:class:`~mmt_tune.models.blocks.NoiseSource`). A classical baseline gives ``estimator``
instead: ``estimator(options, random_state)`` returns a scikit-learn classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HEADLINE",
    "ROLES",
    "ROLE_TITLES",
    "TERM_WEIGHTS",
    "ModelSpec",
    "get",
    "label",
    "names",
    "register",
    "unregister",
    "with_role",
]

#: A loss term -> the weight that scales it (``<MOD>`` stands for each reconstructed modality).
#: The weights' names are the ones search spaces and config files use.
TERM_WEIGHTS: dict[str, str] = {
    "reconstruction_<MOD>": "alpha_<MOD>",
    "classification": "beta",
    "auxiliary": "gamma",
    "kl": "kl_weight",
}
ROLES = ("proposed", "reference", "baseline")
#: How figures title a group of models by role.
ROLE_TITLES = {"proposed": "MMT", "reference": "MFN-VAE", "baseline": "Baselines"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything the framework needs to know about one model."""

    name: str  # as in search spaces, config files, the trials table
    label: str  # in tables and figures
    colour: str  # in figures
    # "proposed" (the paper's MMT), "reference" (the paper's comparison model, MFN-VAE), or "baseline"
    # (classical, scikit-learn): figures group models by role, comparisons pair them by it.
    role: str
    present: int | None = None  # modalities it needs present (None: any non-empty subset)
    reconstructs: str = "none"  # "missing", "present" or "none": which modalities' features it rebuilds
    inputs: str = "present"  # "all": the fold pipeline also prepares missing modalities (as targets)
    options: Mapping[str, Any] = field(default_factory=dict)  # model options and their defaults
    terms: tuple[str, ...] = ()  # loss terms its output yields (keys of TERM_WEIGHTS)
    default_lr: float | None = None  # deep models: learning rate when none is given
    build: Callable | None = None  # deep: (n_models, feature_dims, present, options) -> packed nn.Module
    estimator: Callable | None = None  # baseline: (options, random_state) -> scikit-learn classifier
    check: Callable[[Mapping], None] | None = None  # raises ValueError naming an invalid option value
    # True: a model trained on some modalities also scores a patient who has only a non-empty subset of them
    # (MFN-VAE's product of experts); predict and the robustness table use it so.
    subsets: bool = False

    @property
    def baseline(self) -> bool:
        return self.estimator is not None

    @property
    def weights(self) -> tuple[str, ...]:
        """The loss-weight option names it accepts (``alpha_<MOD>`` for every reconstruction weight)."""
        return tuple(TERM_WEIGHTS[t] for t in self.terms)

    def reconstructed(self, present: tuple[str, ...], missing: tuple[str, ...]) -> tuple[str, ...]:
        return {"missing": missing, "present": present, "none": ()}[self.reconstructs]


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add a model; ``replace=True`` overwrites one of the same name (a worker receiving the driver's specs)."""
    if spec.role not in ROLES:
        raise ValueError(f"{spec.name}: role must be one of {', '.join(ROLES)}, got {spec.role!r}")
    if (spec.build is None) == (spec.estimator is None):
        raise ValueError(
            f"{spec.name}: give exactly one of build (a torch model) or estimator (scikit-learn)"
        )
    unknown = [t for t in spec.terms if t not in TERM_WEIGHTS]
    if unknown:
        raise ValueError(f"{spec.name}: unknown loss term {unknown[0]!r} (known: {', '.join(TERM_WEIGHTS)})")
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> ModelSpec:
    """The spec of ``name``; ``KeyError`` for an unknown model (callers turn it into an input error)."""
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Registered models in registration order (the order of tables and figures)."""
    return tuple(_REGISTRY)


def label(name: str) -> str:
    """A model's label for tables and figures (its name when it is not registered in this process)."""
    spec = _REGISTRY.get(name)
    return spec.label if spec is not None else name


def with_role(role: str) -> tuple[str, ...]:
    return tuple(name for name, spec in _REGISTRY.items() if spec.role == role)


# ------------------------------------------------------------------------------ the shipped models
def _build_mmt(n_models: int, feature_dims: Mapping[str, int], present, options: Mapping):
    from mmt_tune.models.mmt import MMT

    return MMT(n_models, feature_dims, present, **options)


def _build_mmt_plain(n_models: int, feature_dims: Mapping[str, int], present, options: Mapping):
    from mmt_tune.models.mmt import MMT

    return MMT(n_models, feature_dims, present, auxiliary_head=False, **options)


def _build_mfnvae(n_models: int, feature_dims: Mapping[str, int], present, options: Mapping):
    from mmt_tune.models.vae import MFNVAE

    return MFNVAE(n_models, feature_dims, **options)


def _estimator(model: str, factory: str) -> Callable:
    """``(options, random_state) -> classifier``: ``mmt_tune.models.baselines.<factory>`` with the model's
    default options under the configured ones."""

    def make(options: Mapping, random_state: int):
        from mmt_tune.models import baselines

        return getattr(baselines, factory)({**_REGISTRY[model].options, **options}, random_state)

    return make


def _check_mfnvae(options: Mapping) -> None:
    value = float(options.get("modality_dropout", 0.0))
    if not 0.0 <= value < 1.0:
        raise ValueError(f"modality_dropout must be in [0, 1), got {value}")


def _check_baseline(options: Mapping) -> None:
    from mmt_tune.models.baselines import check_options

    check_options(options)


#: MMT's options. Defaults from the sweep in benchmarks/RESULTS.md: dropout 0.1 overfits.
MMT_OPTIONS = {
    "d_model": 64,  # token width D
    "expansion": 2,  # FeedForward width E = expansion * D
    "hidden": 128,  # classifier head width
    "dropout": 0.3,
    "interaction": "hadamard",  # hadamard (the paper's eq. 1) or sdpa (scaled dot-product attention)
    "n_layers": 2,  # modal-interaction layers (not weight-shared)
}
#: MMT learns best at the paper's 1e-5 over 200 epochs (1e-3 overfits from epoch 1).
MMT_LR = 1e-5

register(
    ModelSpec(
        name="mmt2m",
        label="MMT-2M",
        colour="#D55E00",
        role="proposed",
        present=2,
        reconstructs="missing",
        inputs="all",
        options=MMT_OPTIONS,
        terms=("classification", "reconstruction_<MOD>"),
        default_lr=MMT_LR,
        build=_build_mmt,
    )
)
register(
    ModelSpec(
        name="mmt1m",
        label="MMT-1M",
        colour="#E69F00",
        role="proposed",
        present=1,
        reconstructs="missing",
        inputs="all",
        options=MMT_OPTIONS,
        terms=("classification", "auxiliary", "reconstruction_<MOD>"),  # eq. 5: CLS auxiliary classifier
        default_lr=MMT_LR,
        build=_build_mmt,
    )
)
register(
    ModelSpec(
        name="mmt",
        label="MMT",
        colour="#CC79A7",
        role="proposed",
        # any present set with at least one missing modality, for a study of any 2-6 modalities (mmt2m and
        # mmt1m are the paper's names for the three-modality case); no auxiliary CLS classifier
        reconstructs="missing",
        inputs="all",
        options=MMT_OPTIONS,
        terms=("classification", "reconstruction_<MOD>"),
        default_lr=MMT_LR,
        build=_build_mmt_plain,
    )
)
register(
    ModelSpec(
        name="mfnvae",
        label="MFN-VAE",
        colour="#0072B2",
        role="reference",
        reconstructs="present",
        # modality_dropout: train with random expert subsets per row (0: off; the robustness table's variant)
        options={"latent": 32, "hidden": 128, "dropout": 0.3, "modality_dropout": 0.0},
        terms=("classification", "kl", "reconstruction_<MOD>"),
        default_lr=1e-4,  # 1e-5 is still learning at epoch 200
        build=_build_mfnvae,
        check=_check_mfnvae,
        subsets=True,
    )
)
register(
    ModelSpec(
        name="logreg",
        label="Logistic regression",
        colour="#009E73",
        role="baseline",
        # C: inverse regularisation strength; l1_ratio: 0 = L2, 0 < r <= 1 elastic net (saga solver)
        options={"C": 0.1, "l1_ratio": 0.0},
        estimator=_estimator("logreg", "logistic_regression"),
        check=_check_baseline,
    )
)
register(
    ModelSpec(
        name="forest",
        label="Random forest",
        colour="#000000",
        role="baseline",
        # max_depth None or 0: grow fully; max_features: sqrt, log2 or a fraction of the features
        options={"n_estimators": 300, "max_depth": None, "min_samples_leaf": 1, "max_features": "sqrt"},
        estimator=_estimator("forest", "random_forest"),
        check=_check_baseline,
    )
)

#: The paper's headline comparison: the best one-missing proposed model vs the full-modality reference.
HEADLINE = ("mmt2m", "mfnvae")
