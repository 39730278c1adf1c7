"""`afdsizer size`: defaults run, JSON keys, explicit inputs, one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.conftest import REL_TOL_README_THETA, TRACES, require_shared

from afdsizer._commands._common import DEFAULT_HARDWARE, DEFAULT_MODEL

JSON_KEYS = {
    "r_star",
    "r_star_mean_field",
    "r_int",
    "regime",
    "r_attention",
    "r_communication",
    "r_peak",
    "batch",
    "throughput_per_instance",
    "step_time_s",
    "attention_idle",
    "ffn_idle",
    "barrier_overhead",
    "theta",
    "t_attn_s",
    "t_comm_s",
    "t_ffn_s",
    "slot_load_std",
    "rounding_loss",
    "ratio_table",
}

COEFFS = {
    "alpha_attn_s": 1e-3,
    "beta_attn_s_per_token": 1e-8,
    "alpha_comm_s": 1e-4,
    "beta_comm_s_per_token": 1e-7,
    "alpha_ffn_s": 5e-4,
    "beta_ffn_s_per_token": 1e-6,
}


@pytest.fixture
def coeffs_file(tmp_path: Path) -> Path:
    path = tmp_path / "coeffs.json"
    path.write_text(json.dumps({**COEFFS, "kv_capacity_tokens": 150_000}))
    return path


def test_defaults_run_and_json_has_contract_keys(run_cli) -> None:  # type: ignore[no-untyped-def]
    """`size --json` with no inputs uses the bundled trace and the default presets."""
    result = run_cli("size", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert set(payload) >= JSON_KEYS
    assert payload["regime"] in {"attention", "communication", "ffn"}
    assert payload["r_int"] >= 1 and payload["batch"] >= 1
    # θ of the Azure conversation trace, as the traces README prints it.
    assert payload["theta"] == pytest.approx(1226.5, rel=REL_TOL_README_THETA)
    assert "azure_conv" in payload["workload_source"]
    assert DEFAULT_MODEL in payload["coefficients"]["source"]
    assert DEFAULT_HARDWARE in payload["coefficients"]["source"]
    assert payload["kv_load_quantile_tokens"] <= payload["coefficients"]["kv_capacity_tokens"]


def test_defaults_print_a_readable_table(run_cli) -> None:  # type: ignore[no-untyped-def]
    """Plain `size` prints r, B, the regime, times in ms and the Λ(r) table."""
    result = run_cli("size")
    assert result.exit_code == 0, result.stderr
    for fragment in (
        "Attention instances per FFN",
        "slots per Attention",
        "regime",
        "(ms)",
        "Λ(r)",
    ):
        assert fragment in result.stdout


def test_theta_and_coeffs_hand_worked(run_cli, coeffs_file: Path) -> None:  # type: ignore[no-untyped-def]
    """--theta 1000 --slot-load-std 0 --batch 100 on the hand-worked coefficients gives r = 15."""
    result = run_cli(
        "size", "--theta", "1000", "--slot-load-std", "0", "--coeffs", coeffs_file,
        "--batch", "100", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["r_int"] == 15
    assert payload["regime"] == "attention"
    assert payload["step_time_s"] == pytest.approx(2e-3)
    assert payload["batch_limit"] == "given"


def test_yaml_coeffs_tpot_and_prices(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A YAML coefficient file, --tpot-ms and prices reach the recommendation."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**COEFFS, "kv_capacity_tokens": 150_000}))
    result = run_cli(
        "size", "--theta", "1000", "--slot-load-std", "700", "--coeffs", path,
        "--tpot-ms", "2.2", "--price-attn", "2", "--price-ffn", "6", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["tpot_target_s"] == pytest.approx(2.2e-3)
    assert payload["step_time_s"] <= 2.2e-3
    assert payload["objective"] == "tokens_per_dollar"
    assert payload["tokens_per_dollar"] > 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--batch", "0"), "'--batch': Input should be greater than or equal to 1"),
        (("--batch", "1000"), "the largest batch that fits is"),
        (("--theta", "1000"), "--theta and --slot-load-std go together"),
        (("--theta", "0", "--slot-load-std", "1"), "theta_tokens (θ, mean slot load)"),
        (("--theta", "1", "--slot-load-std", "-1"), "slot_load_std_tokens"),
        (("--tpot-ms", "0"), "--tpot-ms must be a finite number > 0 ms, got 0.0"),
        (("--price-attn", "2"), "price_attn_per_h and price_ffn_per_h go together"),
        (("--kv-quantile", "1.5"), "kv_quantile must lie in [0.5, 1), got 1.5"),
        (("--model", "llama-3.1-8b"), "--coeffs excludes --model"),
    ],
)
def test_bad_input_is_one_line_exit_2(  # type: ignore[no-untyped-def]
    run_cli, coeffs_file: Path, args: tuple[str, ...], fragment: str
) -> None:
    """Bad options give exit 2 and one stderr line with the parameter, rule and value."""
    extra: tuple[str, ...] = ()
    if "--theta" not in args:
        extra = ("--theta", "1000", "--slot-load-std", "700")
    result = run_cli("size", "--coeffs", coeffs_file, *extra, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_trace_excludes_theta(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--trace together with --theta is refused."""
    result = run_cli("size", "--trace", tmp_path / "t.csv", "--theta", "10", "--slot-load-std", "1")
    assert result.exit_code == 2
    assert "give one workload: --trace or --theta" in result.stderr


