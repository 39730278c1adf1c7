"""Shared fixtures and tolerances for the afdsizer test suite."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the same examples every time (a red CI must be reproducible); local runs explore anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AFDSIZER_SHARED", REPO_ROOT.parent / "shared"))
"""The project's shared/ folder (real traces, calibration tables) beside the checkout."""

TRACES = SHARED / "traces"
CALIBRATION = SHARED / "calibration" / "aiconfigurator_silicon"

# Tolerances used across the suite, in one place (STYLE.md checklist).
REL_TOL_CLOSED_FORM = 1e-9
"""Closed form against exact algebra on the same numbers."""
REL_TOL_README_THETA = 5e-4
"""θ as the traces README prints it (one decimal) against our estimator."""


@dataclass(frozen=True)
class CliResult:
    """What one in-process CLI run produced."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``afdsizer ARGS...`` in-process; return exit code, stdout and stderr."""
    from afdsizer.cli import main

    def _run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return _run


def require_shared(path: Path) -> Path:
    """Skip the calling test when ``path`` under shared/ is absent (e.g. a bare checkout)."""
    if not path.exists():
        pytest.skip(
            f"needs the project's shared/ data folder beside the checkout, which this machine "
            f"lacks ({path}); set AFDSIZER_SHARED to where it is"
        )
    return path
