"""The options schema: what one configuration of a study is, as dataclasses with commented defaults.

A configuration is a model (:mod:`mmt_tune.models`, the registry) on a set of present modalities, with
training options (:class:`TrainConfig`), the model's own options (``spec.options``), loss weights
(``alpha_<MOD>``, ``beta``, ``gamma``, ``kl_weight``, as the model's loss terms take them) and the in-fold
preprocessing options (:class:`PreprocessConfig`). Config files, search spaces and Tune trials all give
them as one flat mapping of option: value; :meth:`TrainConfig.from_options` sorts it and names any key or
value it cannot take.

This module imports neither torch nor Ray, so reading a search space or a results folder does not either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mmt_tune import models
from mmt_tune.errors import InputError
from mmt_tune.modalities import MODALITIES, ordered
from mmt_tune.models import ModelSpec


@dataclass(frozen=True)
class PreprocessConfig:
    """Per-fold preprocessing options (names as in search spaces and config files)."""

    k: int | dict[str, int] = 32  # features kept per modality (one number, or per modality)
    score: str = "anova"  # anova | mutual_info | forest: the top-k selection score
    correlation_threshold: float = 0.9  # drop a feature correlated above this with an earlier kept one
    smote: bool = True  # Borderline-SMOTE on the fold's training rows
    smote_neighbors: int = 5  # fewer where the fold's minority class is smaller

    def k_for(self, modality: str) -> int:
        return int(self.k[modality]) if isinstance(self.k, dict) else int(self.k)


#: Probability calibrations a deep model may fit after training (None: none).
CALIBRATIONS = (None, "temperature")

#: Training options of a deep model (the fields of TrainConfig given as options).
TRAIN_KEYS = (
    "lr",
    "weight_decay",
    "epochs",
    "batch_size",
    "early_stopping",
    "early_stopping_fraction",
    "calibration",
    "kl_warmup",
    "folds",
    "repeats",
    "seed",
    "device",
    "compile",
)
#: The training options a classical baseline takes (it has no epochs, optimizer or loss weights).
BASELINE_TRAIN_KEYS = ("folds", "repeats", "seed", "device", "compile")
PREPROCESS_KEYS = tuple(f.name for f in fields(PreprocessConfig))
#: Stands for every reconstruction weight ``alpha_<MOD>`` in :func:`accepted_options`.
ALPHA = "alpha_<MOD>"


def model_spec(model: str) -> ModelSpec:
    """The registered spec of ``model``, or an :class:`InputError` listing the known models."""
    try:
        return models.get(model)
    except KeyError:
        raise InputError(f"unknown model {model!r} (known: {', '.join(models.names())})") from None


def accepted_options(model: str) -> set[str]:
    """Option names ``model`` accepts (``alpha_<MOD>`` stands for every reconstruction weight)."""
    spec = model_spec(model)
    train = BASELINE_TRAIN_KEYS if spec.baseline else TRAIN_KEYS
    return {*train, *spec.options, *PREPROCESS_KEYS, *spec.weights}


#: Options packed trials may differ in (per-slice values of the packed trainer, :mod:`mmt_tune.training.trial_packs`).
PER_SLICE_OPTIONS = ("lr", "weight_decay", "kl_warmup")


def per_slice(key: str) -> bool:
    """Whether trials differing in option ``key`` can still train as one pack (lr, weight decay, KL
    warm-up and the loss weights)."""
    return key in PER_SLICE_OPTIONS or _is_weight(key)


def _is_weight(key: str) -> bool:
    return key.startswith("alpha_") or key in models.TERM_WEIGHTS.values()


@dataclass
class TrainConfig:
    """One configuration. Defaults follow the paper where it gives them (AdamW, batch 32, 200 epochs)."""

    model: str
    present: tuple[str, ...]
    # The study's modalities (from its feature table); the present ones are inputs, the others are missing.
    modalities: tuple[str, ...] = MODALITIES
    epochs: int = 200
    batch_size: int = 32
    folds: int = 5
    repeats: int = 1  # repeated CV: this many k-fold splits, each from its own seed (repeat_seed)
    seed: int = 0  # folds, SMOTE, initialisation and noise streams all derive from it
    device: str = "cpu"  # cpu, cuda, cuda:N or auto
    # A torch.compile backend for the training step (inductor on a GPU; aot_eager checks capture); None: eager
    compile: str | None = None
    lr: float | None = None  # None: the model's default_lr (from the sweep in benchmarks/RESULTS.md)
    weight_decay: float = 1e-2  # AdamW's (no measurable effect in the sweep)
    # Patience in epochs; None trains all epochs. Early stopping monitors the classification loss on
    # ``early_stopping_fraction`` of each fold's training rows, held out (stratified, seeded) before any
    # fitting, never on the fold's validation rows.
    early_stopping: int | None = None
    early_stopping_fraction: float = 0.2
    # "temperature": after training, one temperature per fold fitted on the same held-out training rows
    # (early_stopping_fraction of them, held out even without early stopping), never on validation rows;
    # it divides the logits, so rankings (AUC) do not change. None: probabilities as the model gives them.
    calibration: str | None = None
    kl_warmup: int = 0  # epochs over which the KL weight ramps linearly from 0 to kl_weight
    model_options: dict = field(default_factory=dict)  # the model's own options (spec.options)
    loss_weights: dict = field(default_factory=dict)  # alpha_<MOD>, beta, gamma, kl_weight (default 1)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def __post_init__(self) -> None:
        if self.lr is None:
            spec = models.get(self.model) if self.model in models.names() else None
            self.lr = spec.default_lr if spec is not None and spec.default_lr is not None else 1e-5

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.model)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(m for m in self.modalities if m not in self.present)

    @property
    def reconstructed(self) -> tuple[str, ...]:
        """Modalities whose features the model reconstructs (the spec says: missing, present or none)."""
        return self.spec.reconstructed(self.present, self.missing)

    @property
    def modalities_used(self) -> tuple[str, ...]:
        """Modalities whose features the fold pipeline must prepare (inputs and reconstruction targets)."""
        return self.modalities if self.spec.inputs == "all" else self.present

    @property
    def baseline(self) -> bool:
        return self.spec.baseline

    @property
    def holds_out_monitor(self) -> bool:
        """Whether each fold holds out training rows (``early_stopping_fraction``) for early stopping or
        calibration."""
        return bool(self.early_stopping) or self.calibration is not None

    def validate(self) -> None:
        spec = self.spec
        unknown = [m for m in self.present if m not in self.modalities]
        if unknown:
            raise InputError(f"unknown modality {unknown[0]!r} (known: {', '.join(self.modalities)})")
        if len(set(self.present)) != len(self.present) or not self.present:
            raise InputError(f"present modalities must be distinct and non-empty, got {list(self.present)}")
        need = spec.present
        if need is not None and len(self.present) != need:
            raise InputError(
                f"{self.model} needs exactly {need} present modalit{'y' if need == 1 else 'ies'} "
                f"({len(self.modalities) - need} missing), got present={'+'.join(self.present)}"
            )
        if spec.reconstructs == "missing" and not self.missing:
            raise InputError(
                f"{self.model} needs at least one missing modality to reconstruct; present="
                f"{'+'.join(self.present)} is all of {', '.join(self.modalities)}"
            )
        for key in self.loss_weights:
            if key.startswith("alpha_") and key.removeprefix("alpha_") not in self.reconstructed:
                raise InputError(
                    f"{key}: {self.model} with present={'+'.join(self.present)} reconstructs only "
                    f"{', '.join(self.reconstructed) or 'nothing'}"
                )
        if self.kl_warmup and "kl" not in spec.terms:
            with_kl = [s.label for s in map(models.get, models.names()) if "kl" in s.terms]
            raise InputError(f"kl_warmup: only {' and '.join(with_kl)} has a KL term")
        patience = self.early_stopping
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise InputError(
                f"early_stopping is a patience in epochs (an integer >= 1, or null for none), got {patience!r}"
            )
        if self.calibration not in CALIBRATIONS:
            raise InputError(
                f"calibration must be one of {', '.join(map(str, CALIBRATIONS))} (got {self.calibration!r})"
            )
        if not 0.0 < float(self.early_stopping_fraction) < 0.5:
            raise InputError(
                f"early_stopping_fraction must be in (0, 0.5), got {self.early_stopping_fraction}"
            )
        if not float(self.lr) > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if spec.check is not None:
            try:
                spec.check(self.model_options)
            except ValueError as exc:
                raise InputError(f"{self.model}: {exc}") from None
        for name, value in (
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("folds", self.folds),
            ("repeats", self.repeats),
        ):
            if int(value) < (2 if name == "folds" else 1):
                raise InputError(f"{name} must be >= {2 if name == 'folds' else 1}, got {value}")

    @classmethod
    def from_options(
        cls,
        model: str,
        present: Sequence[str],
        options: Mapping | None = None,
        *,
        modalities: Sequence[str] | None = None,
        **overrides: Any,
    ) -> TrainConfig:
        """Build from a flat mapping (a config file or a Tune config); unknown keys are errors naming the key.
        ``modalities``: the study's (default: the paper's three)."""
        options = dict(options or {})
        # Explicit overrides (command-line options) win over the same key in ``options``.
        options.update({key: value for key, value in overrides.items() if value is not None})
        spec = model_spec(model)
        accepted = accepted_options(model)
        train, model_options, weights, preprocess = {}, {}, {}, {}
        for key, value in options.items():
            is_weight = _is_weight(key)
            if key not in accepted and not (is_weight and key.startswith("alpha_") and ALPHA in accepted):
                raise InputError(f"unknown option {key!r} for {model} (known: {', '.join(sorted(accepted))})")
            if key in TRAIN_KEYS:
                train[key] = value
            elif key in spec.options:
                model_options[key] = value
            elif is_weight:
                weights[key] = float(value)
            else:
                preprocess[key] = value
        study = tuple(modalities) if modalities is not None else MODALITIES
        config = cls(
            model=model,
            present=ordered(present, study),
            modalities=study,
            model_options=model_options,
            loss_weights=weights,
            preprocess=PreprocessConfig(**preprocess),
            **train,
        )
        config.validate()
        return config
