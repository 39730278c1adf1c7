"""Atomic output: the target holds either the old content or the new, never a partial write."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from afdsizer._io import atomic_path, atomic_write_text, check_output_path
from afdsizer.errors import InputError


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


# --- check_output_path: refused before work starts, in one line ------------------------------


def test_check_output_path_accepts_a_new_file_in_a_new_folder(tmp_path: Path) -> None:
    """A path whose folders do not exist yet is fine: atomic_path creates them."""
    target = tmp_path / "a" / "b" / "report.html"
    assert check_output_path(target) == target
    atomic_write_text(target, "x")
    assert target.read_text() == "x"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d, "is a directory"),
        (lambda d: Path("/proc/afdsizer-test.html"), "under /proc"),
        (lambda d: Path("/sys/kernel/x.html"), "under /sys"),
        (lambda d: Path("/dev/null"), "under /dev"),
        (lambda d: d / "file.txt" / "below.html", "is a file, not a directory"),
        (lambda d: d / "file.txt" / "deeper" / "below.html", "is a file, not a directory"),
    ],
    ids=["directory", "proc", "sys", "dev-null", "below-a-file", "two-below-a-file"],
)
def test_check_output_path_refuses_unwritable_targets(
    tmp_path: Path, make: Callable[[Path], Path], words: str
) -> None:
    """Directories, kernel file systems and paths below regular files are refused by name."""
    (tmp_path / "file.txt").write_text("keep")
    with pytest.raises(InputError, match=words) as info:
        check_output_path(make(tmp_path), option="-o")
    assert str(info.value).startswith("-o ")
    assert "\n" not in str(info.value)
    assert (tmp_path / "file.txt").read_text() == "keep"


def test_check_output_path_refuses_an_input_under_another_spelling(tmp_path: Path) -> None:
    """``./x/../trace.csv`` and a symbolic link to it are the same file as ``trace.csv``."""
    trace = tmp_path / "trace.csv"
    trace.write_text("a,b\n1,2\n")
    (tmp_path / "x").mkdir()
    (tmp_path / "link.csv").symlink_to(trace)
    for spelling in (tmp_path / "x" / ".." / "trace.csv", tmp_path / "link.csv"):
        with pytest.raises(InputError, match="is also the --trace input"):
            check_output_path(spelling, inputs={"--trace": trace, "--coeffs": None})
    # A different file, or an input that is a preset name rather than a file, is fine.
    check_output_path(tmp_path / "out.html", inputs={"--trace": trace, "--model": "llama-3.1-70b"})


def test_check_output_path_for_a_directory_output(tmp_path: Path) -> None:
    """A sweep's -o is a directory: an existing file there is refused, a folder accepted."""
    (tmp_path / "results.parquet").write_text("not a folder")
    with pytest.raises(InputError, match="exists and is a file"):
        check_output_path(tmp_path / "results.parquet", option="-o", directory=True)
    assert check_output_path(tmp_path, option="-o", directory=True) == tmp_path


def test_atomic_path_refuses_a_directory_without_touching_it(tmp_path: Path) -> None:
    """Every writer gets the checks: atomic_path onto a folder raises before writing."""
    (tmp_path / "keep.txt").write_text("k")
    with pytest.raises(InputError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only-mode folder")
def test_check_output_path_refuses_a_folder_without_write_permission(tmp_path: Path) -> None:
    """A folder the user may not write in is named in the message."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="no permission"):
            check_output_path(locked / "x.html")
    finally:
        locked.chmod(0o700)
