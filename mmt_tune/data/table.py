"""Feature-table I/O (DESIGN.md "Data contracts").

A feature table is a Parquet file with ``patient_id``, ``label`` (1 = SCLC, 0 = NSCLC), optional ``lesion_id``,
then one float column per feature named ``<MODALITY>__<pyradiomics feature name>``. NaN means the modality was
missing for that row. File metadata (keys prefixed ``mmt_tune.``) records the PyRadiomics version, the hash
of the extraction settings and the settings themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mmt_tune._io import atomic_path
from mmt_tune.errors import InputError
from mmt_tune.modalities import COLUMN_SEPARATOR, MODALITIES

if TYPE_CHECKING:
    import pandas as pd

META_PREFIX = "mmt_tune."
RUN_KEY = f"{META_PREFIX}inputs_sha256"


def modality_columns(table: pd.DataFrame, modalities: Sequence[str] = MODALITIES) -> dict[str, list[str]]:
    """Feature columns of each modality, in table order."""
    return {m: [c for c in table.columns if c.startswith(f"{m}{COLUMN_SEPARATOR}")] for m in modalities}


def write_feature_table(
    table: pd.DataFrame, path: str | Path, metadata: Mapping[str, object], run_key: str | None = None
) -> None:
    """Write ``table`` to ``path`` atomically, with ``metadata`` stored in the Parquet schema.

    ``run_key`` is the extractor's hash of all inputs; a later run with the same inputs finds it and stops.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    extra = {
        f"{META_PREFIX}{key}".encode(): (value if isinstance(value, str) else json.dumps(value)).encode()
        for key, value in metadata.items()
    }
    if run_key:
        extra[RUN_KEY.encode()] = run_key.encode()
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **extra})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_feature_table(path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read a feature table and its ``mmt_tune.`` metadata; raise :class:`InputError` if it breaks the contract."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: feature table not found")
    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for non-Parquet input
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    metadata = {
        key.decode()[len(META_PREFIX) :]: value.decode()
        for key, value in (arrow.schema.metadata or {}).items()
        if key.decode().startswith(META_PREFIX)
    }
    table = arrow.to_pandas()
    for column in ("patient_id", "label"):
        if column not in table.columns:
            raise InputError(f"{path}: missing required column {column!r}")
    if not any(modality_columns(table).values()):
        raise InputError(
            f"{path}: no feature columns named <MODALITY>{COLUMN_SEPARATOR}<feature> for {', '.join(MODALITIES)}"
        )
    return table, metadata


def read_run_key(path: str | Path) -> str | None:
    """The inputs hash stored by the extractor, read from the Parquet footer only (no data, no pandas)."""
    import pyarrow.parquet as pq

    try:
        value = (pq.read_schema(path).metadata or {}).get(RUN_KEY.encode())
    except Exception:  # not Parquet, truncated, ...: treat as absent, the run rewrites it
        return None
    return value.decode() if value else None


def table_shape(path: str | Path) -> tuple[int, list[str]]:
    """Row count and column names of a Parquet table, from its footer."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    return meta.num_rows, list(meta.schema.names)
