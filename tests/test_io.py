"""Atomic output: the target holds either the old content or the new, never a partial write."""

from __future__ import annotations

from pathlib import Path

import pytest

from afdsizer._io import atomic_path, atomic_write_text


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    """A completed write replaces the old file and leaves no temporary file behind."""
    target = tmp_path / "sub" / "out.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    """An exception inside the block leaves the previous file intact and removes the temp file."""
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_written_file_respects_umask(tmp_path: Path) -> None:
    """The renamed file gets the mode a plain open() would give, not mkstemp's private 0600."""
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.html", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o644
