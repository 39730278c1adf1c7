"""`afdsizer workload`: JSON keys and values, the table, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afdsizer.workload import bundled_trace_path, estimate_slot_load, load_trace

REQUIRED_KEYS = {
    "rows",
    "dropped",
    "mean_prompt",
    "mean_decode",
    "theta",
    "theta_ci",
    "slot_load_std",
    "corr_prompt_decode",
    "prompt_percentiles",
    "decode_percentiles",
    "span_s",
    "arrival_rate_per_s",
    "windows",
}


def test_json_on_bundled_default(run_cli) -> None:  # type: ignore[no-untyped-def]
    """With no TRACE the bundled trace is summarised; JSON has the contract keys and values."""
    result = run_cli("workload", "--json", "--window", "10min")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload.keys() >= REQUIRED_KEYS
    trace = load_trace(bundled_trace_path())
    est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
    assert payload["rows"] == trace.n_requests
    assert payload["theta"] == pytest.approx(est.theta_tokens)
    assert payload["theta_ci"] == pytest.approx(list(est.theta_ci_tokens))
    assert payload["slot_load_std"] == pytest.approx(est.slot_load_std_tokens)
    assert payload["window_s"] == 600.0
    assert len(payload["windows"]) == 6
    assert {"start_s", "rows", "theta", "theta_ci"} <= payload["windows"][0].keys()


def test_table_output(run_cli) -> None:  # type: ignore[no-untyped-def]
    """The default output is a readable table with θ and the window rows."""
    result = run_cli("workload", bundled_trace_path("azure_code_2023"), "--window", "30min")
    assert result.exit_code == 0, result.stderr
    assert "θ, mean slot load" in result.stdout
    assert "2,130.4" in result.stdout
    assert "θ per 1800 s window" in result.stdout


def test_explicit_columns_drop_invalid_and_bootstrap(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """--prompt-col/--decode-col/--time-col, --drop-invalid and --ci bootstrap --seed work."""
    path = tmp_path / "t.csv"
    path.write_text("when,inp,out\n0,10,2\n1,x,3\n2,30,4\n5,7,1\n")
    args = ["workload", path, "--json", "--prompt-col", "inp", "--decode-col", "out"]
    args += ["--time-col", "when", "--drop-invalid", "--ci", "bootstrap", "--seed", "3"]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["rows"], payload["dropped"], payload["span_s"]) == (3, 1, 5.0)
    assert payload["ci_method"] == "bootstrap"
    assert payload == json.loads(run_cli(*args).stdout)


@pytest.mark.parametrize(
    ("content", "extra", "fragment"),
    [
        ("num_prefill_tokens,num_decode_tokens\n1,2\n3,-4\n", [], "t.csv line 3, column"),
        ("a,b\n1,2\n", [], "t.csv line 1: unknown trace format"),
        ("", [], "t.csv is empty (line 1)"),
        ("num_prefill_tokens,num_decode_tokens\n1,2\n", ["--window", "1h"], "needs arrival"),
        ("num_prefill_tokens,num_decode_tokens\n1,2\n", ["--window", "soon"], "--window must"),
        ("num_prefill_tokens,num_decode_tokens\n1,2\n", ["--ci", "jack"], "--ci must be"),
    ],
)
def test_bad_input_exits_2_with_one_line(  # type: ignore[no-untyped-def]
    tmp_path: Path, run_cli, content: str, extra: list[str], fragment: str
) -> None:
    """Bad input prints one line on stderr (no traceback) and exits with status 2."""
    path = tmp_path / "t.csv"
    path.write_text(content)
    result = run_cli("workload", path, "--json", *extra)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert fragment in lines[0]


def test_missing_file_exits_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    """A missing trace file is one line and exit 2."""
    result = run_cli("workload", "/no/such/trace.csv")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