def test_real_trace_option(run_cli, coeffs_file: Path) -> None:  # type: ignore[no-untyped-def]
    """--trace on the Azure code trace gives its README θ and a recommendation for it."""
    trace = require_shared(TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv")
    result = run_cli("size", "--trace", trace, "--coeffs", coeffs_file, "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["theta"] == pytest.approx(2130.4, rel=REL_TOL_README_THETA)
    assert "AzureLLMInferenceTrace_code.csv" in payload["workload_source"]
    assert payload["batch_limit"] == "kv_capacity"


def test_barrier_model_default_and_choice(run_cli) -> None:  # type: ignore[no-untyped-def]
    """With a trace the empirical barrier is the default; --barrier gaussian is the Gaussian r*."""
    emp = run_cli("size", "--json")
    gauss = run_cli("size", "--barrier", "gaussian", "--json")
    assert emp.exit_code == 0 and gauss.exit_code == 0, emp.stderr + gauss.stderr
    p_emp, p_gauss = json.loads(emp.stdout), json.loads(gauss.stdout)
    assert (p_emp["barrier_model"], p_gauss["barrier_model"]) == ("empirical", "gaussian")
    assert p_gauss["r_star"] == p_gauss["r_star_gaussian"]
    assert p_emp["r_star_gaussian"] == pytest.approx(p_gauss["r_star"], rel=1e-12)
    assert p_emp["batch"] == p_gauss["batch"]


def test_theta_allows_only_gaussian(run_cli, coeffs_file: Path) -> None:  # type: ignore[no-untyped-def]
    """--theta/--slot-load-std has no trace to sample: Gaussian by default, empirical refused."""
    args = ("size", "--theta", "1000", "--slot-load-std", "700", "--coeffs", coeffs_file)
    ok = run_cli(*args, "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["barrier_model"] == "gaussian"
    bad = run_cli(*args, "--barrier", "empirical")
    assert bad.exit_code == 2
    assert "the empirical barrier needs a trace" in bad.stderr
    wrong = run_cli(*args, "--barrier", "normal")
    assert (
        wrong.exit_code == 2 and "barrier must be one of auto, empirical, gaussian" in wrong.stderr
    )


@pytest.mark.parametrize("microbatches", ["1", "2", "3"])
def test_deployment_json_keeps_its_identities(run_cli, coeffs_file: Path, microbatches) -> None:  # type: ignore[no-untyped-def]
    """--isl/--osl with microbatches and DP attention: per-GPU × GPUs = r·B/τ, keys present."""
    result = run_cli(
        "size", "--coeffs", coeffs_file, "--isl", "1000", "--osl", "200",
        "--microbatches", microbatches, "--layers", "32", "--attn-gpus", "2",
        "--attn-parallel", "dp", "--ffn-gpus", "4", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= JSON_KEYS
    assert out["gpus_per_bundle"] == 2 * out["r_int"] + 4
    assert out["throughput_per_gpu"] * out["gpus_per_bundle"] == pytest.approx(
        out["r_int"] * out["batch"] / out["step_time_s"], rel=1e-12
    )
    assert out["microbatches"] == int(microbatches) and out["kv_dtype"] == "bf16"
    assert out["deployment"]["attn_parallel"] == "dp"
    assert out["tpot_p99_s"] >= out["step_time_s"] * (1 - 1e-9) or int(microbatches) > 1
    for row in out["ratio_table"]:
        assert row["throughput_per_gpu"] * row["gpus"] == pytest.approx(
            row["ratio"] * out["batch"] / row["step_time_s"], rel=1e-12
        )


def test_microbatches_need_layers_with_a_coefficient_file(run_cli, coeffs_file: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("size", "--coeffs", coeffs_file, "--theta", "900", "--slot-load-std", "0",
                     "--microbatches", "2")  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "give --layers" in result.stderr


def test_tail_target_caps_the_ratio(run_cli, coeffs_file: Path) -> None:  # type: ignore[no-untyped-def]
    """--tpot-p99-ms just below the free answer's p99 step: a smaller r that meets it."""
    base = ("size", "--coeffs", coeffs_file, "--isl", "1500", "--osl", "500", "--batch", "16")
    free = json.loads(run_cli(*base, "--json").stdout)
    target_ms = free["tpot_p99_s"] * 1e3 * (1 - 1e-6)
    out = json.loads(run_cli(*base, "--tpot-p99-ms", f"{target_ms:.9f}", "--json").stdout)
    assert out["r_int"] < free["r_int"]
    assert out["tpot_p99_s"] * 1e3 <= target_ms
    assert all(row["meets_tpot"] == (row["ratio"] <= out["r_int"]) for row in out["ratio_table"])
