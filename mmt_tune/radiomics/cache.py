"""The content-addressed feature cache: a (case, modality) whose image, mask, settings, label and
PyRadiomics version are unchanged is never extracted twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mmt_tune._io import write_text_atomic


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FeatureCache:
    """Content-addressed store: key = hash(image bytes, mask bytes, settings, label, PyRadiomics version).

    Entries hold feature values only (no identifiers or paths), one small JSON file each, written atomically.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def key(image_hash: str, mask_hash: str, settings_hash: str, label: int, version: str) -> str:
        return hashlib.sha256(
            f"{image_hash}|{mask_hash}|{settings_hash}|{label}|{version}".encode()
        ).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, float] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())["features"]
        except (ValueError, KeyError):
            return None  # a damaged entry is recomputed

    def put(self, key: str, features: dict[str, float]) -> None:
        write_text_atomic(self._path(key), json.dumps({"features": features}))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
