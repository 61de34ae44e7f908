"""Feature-table I/O (docs/design.md "Data contracts").

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
from mmt_tune.modalities import COLUMN_SEPARATOR, MAX_MODALITIES, table_modalities

if TYPE_CHECKING:
    import pandas as pd

META_PREFIX = "mmt_tune."
RUN_KEY = f"{META_PREFIX}inputs_sha256"


def modality_columns(table: pd.DataFrame, modalities: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Feature columns of each modality (default: the table's own, :func:`table_modalities`), in table order."""
    modalities = table_modalities(list(table.columns)) if modalities is None else modalities
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
    metadata = _our_metadata(arrow.schema)
    table = arrow.to_pandas()
    for column in ("patient_id", "label"):
        if column not in table.columns:
            raise InputError(f"{path}: missing required column {column!r}")
    if len(table) and table["label"].isna().all():
        raise InputError(
            f"{path}: no labels (a table of patients to be predicted: `predict` scores it; a study needs labels)"
        )
    found = table_modalities(list(table.columns))
    if not found:
        raise InputError(f"{path}: no feature columns named <MODALITY>{COLUMN_SEPARATOR}<feature>")
    if len(found) > MAX_MODALITIES:
        raise InputError(
            f"{path}: {len(found)} modalities ({', '.join(found)}); a study takes at most {MAX_MODALITIES}"
        )
    return validate_table(table, str(path)), metadata


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``mmt_tune.`` metadata of a Parquet table (extraction settings hash, positive class, ...), read from
    its schema alone, whatever its rows hold (empty for a table that has none)."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for non-Parquet input
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    return _our_metadata(schema)


def _our_metadata(schema) -> dict[str, str]:
    """The ``mmt_tune.`` keys of a Parquet schema's metadata, without the prefix."""
    return {
        key.decode()[len(META_PREFIX) :]: value.decode()
        for key, value in (schema.metadata or {}).items()
        if key.decode().startswith(META_PREFIX)
    }


def validate_table(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check rows, labels and feature values; return the table with ``label`` as int 1/0.

    Labels are accepted as the manifest accepts them (SCLC/NSCLC, 1/0) and as floats 1.0/0.0; anything else,
    a missing label or an infinite feature value is an :class:`InputError` naming the row and patient.
    """
    import numpy as np

    from mmt_tune.data.manifest import parse_label

    if table.empty:
        raise InputError(f"{source}: the feature table has no rows")

    def where(i: int) -> str:
        return f"{source}: row {i + 1} (patient {table['patient_id'].iloc[i]})"

    labels = []
    for i, value in enumerate(table["label"]):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            raise InputError(f"{where(i)}: label is missing")
        if isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(value, bool):
            if float(value) not in (0.0, 1.0):
                raise InputError(f"{where(i)}: label {value!r} is not binary (expected SCLC/NSCLC or 1/0)")
            labels.append(int(value))
        else:
            labels.append(parse_label(str(value), where(i)))
    table = table.copy()
    table["label"] = np.asarray(labels, dtype=int)
    return validate_features(table, source)


def validate_features(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Feature columns numeric and finite (NaN is a missing value); an :class:`InputError` naming the
    column, or the row and patient."""
    import numpy as np
    import pandas as pd

    if table.empty:
        raise InputError(f"{source}: the feature table has no rows")

    def where(i: int) -> str:
        return f"{source}: row {i + 1} (patient {table['patient_id'].iloc[i]})"

    ids = table["patient_id"]
    empty = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise InputError(f"{source}: row {int(np.flatnonzero(empty)[0]) + 1}: patient_id is empty")

    features = [c for columns in modality_columns(table).values() for c in columns]
    for column in features:
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise InputError(f"{source}: column {column} is not numeric ({table[column].dtype})")
    values = table[features].to_numpy(dtype=float)
    infinite = np.argwhere(np.isinf(values))
    if len(infinite):
        i, j = infinite[0]
        raise InputError(f"{where(int(i))}: {features[j]} is infinite ({values[i, j]})")
    return table


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


def describe_table(table: pd.DataFrame, metadata: Mapping[str, str]) -> dict:
    """What a report says about the data a study used: size, class balance, modalities, extraction
    provenance. Counts and hashes only: no patient identifier, path or date."""
    columns = modality_columns(table)
    labels = table["label"].astype(int)
    return {
        "rows": len(table),
        "patients": int(table["patient_id"].nunique()),
        "positives": int((labels == 1).sum()),
        "negatives": int((labels == 0).sum()),
        "modalities": [m for m, names in columns.items() if names],
        "features_per_modality": {m: len(names) for m, names in columns.items() if names},
        "positive_class": metadata.get("positive_class"),
        "pyradiomics_version": metadata.get("pyradiomics_version"),
        "settings_sha256": metadata.get("settings_sha256"),
        "source": metadata.get("source"),  # "imported" for a table computed elsewhere (mmt-tune convert)
    }
