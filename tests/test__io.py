"""Outputs as one unit: staged beside their targets, renamed into place together, or not at all."""

from __future__ import annotations

import pytest


def test_an_output_unit_replaces_every_file_or_none(tmp_path):
    from mmt_tune._io import output_unit, write_text_atomic

    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    with output_unit():
        write_text_atomic(a, "old a")
        write_text_atomic(b, "old b")
        assert not a.exists() and not b.exists()  # nothing in place before the unit ends
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    with pytest.raises(RuntimeError), output_unit():
        write_text_atomic(a, "new a")
        write_text_atomic(b, "new b")
        raise RuntimeError("the command failed after writing both")
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.txt", "sub"]  # no temporary left


def test_a_write_that_fails_names_its_target_and_keeps_the_old_file(tmp_path):
    from mmt_tune._io import atomic_path
    from mmt_tune.errors import InputError

    target = tmp_path / "t.csv"
    target.write_text("previous")
    full = f"{target}: cannot write \\(No space left on device\\)"
    with pytest.raises(InputError, match=full), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise OSError(28, "No space left on device", str(tmp))
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    # an error about another file is not blamed on the target
    with pytest.raises(FileNotFoundError), atomic_path(target):
        (tmp_path / "missing-input.csv").read_text()
