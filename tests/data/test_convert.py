"""convert: identifiers as written, numeric 0/1 labels in any spelling, and a note on sparse prefixes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmt_tune.data.convert import main


def _wide(n: int = 30, **extra) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ID": [f"{i:03d}" for i in range(n)], "Target": rng.integers(0, 2, n)})
    for s in ("T1", "T2"):
        for j in range(12):
            frame[f"{s}_original_firstorder_F{j}"] = rng.normal(size=n)
    return frame.assign(**extra)


def test_identifiers_keep_their_leading_zeros(tmp_path, capsys):
    _wide().to_csv(tmp_path / "w.csv", index=False)
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert table["patient_id"].tolist()[:3] == ["000", "001", "002"]


def test_a_numeric_identifier_column_with_a_blank_is_one_line_naming_the_row(tmp_path, capsys):
    frame = _wide()
    frame["ID"] = np.arange(30, dtype=float)
    frame.loc[4, "ID"] = np.nan
    frame.to_csv(tmp_path / "w.csv", index=False)
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t.parquet")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'w.csv'}: row 6: ID is empty"
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize("kind", ["floats", "words"])
def test_labels_written_as_numbers_other_than_0_and_1_need_no_positive(tmp_path, capsys, kind):
    frame = _wide()
    spelling = (0.0, 1.0) if kind == "floats" else ("False", "True")
    frame["Target"] = np.where(frame["Target"] == 1, spelling[1], spelling[0])
    frame.to_csv(tmp_path / "w.csv", index=False)
    code = main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t.parquet")])
    if kind == "words":  # words, not numbers: which is positive must be said
        assert code == 2 and "--positive" in capsys.readouterr().err
        return
    assert code == 0
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert table["label"].tolist() == (frame["Target"] == 1.0).astype(int).tolist()


def test_a_prefix_with_few_columns_taken_as_a_sequence_is_named(tmp_path, capsys):
    _wide(clinical_age=50.0, clinical_sex=1.0).to_csv(tmp_path / "w.csv", index=False)
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t.parquet")]) == 0
    out = capsys.readouterr().out
    assert (
        "note: prefixes taken as sequences with far fewer columns than the largest (12): clinical (2 columns)"
        in out
    )
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t2.parquet"), "--sequences", "T1,T2"]) == 0
    assert "far fewer" not in capsys.readouterr().out


def test_a_prefix_that_is_no_mri_sequence_name_is_named(tmp_path, capsys):
    frame = _wide().rename(columns=lambda c: c.replace("T2_", "Clin_"))
    frame.to_csv(tmp_path / "w.csv", index=False)
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t.parquet")]) == 0
    out = capsys.readouterr().out
    assert "note: prefixes taken as sequences that are not MRI sequence names we know: Clin;" in out
    assert "T1" not in out.split("we know:")[1].split(";")[0]
    _wide().to_csv(tmp_path / "w.csv", index=False)
    assert main([str(tmp_path / "w.csv"), "--out", str(tmp_path / "t2.parquet")]) == 0
    assert "not MRI sequence names" not in capsys.readouterr().out
