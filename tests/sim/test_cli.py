"""`afdsizer simulate`: JSON keys, the r sweep, the series file and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from afdsizer._commands.simulate import parse_ratios
from afdsizer.errors import InputError
from afdsizer.sim import SimConfig, simulate

from ._helpers import BALANCED

REQUIRED_KEYS = {
    "throughput_per_instance",
    "step_time_mean_s",
    "step_time_p99_s",
    "attention_idle",
    "ffn_idle",
    "barrier_idle",
    "mean_slot_load",
    "tpot_p50_s",
    "tpot_p99_s",
    "steps",
}


@pytest.fixture
def trace_csv(tmp_path: Path) -> Path:
    """A small Azure-format trace with timestamps."""
    rng = np.random.default_rng(0)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for i in range(200):
        lines.append(
            f"2023-11-16 18:15:{i // 10:02d}.{i % 10}000000,{rng.integers(1, 900)},"
            f"{rng.integers(1, 60)}"
        )
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def coeffs_json(tmp_path: Path) -> Path:
    """The BALANCED coefficients as a --coeffs file."""
    path = tmp_path / "coeffs.json"
    path.write_text(json.dumps(BALANCED.to_dict()))
    return path


def test_json_single_run(run_cli, trace_csv: Path, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """--json prints the SimResult fields; they equal the library's numbers."""
    out = run_cli(
        "simulate", "--ratio", "3", "--batch", "8", "--steps", "2000", "--seed", "5",
        "--trace", trace_csv, "--coeffs", coeffs_json, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= REQUIRED_KEYS
    assert data["steps"] == 1800
    from afdsizer.workload import load_trace

    trace = load_trace(trace_csv)
    res = simulate(
        trace.prompt_tokens, trace.decode_tokens, BALANCED,
        SimConfig(ratio=3, batch=8, steps=2000, seed=5),
    )  # fmt: skip
    assert data["throughput_per_instance"] == res.throughput_per_instance
    assert data["mean_slot_load"] == res.mean_slot_load


def test_json_sweep_reports_best(run_cli, trace_csv: Path, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """--ratio LO:HI sweeps r: a list of results and the arg-max of throughput."""
    out = run_cli(
        "simulate", "--ratio", "1:4", "--batch", "8", "--steps", "1500",
        "--trace", trace_csv, "--coeffs", coeffs_json, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert [row["ratio"] for row in data["results"]] == [1, 2, 3, 4]
    # The best r is the one with the most tokens/s per GPU (the default objective, as `size`).
    best = max(data["results"], key=lambda row: row["throughput_per_gpu"])
    assert data["best_ratio"] == best["ratio"] == data["best"]["ratio"]
    assert data["objective"] == "gpu"
    assert all(set(row) >= REQUIRED_KEYS for row in data["results"])


def test_table_output_and_open_loop(run_cli, trace_csv: Path, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """Without --json a table; open loop from the trace timestamps shows the queue delay."""
    out = run_cli(
        "simulate", "--ratio", "2", "--batch", "4", "--steps", "1000", "--open-loop", "trace",
        "--time-scale", "0.5", "--trace", trace_csv, "--coeffs", coeffs_json,
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    assert "throughput per instance" in out.stdout
    assert "queue delay" in out.stdout


def test_poisson_microbatch_jitter(run_cli, trace_csv: Path, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """Poisson arrivals with microbatching and jitter run and report an arrival rate."""
    out = run_cli(
        "simulate", "--ratio", "2", "--batch", "4", "--steps", "3000", "--open-loop", "poisson",
        "--rate", "50", "--pipeline", "microbatch", "--jitter-cv", "0.2", "--trace", trace_csv,
        "--coeffs", coeffs_json, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["arrivals"] == "poisson" and data["pipeline"] == "microbatch"
    assert data["arrival_rate_per_s"] == pytest.approx(50, rel=0.25)


def test_series_out(run_cli, trace_csv: Path, coeffs_json: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--series-out writes one Parquet row per step."""
    import polars as pl

    target = tmp_path / "series.parquet"
    out = run_cli(
        "simulate", "--ratio", "2", "--batch", "4", "--steps", "500", "--trace", trace_csv,
        "--coeffs", coeffs_json, "--series-out", target, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    frame = pl.read_parquet(target)
    assert frame.height == 500
    assert {"step", "step_time_s", "active_slots", "load_tokens"} <= set(frame.columns)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--ratio", "0", "--batch", "4"], "--ratio values must be >= 1, got 0"),
        (["--ratio", "x", "--batch", "4"], "--ratio must be an integer, a range"),
        (["--ratio", "2", "--batch", "4", "--steps", "0"], "steps must be an integer >= 1"),
        (["--ratio", "2", "--batch", "0"], "batch must be an integer >= 1, got 0"),
        (
            ["--ratio", "2", "--batch", "4096", "--kv-capacity", "20000"],
            "batch B=4096 does not fit in KV memory",
        ),
        (["--ratio", "2", "--batch", "4", "--open-loop", "burst"], "--open-loop must be"),
        (["--ratio", "2", "--batch", "4", "--rate", "3"], "--rate goes with --open-loop poisson"),
        (
            ["--ratio", "2", "--batch", "4", "--open-loop", "poisson"],
            "arrival_rate_per_s must be > 0",
        ),
    ],
)
def test_bad_options_exit_2_with_one_line(  # type: ignore[no-untyped-def]
    run_cli, trace_csv: Path, coeffs_json: Path, args: list[str], fragment: str
) -> None:
    """Bad options: exit status 2 and one line on stderr naming the problem."""
    out = run_cli("simulate", *args, "--trace", trace_csv, "--coeffs", coeffs_json)
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_parse_ratios() -> None:
    """--ratio forms: single, range, stepped range, list; bad ones raise."""
    assert parse_ratios("16") == [16]
    assert parse_ratios("1:4") == [1, 2, 3, 4]
    assert parse_ratios("1:32:8") == [1, 9, 17, 25]
    assert parse_ratios(" 4,8 ") == [4, 8]
    for bad in ("5:1", "1:2:0", "1:2:3:4", "", "-1"):
        with pytest.raises(InputError):
            parse_ratios(bad)


def test_fixed_lengths_need_no_trace(run_cli, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """--isl/--osl: a constant trace; the realised slot load is θ = ISL + (OSL − 1)/2 exactly."""
    out = run_cli(
        "simulate", "--ratio", "4", "--batch", "16", "--steps", "1000", "--warmup", "100",
        "--isl", "700", "--osl", "10", "--coeffs", coeffs_json, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["mean_slot_load"] == pytest.approx(700 + 9 / 2, rel=1e-12)
    assert data["barrier_idle"] > 0  # staggered by default: the workers' loads differ
    assert data["throughput_per_gpu"] * data["gpus_per_bundle"] == pytest.approx(
        data["tokens_per_s"], rel=1e-12
    )
    assert data["gpus_per_bundle"] == 4 * 1 + 8  # Deployment's default GPUs
    assert data["kv_dtype"] == "bf16"


def test_dp_microbatch_deployment_matches_library(run_cli, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """The deployment flags give SimConfig.from_deployment's run, number for number."""
    from afdsizer.deployment import Deployment

    out = run_cli(
        "simulate", "--ratio", "3", "--batch", "16", "--steps", "800", "--isl", "300",
        "--osl", "20", "--attn-gpus", "4", "--attn-parallel", "dp", "--ffn-gpus", "2",
        "--microbatches", "2", "--layers", "6", "--coeffs", coeffs_json, "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    deployment = Deployment(attn_gpus=4, attn_parallel="dp", ffn_gpus=2, microbatches=2, layers=6)
    cfg = SimConfig.from_deployment(deployment, ratio=3, batch=16, steps=800, stagger=True)
    res = simulate([300], [20], BALANCED, cfg)
    assert (data["pipeline"], data["microbatches"], data["layers"]) == ("microbatch", 2, 6)
    assert (data["workers_per_instance"], data["gpus_per_bundle"]) == (4, 3 * 4 + 2)
    assert data["throughput_per_gpu"] == res.throughput_per_gpu
    assert data["step_time_mean_s"] == res.step_time_mean_s


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--microbatches", "2"], "--layers is needed for the microbatch pipeline with m = 2"),
        (["--isl", "100"], "--isl and --osl go together"),
        (["--isl", "100", "--osl", "5", "--trace", "t.csv"], "give one workload"),
        (["--pipeline", "serial", "--microbatches", "2"], "--pipeline serial runs one microbatch"),
        (["--pipeline", "ringbuffer"], "--pipeline must be overlapped, serial or microbatch"),
        (["--attn-parallel", "ep"], "attn_parallel must be one of tp, dp"),
        (["--jitter-dist", "normal"], "--jitter-dist must be one of lognormal, gamma"),
        (["--refill", "shuffle"], "--refill must be one of resample, replay"),
    ],
)
def test_deployment_options_bad_input(  # type: ignore[no-untyped-def]
    run_cli, coeffs_json: Path, args: list[str], fragment: str
) -> None:
    """Bad deployment or workload options: exit 2 and one line naming the option."""
    out = run_cli(
        "simulate", "--ratio", "2", "--batch", "4", "--steps", "50", *args, "--coeffs",
        coeffs_json,
    )  # fmt: skip
    assert out.exit_code == 2, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_table_shows_per_gpu_throughput(run_cli, coeffs_json: Path) -> None:  # type: ignore[no-untyped-def]
    """The table leads with tokens/s per GPU and the GPUs per bundle, and names the KV dtype."""
    out = run_cli(
        "simulate", "--ratio", "2", "--batch", "4", "--steps", "300", "--isl", "50", "--osl",
        "5", "--coeffs", coeffs_json,
    )  # fmt: skip
    assert out.exit_code == 0, out.stderr
    assert "throughput per GPU" in out.stdout and "10 GPUs per bundle" in out.stdout
    assert "KV cache dtype" in out.stdout and "bf16" in out.stdout
