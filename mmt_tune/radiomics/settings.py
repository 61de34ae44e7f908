"""PyRadiomics settings: the shipped files (``fast``, ``paper``) or a YAML of the user's, checked against
PyRadiomics' own schema."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path

from mmt_tune._io import parse_yaml
from mmt_tune.errors import InputError

#: Settings files shipped with the package, usable by name: ``--params fast`` or ``--params paper``.
SHIPPED_SETTINGS = ("fast", "paper")


@dataclass(frozen=True)
class Settings:
    """PyRadiomics settings as loaded from YAML, with the hash that keys the cache and tags the output."""

    source: str  # file path or shipped name, for messages
    params: dict
    text: str

    @property
    def sha256(self) -> str:
        # Canonical JSON of the parsed settings: comments and key order do not change the hash.
        canonical = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def label(self) -> int:
        return int((self.params.get("setting") or {}).get("label", 1))


def load_settings(params: str | Path, validate: bool = True) -> Settings:
    """Load PyRadiomics settings (a YAML path, or a shipped name: fast, paper) and check them against
    PyRadiomics' schema unless ``validate`` is false."""
    if str(params) in SHIPPED_SETTINGS:
        text = resources.files("mmt_tune.radiomics").joinpath(f"{params}.yaml").read_text()
        source = f"{params} (shipped)"
    else:
        path = Path(params)
        if not path.is_file():
            raise InputError(
                f"{path}: settings file not found (or use a shipped name: {', '.join(SHIPPED_SETTINGS)})"
            )
        text, source = path.read_text(), str(path)
    parsed = parse_yaml(text, source) or {}
    if not isinstance(parsed, dict):
        raise InputError(f"{source}: expected a mapping with setting/imageType/featureClass keys")
    settings = Settings(source=source, params=parsed, text=text)
    if validate:
        validate_settings(settings)
    return settings


def validate_settings(settings: Settings) -> None:
    """Check the settings against PyRadiomics' own schema (the one its parameter files are validated with)."""
    import pykwalify.core
    from radiomics import featureextractor

    pykwalify.core.log.setLevel(logging.CRITICAL)  # we report the error ourselves, on one line
    try:
        featureextractor.RadiomicsFeatureExtractor(settings.params)
    except Exception as exc:  # pykwalify.errors.SchemaError and friends
        detail = " ".join(str(getattr(exc, "msg", exc)).split())
        raise InputError(f"{settings.source}: invalid PyRadiomics settings: {detail}") from None


def pyradiomics_version() -> str:
    """Installed PyRadiomics version, read from package metadata (importing PyRadiomics takes ~0.3 s)."""
    return importlib_metadata.version("pyradiomics")
