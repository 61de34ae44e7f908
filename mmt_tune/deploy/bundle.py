"""A fitted study on disk: safe to load, free of patient identifiers (docs/commands.md "fit and predict").

Layout of a bundle folder::

    bundle.json                   format, versions, modalities, the training table's feature columns,
                                  hashes (table, extraction settings), positive class, and per configuration:
                                  model, present, resolved config, members, input widths, selected columns,
                                  cross-validated score; a sha256 of every file and manifest section
    <model>_<present>/preprocessing.npz   per member and modality: median, mean, scale (float arrays)
    <model>_<present>/weights.pt          deep models: the packed model's state dict (tensors only)
    <model>_<present>/coefficients.npz    logistic regression: coef, intercept, classes per member
    <model>_<present>/forest.skops        random forest: the members' forests in skops' format

Loading never executes code from the folder: JSON, ``numpy.load(allow_pickle=False)``,
``torch.load(weights_only=True)`` and skops with an allow-list of the types a forest needs
(:mod:`mmt_tune.deploy.forest`); anything else in a bundle file is refused with one line, as is a file or
manifest section that changed since ``fit`` or an array whose shape disagrees with the manifest
(:mod:`mmt_tune.deploy.integrity`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mmt_tune.config import PreprocessConfig, TrainConfig
from mmt_tune.deploy.forest import load_forests, save_forests
from mmt_tune.deploy.integrity import (
    check_coefficients,
    check_hashes,
    check_schema,
    check_state,
    check_temperature,
    check_transforms,
    check_widths,
    seal,
)
from mmt_tune.errors import InputError
from mmt_tune.training.preprocess import ModalityTransform
from mmt_tune.training.refit import FittedConfiguration

FORMAT = "mmt-tune-bundle/2"
MANIFEST = "bundle.json"


@dataclass
class Bundle:
    """A loaded (or about to be saved) bundle: fitted configurations and what they were trained on."""

    configurations: dict[str, FittedConfiguration]
    info: dict = field(default_factory=dict)  # modalities, feature_columns, hashes, versions, positive class
    scores: dict[str, float] = field(default_factory=dict)  # configuration -> cross-validated objective

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.info.get("modalities", ()))


def savable(fitted: FittedConfiguration) -> bool:
    """Whether :func:`save_bundle` can store this configuration without pickle: a deep model (weights), a
    logistic regression (coefficients) or a random forest (skops, :mod:`mmt_tune.deploy.forest`)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    kinds = (LogisticRegression, RandomForestClassifier)
    return not fitted.config.baseline or all(isinstance(e, kinds) for e in fitted.estimators)


def folder_name(key: str) -> str:
    return key.replace("/", "_")


def versions() -> dict[str, str]:
    import torch

    from mmt_tune import __version__

    try:
        import radiomics

        pyradiomics = radiomics.__version__
    except ImportError:  # pragma: no cover - a dependency, but predicting does not need it
        pyradiomics = None
    return {"mmt_tune": __version__, "torch": torch.__version__, "pyradiomics": pyradiomics}


