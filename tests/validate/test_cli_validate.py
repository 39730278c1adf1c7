"""The `afdsizer validate` command: --quick --json runs and carries the contract's keys."""

from __future__ import annotations

import json

REQUIRED_KEYS = {
    "trace", "case", "r_theory", "r_sim", "rel_error", "throughput_loss", "r_theory_mean_field",
    "r_theory_gaussian", "rel_error_gaussian", "throughput_loss_gaussian", "barrier_model",
    "meets_goal", "meets_goal_gaussian", "theory_tied",
    "knee", "throughput_loss_ci", "regime", "baselines", "r_sim_tied", "throughput_sim_best_ci",
}  # fmt: skip


def test_quick_json_default_traces(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Default traces × default cases: ≥ 3 cases per trace, all three regimes, the JSON keys."""
    md = tmp_path / "validation.md"
    res = run_cli("validate", "--quick", "--json", "--markdown", md)
    assert res.exit_code == 0, res.stderr
    records = json.loads(res.stdout)
    traces = {r["trace"] for r in records}
    assert traces == {"azure_conv_2023", "azure_code_2023"}
    for t in traces:
        assert sum(r["trace"] == t for r in records) >= 3
    assert {r["regime"] for r in records} == {"attention", "communication", "ffn"}
    for r in records:
        assert set(r) >= REQUIRED_KEYS
        assert r["rel_error"] == abs(r["r_theory"] - r["r_sim"]) / r["r_sim"]
        lo, hi = r["throughput_loss_ci"]
        assert lo <= r["throughput_loss"] <= hi
        assert {b["name"] for b in r["baselines"]} >= {"one-to-one", "af-cap-4", "mean-lengths"}
    assert "| trace | case |" in md.read_text()


def test_table_output(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Without --json a readable table is printed."""
    res = run_cli("validate", "--quick", "--case", "qwen3moe-h100-b32", "--steps", "300")
    assert res.exit_code == 0, res.stderr
    assert "Theory vs simulation" in res.stdout


def test_unknown_case_is_one_line_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    """An unknown --case names the known ones; exit 2, one line."""
    res = run_cli("validate", "--quick", "--case", "nope")
    assert res.exit_code == 2
    assert "--case must be one of" in res.stderr and "nope" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_steps_and_seeds(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Too few steps or seeds are refused with a clear message."""
    res = run_cli("validate", "--steps", "5")
    assert res.exit_code == 2 and "--steps must be >= 20" in res.stderr
    res = run_cli("validate", "--seeds", "0")
    assert res.exit_code == 2 and "--seeds must be >= 1" in res.stderr


def test_missing_trace_file(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A trace that does not exist is a one-line error naming it."""
    res = run_cli("validate", "--quick", "--trace", tmp_path / "nope.csv")
    assert res.exit_code == 2
    assert "nope.csv" in res.stderr


def test_barrier_option(run_cli) -> None:  # type: ignore[no-untyped-def]
    """--barrier gaussian judges the Gaussian rule; an unknown value is a one-line error."""
    args = ("validate", "--quick", "--case", "qwen3moe-h100-b32", "--steps", "300", "--json")
    res = run_cli(*args, "--barrier", "gaussian")
    assert res.exit_code == 0, res.stderr
    for r in json.loads(res.stdout):
        assert r["barrier_model"] == "gaussian"
        assert r["r_theory"] == r["r_theory_gaussian"]
    res = run_cli(*args, "--barrier", "lognormal")
    assert res.exit_code == 2
    assert "--barrier must be one of" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
