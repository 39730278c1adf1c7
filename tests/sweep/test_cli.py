"""`afdsizer sweep`: JSON summary, resume, and one-line errors with exit status 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from afdsizer.sweep import enumerate_cells, load_spec, read_results

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sweep.yaml"


def test_json_summary_then_resume(
    run_cli: Callable[..., Any], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """--json reports cells_run/skipped/failed; the same command again skips every cell."""
    spec, out = write_spec(ratio=["auto", 2]), tmp_path / "res.parquet"
    first = run_cli("sweep", spec, "-o", out, "--workers", "1", "--json")
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    assert {k: summary[k] for k in ("cells_total", "cells_run", "cells_skipped")} == {
        "cells_total": 4,
        "cells_run": 4,
        "cells_skipped": 0,
    }
    assert (summary["cells_failed"], summary["cells_lost"], summary["engine"]) == (0, 0, "local")
    assert read_results(out).height == 4
    again = json.loads(run_cli("sweep", spec, "-o", out, "--workers", "1", "--json").stdout)
    assert (again["cells_run"], again["cells_skipped"]) == (0, 4)


def test_text_summary(
    run_cli: Callable[..., Any], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """Without --json one line says what ran, what was skipped and the rate."""
    result = run_cli("sweep", write_spec(), "-o", tmp_path / "o", "--workers", "1")
    assert result.exit_code == 0
    assert "4 run (0 failed), 0 skipped of 4" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "extra", "fragment"),
    [
        ({"batchs": [1]}, [], "sweep spec "),
        ({"batch": []}, [], "batch: List should have at least 1 item"),
        ({"traces": ["missing.csv"]}, [], "file 'missing.csv' not found"),
        ({"models": ["no-such-model"], "hardware": ["h100-sxm"]}, [], "no-such-model"),
        ({}, ["--workers", "0"], "--workers must be >= 1, got 0"),
        ({}, ["--scheduler", "nowhere"], "--scheduler must be an address like tcp://HOST:PORT"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    run_cli: Callable[..., Any],
    write_spec: Callable[..., Path],
    tmp_path: Path,
    overrides: dict[str, object],
    extra: list[str],
    fragment: str,
) -> None:
    """Bad specs and options stop before any cell runs: exit 2, one stderr line, no output."""
    out = tmp_path / "o"
    result = run_cli("sweep", write_spec(**overrides), "-o", out, *extra)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("afdsizer: error: ")
    assert fragment in lines[0]
    assert not out.exists()


def test_example_spec_is_valid() -> None:
    """docs/examples/sweep.yaml validates and spans the documented grid (2·4·3·5·2 cells)."""
    spec, _ = load_spec(EXAMPLE_SPEC)
    assert spec.simulate is not None
    assert len(enumerate_cells(spec)) == 2 * 4 * 3 * 5 * 2
