"""The Parquet part store: atomic parts, one schema, readable as one table, resumable keys."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from afdsizer.errors import DataFileError, InputError
from afdsizer.sweep import SCHEMA, ResultStore, read_results


def _rows(keys: list[str]) -> list[dict[str, object]]:
    return [
        {"cell_key": k, "batch": i, "r_star": 0.5 * i, "error": None} for i, k in enumerate(keys)
    ]


def test_parts_read_back_as_one_table(tmp_path: Path) -> None:
    """Two appends give two parts; polars reads the directory as their union, schema intact."""
    store = ResultStore(tmp_path / "out.parquet")
    assert store.done_keys() == set()
    store.append(_rows(["b", "a"]))
    store.append(_rows(["c"]))
    assert len(store.parts()) == 2
    table = pl.read_parquet(tmp_path / "out.parquet")
    assert dict(table.schema) == SCHEMA
    assert sorted(table["cell_key"].to_list()) == ["a", "b", "c"]
    assert read_results(tmp_path / "out.parquet")["cell_key"].to_list() == ["a", "b", "c"]
    assert store.done_keys() == {"a", "b", "c"}
    assert ResultStore(tmp_path / "out.parquet").done_keys() == {"a", "b", "c"}


def test_no_rows_writes_nothing(tmp_path: Path) -> None:
    """An empty chunk adds no part file."""
    store = ResultStore(tmp_path / "o")
    assert store.append([]) is None
    assert store.parts() == []


def test_failed_write_leaves_no_part_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way leaves the directory as it was, and no temporary file."""
    store = ResultStore(tmp_path / "o")
    store.append(_rows(["a"]))
    before = sorted(p.name for p in tmp_path.rglob("*"))

    def broken(self: pl.DataFrame, file: str, **kwargs: object) -> None:
        Path(file).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        store.append(_rows(["b"]))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """``-o`` naming an existing plain file is an input error, not an overwrite."""
    target = tmp_path / "results.parquet"
    target.write_bytes(b"x")
    with pytest.raises(InputError, match="exists and is a file"):
        ResultStore(target)


def test_read_results_of_missing_or_empty_directory(tmp_path: Path) -> None:
    """A missing directory is an error; an empty one is an empty table with the schema."""
    with pytest.raises(DataFileError, match="not a sweep output directory"):
        read_results(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    empty = read_results(tmp_path / "empty")
    assert empty.height == 0
    assert dict(empty.schema) == SCHEMA


def test_damaged_part_is_reported(tmp_path: Path) -> None:
    """A part that is not Parquet fails the resume with the file named."""
    store = ResultStore(tmp_path / "o")
    store.append(_rows(["a"]))
    (tmp_path / "o" / "part-zzz-000000.parquet").write_bytes(b"garbage")
    with pytest.raises(DataFileError, match=r"part-zzz-000000\.parquet: cannot read sweep part"):
        store.done_keys()
