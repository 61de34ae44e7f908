"""Feature-table validation on reading: labels as the manifest accepts them, one line naming the row otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_table

from mmt_tune.data.table import read_feature_table, write_feature_table
from mmt_tune.errors import InputError


def _write(tmp_path, table):
    path = tmp_path / "features.parquet"
    write_feature_table(table, path, {})
    return path


@pytest.mark.parametrize(
    "labels",
    [["SCLC", "NSCLC"], ["sclc", "nsclc"], [1, 0], [1.0, 0.0], ["1", "0"]],
)
def test_labels_the_manifest_accepts_become_1_and_0(tmp_path, labels):
    table = make_table(10)
    table["label"] = [labels[0] if y == 1 else labels[1] for y in table["label"]]
    read, _ = read_feature_table(_write(tmp_path, table))
    assert read["label"].tolist() == make_table(10)["label"].tolist()
    assert read["label"].dtype.kind == "i"


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.assign(label=t["label"].astype(float)).assign(**{"label": [np.nan, *t["label"][1:]]}),
            "row 1 (patient P0000): label is missing",
        ),
        (lambda t: t.assign(label=[2, *t["label"][1:]]), "row 1 (patient P0000): label 2 is not binary"),
        (
            lambda t: t.assign(label=["SCLC", "adeno", *["NSCLC"] * (len(t) - 2)]),
            "row 2 (patient P0001): label 'adeno' is not binary",
        ),
        (
            lambda t: t.assign(**{"DWI__original_firstorder_F3": [0.0, 0.0, np.inf, *[1.0] * (len(t) - 3)]}),
            "row 3 (patient P0002): DWI__original_firstorder_F3 is infinite (inf)",
        ),
        (lambda t: t.iloc[:0], "the feature table has no rows"),
        (
            lambda t: t.assign(label=np.nan),
            "no labels (a table of patients to be predicted: `predict` scores it; a study needs labels)",
        ),
    ],
)
def test_bad_labels_and_values_are_one_line_naming_the_row(tmp_path, edit, message):
    path = _write(tmp_path, edit(make_table(10)))
    with pytest.raises(InputError) as info:
        read_feature_table(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_atomic_writes_respect_the_umask(tmp_path):
    import os

    from mmt_tune._io import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "shared.txt", "x")
        write_feature_table(make_table(10), tmp_path / "shared.parquet", {})
    finally:
        os.umask(old)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "shared.parquet").stat().st_mode & 0o777 == 0o644
