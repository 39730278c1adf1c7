"""The CLI shell: version, usage errors, and the one-line error contract."""

from __future__ import annotations

import subprocess
import sys

import afdsizer


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
