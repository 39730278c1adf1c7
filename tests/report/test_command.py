"""`afdsizer report`: the CLI writes the page and reports the numbers the page shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import REL_TOL_README_THETA, TRACES, require_shared

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.theory import recommend
from afdsizer.workload import Workload, load_trace

from ._report_html import parse_report

COEFFS = {
    "alpha_attn_s": 2e-3,
    "beta_attn_s_per_token": 1e-7,
    "alpha_comm_s": 1e-3,
    "beta_comm_s_per_token": 1e-6,
    "alpha_ffn_s": 1e-3,
    "beta_ffn_s_per_token": 1.2e-5,
}


@pytest.fixture
def coeffs_file(tmp_path: Path) -> Path:
    path = tmp_path / "coeffs.json"
    path.write_text(json.dumps(COEFFS), encoding="utf-8")
    return path


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    """A small Azure-format trace (timestamps, ContextTokens, GeneratedTokens)."""
    rng = np.random.default_rng(2)
    n = 800
    seconds = np.sort(rng.uniform(0, 1800, size=n))
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for s, p, d in zip(seconds, rng.integers(10, 4000, n), rng.geometric(1 / 120, n), strict=True):
        minute, sec = divmod(s, 60)
        lines.append(f"2023-11-16 18:{int(minute):02d}:{sec:010.7f},{p},{d}")
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_json_matches_the_page_and_theory(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, trace_file: Path, tmp_path: Path
) -> None:
    """--json path and numbers = the page's = theory.recommend's at the trace's θ and σ."""
    out = tmp_path / "out" / "report.html"
    result = run_cli(
        "report", "--coeffs", coeffs_file, "--trace", trace_file, "--batch", "32",
        "--sim-steps", "1500", "--seed", "4", "-o", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["path"] == str(out)
    page = parse_report(out.read_text(encoding="utf-8"))
    shown = page.json_blocks["report-data"]["recommendation"]
    assert shown == payload["recommendation"]
    assert {k: str(v) for k, v in payload["recommendation"].items()} == page.cards
    rec = recommend(
        CostCoefficients.from_mapping(COEFFS),
        Workload.from_trace(load_trace(trace_file)),
        Deployment(batch=32),
    )
    assert payload["recommendation"]["r_int"] == rec.r_int
    assert payload["recommendation"]["throughput_per_instance"] == rec.throughput_per_instance
    assert set(page.figures) == {
        "workload", "throughput", "step-time", "idle", "regime-map", "theta-windows",
    }  # fmt: skip
    assert page.json_blocks["report-data"]["sim"] == {"steps": 1500, "seed": 4}
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_theta_without_trace(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, tmp_path: Path
) -> None:
    """--theta/--slot-load-std replace the trace: theory figures only, human summary line."""
    out = tmp_path / "theta.html"
    result = run_cli(
        "report", "--coeffs", coeffs_file, "--theta", "1500", "--slot-load-std", "600",
        "--batch", "16", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"report → {out}: r = ")
    page = parse_report(out.read_text(encoding="utf-8"))
    assert set(page.figures) == {"throughput", "step-time", "idle", "regime-map"}
    assert float(page.cards["theta"]) == 1500.0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--slot-load-std", "3"], "--theta and --slot-load-std go together"),
        (["--theta", "300"], "--theta and --slot-load-std go together"),
        (
            ["--theta", "1", "--slot-load-std", "1", "--tpot-ms", "0"],
            "--tpot-ms must be a finite number > 0 ms",
        ),
        (
            ["--theta", "1", "--slot-load-std", "1", "--trace", "x.csv"],
            "give one workload: --trace or --theta",
        ),
        (["--model", "llama-3.1-70b"], "--coeffs excludes --model"),
        (["--sim-steps", "-1"], "sim_steps must be >= 0 steps, got -1"),
    ],
)
def test_bad_input_is_one_line_exit_2(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    """Contradictory options: one line on stderr naming the problem, exit 2, no file written."""
    out = tmp_path / "never.html"
    result = run_cli("report", "--coeffs", coeffs_file, *args, "-o", out)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_missing_trace_file(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, tmp_path: Path
) -> None:
    """A trace path that does not exist is named in the error."""
    missing = tmp_path / "nope.csv"
    result = run_cli(
        "report", "--coeffs", coeffs_file, "--trace", missing, "-o", tmp_path / "r.html"
    )
    assert result.exit_code == 2
    assert "nope.csv" in result.stderr


def test_output_is_required(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Without -o typer reports a usage error (exit 2)."""
    assert run_cli("report").exit_code == 2


def test_report_agrees_with_size(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, trace_file: Path, tmp_path: Path
) -> None:
    """With the same options (B sized jointly under a TPOT target), report and size agree."""
    options = [
        "--coeffs",
        coeffs_file,
        "--trace",
        trace_file,
        "--tpot-ms",
        "6",
        "--kv-quantile",
        "0.99",
    ]
    sized = run_cli("size", *options, "--json")
    assert sized.exit_code == 0, sized.stderr
    reported = run_cli("report", *options, "--sim-steps", "0", "-o", tmp_path / "r.html", "--json")
    assert reported.exit_code == 0, reported.stderr
    size_numbers = json.loads(sized.stdout)
    report_numbers = json.loads(reported.stdout)["recommendation"]
    assert size_numbers["batch_limit"] != "given"
    assert report_numbers["step_time_s"] <= 6e-3
    for key, value in report_numbers.items():
        assert size_numbers[key] == value, key


def test_bundled_trace_is_the_default(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, tmp_path: Path
) -> None:
    """Without --trace the report describes the bundled Azure conversation sample."""
    out = tmp_path / "bundled.html"
    result = run_cli(
        "report",
        "--coeffs",
        coeffs_file,
        "--batch",
        "64",
        "--sim-steps",
        "500",
        "-o",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    workload = parse_report(out.read_text(encoding="utf-8")).json_blocks["report-data"]["workload"]
    assert workload["n_requests"] == 19_366
    assert workload["source"].endswith("azure_conv_2023.csv.gz")


@pytest.mark.parametrize(
    ("relative", "readme_theta"),
    [
        ("azure_llm_2023/AzureLLMInferenceTrace_code.csv", 2130.4),
        ("dataset_length_stats/sharegpt_8k_filtered_stats_llama2_tokenizer.csv", 2690.9),
    ],
)
def test_real_traces_match_the_published_theta(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, tmp_path: Path, relative: str, readme_theta: float
) -> None:
    """On the shared real traces the page's θ is the traces README's, and a trace without
    timestamps gets no θ-over-time figure."""
    trace = require_shared(TRACES / relative)
    out = tmp_path / "real.html"
    args = ["--coeffs", coeffs_file, "--trace", trace, "--batch", "64", "--sim-steps", "0"]
    result = run_cli("report", *args, "-o", out)
    assert result.exit_code == 0, result.stderr
    page = parse_report(out.read_text(encoding="utf-8"))
    theta = page.json_blocks["report-data"]["workload"]["theta_tokens"]
    assert theta == pytest.approx(readme_theta, rel=REL_TOL_README_THETA)
    assert ("theta-windows" in page.figures) == relative.startswith("azure")


def test_size_report_flag_writes_the_same_recommendation(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, trace_file: Path, tmp_path: Path
) -> None:
    """`size --report FILE` writes the page, and its numbers are the ones `size --json` prints."""
    out = tmp_path / "sized.html"
    sized = run_cli(
        "size", "--coeffs", coeffs_file, "--trace", trace_file, "--batch", "32",
        "--report", out, "--json",
    )  # fmt: skip
    assert sized.exit_code == 0, sized.stderr
    numbers = json.loads(sized.stdout)
    page = parse_report(out.read_text(encoding="utf-8"))
    shown = page.json_blocks["report-data"]["recommendation"]
    assert shown, "the page carries no recommendation"
    for key, value in shown.items():
        assert numbers[key] == value, key
    # What size prints besides r and B: per-GPU throughput, the bundle, the deployment, p99.
    printed = {"throughput_per_gpu", "gpus_per_bundle", "tpot_p99_s", "attn_gpus", "ffn_gpus"}
    printed |= {"attn_parallel", "ffn_parallel", "microbatches", "pipeline", "kv_dtype"}
    assert printed <= set(shown)
    bundle = numbers["r_int"] * numbers["attn_gpus"] + numbers["ffn_gpus"]
    assert page.cards["gpus_per_bundle"] == str(bundle)
    assert float(page.cards["throughput_per_gpu"]) == numbers["throughput_per_gpu"]


def test_size_report_sizes_once(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, trace_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One `size --report` run sizes once: one recommend, one worker-load draw per B (the
    report's curves reuse the sizing's), and θ estimated once for the workload plus once per
    time window of the θ-over-time figure."""
    import afdsizer.report._build as build
    import afdsizer.theory._deploy as deploy
    import afdsizer.workload._workload as workload_module

    calls: dict[str, list[object]] = {"recommend": [], "loads": [], "theta": []}

    def spy(name: str, module: object, attr: str) -> None:
        real = getattr(module, attr)

        def wrapper(*args: object, **kwargs: object) -> object:
            calls[name].append(kwargs.get("batch"))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, attr, wrapper)

    spy("recommend", deploy, "recommend_deployment")
    spy("loads", workload_module, "sample_worker_loads")
    spy("theta", workload_module, "estimate_slot_load")
    spy("theta", build, "estimate_slot_load")
    out = tmp_path / "once.html"
    result = run_cli(
        "size", "--coeffs", coeffs_file, "--trace", trace_file, "--report", out, "--json"
    )
    assert result.exit_code == 0, result.stderr
    batch = json.loads(result.stdout)["batch"]
    assert len(calls["recommend"]) == 1
    assert calls["loads"] == [batch]
    windows = parse_report(out.read_text(encoding="utf-8")).json_blocks["fig-theta-windows-data"]
    assert len(calls["theta"]) == 1 + sum(n >= 30 for n in windows["n_requests"])