def save_bundle(bundle: Bundle, folder: str | Path) -> Path:
    """Write ``bundle`` to ``folder`` (replacing an old bundle there) all at once: into a temporary folder
    beside it, renamed into place, so an interrupted save leaves the old bundle or none."""
    import torch

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() and not (folder / MANIFEST).is_file():
        raise InputError(f"{folder}: exists and is not a bundle; choose another --out")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        entries = {}
        for key, fitted in bundle.configurations.items():
            if not savable(fitted):
                raise InputError(f"{key}: {fitted.config.model} cannot be saved without pickle")
            sub = staging / folder_name(key)
            sub.mkdir()
            arrays = {}
            for i, transforms in enumerate(fitted.transforms):
                for modality, t in transforms.items():
                    for part in ("median", "mean", "scale"):
                        arrays[f"{i}/{modality}/{part}"] = np.asarray(getattr(t, part), dtype=float)
            np.savez(sub / "preprocessing.npz", **arrays)
            if fitted.config.model == "forest":
                save_forests(fitted.estimators, sub)
            elif fitted.config.baseline:
                np.savez(
                    sub / "coefficients.npz",
                    **{
                        f"{i}/{name}": np.asarray(getattr(e, f"{name}_"))  # the fitted dtype (float32)
                        for i, e in enumerate(fitted.estimators)
                        for name in ("coef", "intercept", "classes")
                    },
                )
            else:
                torch.save(fitted.state, sub / "weights.pt")
            config = asdict(fitted.config)
            entries[key] = {
                "folder": sub.name,
                "config": config,
                "members": fitted.members,
                "widths": fitted.widths,
                "columns": [
                    {m: t.columns for m, t in transforms.items()} for transforms in fitted.transforms
                ],
                "score": bundle.scores.get(key),
                "temperature": fitted.temperature,  # calibration (one per member), or null
            }
        manifest = {"format": FORMAT, **bundle.info, "versions": versions(), "configurations": entries}
        manifest = json.loads(json.dumps(manifest, default=_plain))  # as it will read back
        (staging / MANIFEST).write_text(json.dumps(seal(manifest, staging), indent=2) + "\n")
        for path in staging.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(staging, 0o755)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(staging, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle written by :func:`save_bundle`; every problem is one :class:`InputError` naming the file
    or the manifest key (:mod:`mmt_tune.deploy.integrity`: schema, hashes, then shapes)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: not a bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: not a bundle manifest (a JSON object expected)")
    if manifest.get("format") != FORMAT:
        found = manifest.get("format")
        raise InputError(
            f"{path}: format {found!r}, expected {FORMAT!r} (refit the bundle with this mmt-tune)"
        )
    check_schema(manifest, path)
    check_hashes(manifest, folder, path)
    configurations, scores = {}, {}
    for key, entry in manifest["configurations"].items():
        sub = folder / Path(entry["folder"]).name  # a name, never a path out of the bundle
        try:
            configurations[key] = _load_configuration(
                sub, entry, manifest["feature_columns"], f"{path}: {key}"
            )
        except InputError:
            raise
        except Exception as exc:  # a tampered or truncated file: refuse it, never run it
            raise InputError(f"{sub}: cannot load {key} safely ({type(exc).__name__}: {exc})") from None
        scores[key] = entry.get("score")
    info = {k: v for k, v in manifest.items() if k not in ("format", "configurations", "sha256")}
    return Bundle(configurations, info, scores)


def _config(entry: dict, where: str) -> TrainConfig:
    try:
        config = dict(entry["config"])
        config["present"] = tuple(config["present"])
        config["modalities"] = tuple(config["modalities"])
        config["preprocess"] = PreprocessConfig(**config["preprocess"])
        config = TrainConfig(**config)
        config.validate()
    except InputError as exc:
        raise InputError(f"{where}.config: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}.config: not a configuration ({type(exc).__name__}: {exc})") from None
    return config


def _load_configuration(sub: Path, entry: dict, feature_columns: dict, where: str) -> FittedConfiguration:
    config = _config(entry, where)
    check_widths(entry, feature_columns, config.present, where)
    with np.load(sub / "preprocessing.npz", allow_pickle=False) as arrays:
        check_transforms(entry, arrays, feature_columns, where)
        transforms = [
            {
                m: ModalityTransform(
                    list(columns),
                    arrays[f"{i}/{m}/median"],
                    arrays[f"{i}/{m}/mean"],
                    arrays[f"{i}/{m}/scale"],
                )
                for m, columns in member.items()
            }
            for i, member in enumerate(entry["columns"])
        ]
    widths = {m: int(w) for m, w in entry["widths"].items()}
    if config.model == "forest":
        return FittedConfiguration(config, transforms, widths, estimators=load_forests(sub, entry, where))
    if config.baseline:
        from sklearn.linear_model import LogisticRegression

        estimators = []
        with np.load(sub / "coefficients.npz", allow_pickle=False) as arrays:
            check_coefficients(entry, arrays, where)
            for i in range(entry["members"]):
                estimator = LogisticRegression()
                estimator.coef_ = arrays[f"{i}/coef"]
                estimator.intercept_ = arrays[f"{i}/intercept"]
                estimator.classes_ = arrays[f"{i}/classes"].astype(int)
                estimators.append(estimator)
        return FittedConfiguration(config, transforms, widths, estimators=estimators)
    import torch

    from mmt_tune.training.trainer import build_model

    state = torch.load(sub / "weights.pt", map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise InputError(f"{where}: weights.pt is not a state dict")
    check_state(build_model(config, entry["members"], widths), state, where)
    temperature = check_temperature(entry, config, where)
    return FittedConfiguration(config, transforms, widths, state=state, temperature=temperature)
