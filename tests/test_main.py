"""The CLI shell: version, usage errors, and the one-line error contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import afdsizer
from afdsizer._commands._common import unsigned_zero


def test_version(run_cli) -> None:  # type: ignore[no-untyped-def]
    """--version prints the package version and exits 0."""
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"afdsizer {afdsizer.__version__}"


def test_unknown_command_exits_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    """An unknown command is a usage error: exit 2, no traceback."""
    result = run_cli("no-such-command")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr + result.stdout


def test_console_script_reports_errors_in_one_line() -> None:
    """The installed entry point turns an AfdsizerError into one stderr line and exit 2."""
    code = (
        "import sys; from afdsizer import cli, InputError\n"
        "def boom(): raise InputError('batch must be >= 1, got 0')\n"
        "cli.app.command('boom')(boom)\n"
        "sys.argv = ['afdsizer', 'boom']\n"
        "cli._entry_point()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["afdsizer: error: batch must be >= 1, got 0"]


# --- Output read through a pipe or a file ------------------------------------------------------


def _to_file(tmp_path: Path, *args: str) -> str:
    """Run ``afdsizer ARGS`` as a process with stdout redirected to a file; return the file."""
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "afdsizer.cli", *args],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        )
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


@pytest.mark.parametrize(
    "args",
    [
        (
            "simulate",
            "--ratio",
            "1:32",
            "--batch",
            "91",
            "--steps",
            "3000",
        ),  # issue 13, fewer steps
        ("validate", "--quick"),
        ("workload", "--window", "1h"),
    ],
    ids=["simulate-sweep", "validate-quick", "workload-windows"],
)
def test_tables_keep_every_cell_whole_in_a_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    """No cell is cut to "…" nor wrapped: every table row is one line, all rows one width."""
    text = _to_file(tmp_path, *args)
    assert "…" not in text
    assert "-0.0%" not in text
    rows = [line for line in text.splitlines() if line.startswith(("│", "┃"))]
    assert rows, text
    widths = {len(line) for line in rows if line.startswith("│")}
    assert len(widths) <= 3, widths  # one per table at most (simulate, validate: several)


def test_piped_width_does_not_leak_into_the_caller(run_cli) -> None:  # type: ignore[no-untyped-def]
    """The wide layout is set for the command only; COLUMNS is restored afterwards."""
    before = os.environ.get("COLUMNS")
    run_cli("cost")
    assert os.environ.get("COLUMNS") == before


@given(st.floats(min_value=-1e-3, max_value=1e-3), st.sampled_from([".1%", ".2f", ".3f", ",.1f"]))
def test_unsigned_zero_drops_only_the_sign_of_zero(value: float, spec: str) -> None:
    """Oracle: the number the text shows. A zero loses its sign; anything else is unchanged."""
    text = format(value, spec)
    cleaned = unsigned_zero(f"x {text} y")
    shown = float(text.rstrip("%").replace(",", ""))
    if shown == 0:
        assert cleaned == f"x {text.lstrip('-')} y"
    else:
        assert cleaned == f"x {text} y"


# --- Start-up: a command imports what it needs --------------------------------------------------


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import afdsizer.cli", ("numpy", "polars", "scipy", "numba", "matplotlib")),
        ("from afdsizer.workload import load_trace", ("scipy", "numba", "matplotlib")),
        ("from afdsizer.workload import summarize_trace", ("scipy.stats", "numba", "matplotlib")),
        ("import afdsizer.cost", ("scipy.optimize", "scipy.stats", "numba", "matplotlib")),
    ],
)
def test_imports_stay_lazy(code: str, absent: tuple[str, ...]) -> None:
    """Heavy packages load only where used (a fresh interpreter, so nothing is cached)."""
    check = f"import sys; {code}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", f"{code} imported {out.strip()}"
