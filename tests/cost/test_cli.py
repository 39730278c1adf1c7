"""`afdsizer cost`, `calibrate` and `profile`: JSON keys, files, exit status 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.cost._calibration_data import SAMPLE_H200

from afdsizer.cost import cost_coefficients, load_coefficients

DATA = Path(__file__).parent / "data"
REQUIRED_COST_KEYS = {
    "kv_bytes_per_token",
    "alpha_attn_s",
    "beta_attn_s_per_token",
    "alpha_comm_s",
    "beta_comm_s_per_token",
    "alpha_ffn_s",
    "beta_ffn_s_per_token",
    "kv_capacity_tokens",
}


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_cost_json_defaults(run_cli: Any) -> None:
    """`cost --json` with no options: Llama-3.1-70B on H100, the documented keys and values."""
    data = _json(run_cli("cost", "--json"))
    assert set(data) >= REQUIRED_COST_KEYS
    api = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm")
    assert data["alpha_attn_s"] == api.alpha_attn_s
    assert data["kv_bytes_per_token"] == 327_680
    assert data["model"] == "llama-3.1-70b" and data["hardware"] == "h100-sxm"


def test_cost_options(run_cli: Any) -> None:
    """--kv-dtype fp8 halves the KV bytes; --attn-gpus/--ffn-gpus reach the roofline."""
    data = _json(
        run_cli(
            "cost", "--model", "deepseek-v3", "--hardware", "h200", "--kv-dtype", "fp8",
            "--attn-gpus", "2", "--ffn-gpus", "8", "--json",
        )
    )  # fmt: skip
    assert data["kv_bytes_per_token"] == 35_136
    api = cost_coefficients(
        model="deepseek-v3", hardware="h200", kv_dtype="fp8", attn_gpus=2, ffn_gpus=8
    )
    assert data["beta_ffn_s_per_token"] == api.beta_ffn_s_per_token
    assert data["ffn_weights_fit"] is True


def test_cost_human_output(run_cli: Any) -> None:
    """Without --json the coefficients print in ms/µs."""
    result = run_cli("cost", "--model", "llama-3.1-8b")
    assert result.exit_code == 0
    assert "α_A" in result.stdout and " ms" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "gpt-5"), "unknown model 'gpt-5'; known presets: deepseek-v3"),
        (("--hardware", "tpu"), "unknown hardware 'tpu'; known presets: h100-sxm"),
        (("--kv-dtype", "int4"), "--kv-dtype must be one of bf16, fp16, fp8, got 'int4'"),
        (("--attn-gpus", "0"), "(g_A, GPUs per Attention instance) must be an integer >= 1"),
        (("--link", "ib"), "--link must be auto, scale-up or scale-out"),
        (("--profile", "missing.yaml"), "cannot read coefficients file missing.yaml"),
    ],
)
def test_cost_errors_exit_2(run_cli: Any, args: tuple[str, ...], message: str) -> None:
    """Bad options give one line on stderr and exit status 2."""
    result = run_cli("cost", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_calibrate_then_cost_profile(run_cli: Any, tmp_path: Path) -> None:
    """`calibrate --json` reports the fit and writes profile.yaml; `cost --profile` reuses it."""
    silicon = SAMPLE_H200  # shipped rows: runs from a clone
    out = tmp_path / "profile.yaml"
    data = _json(
        run_cli("calibrate", "--silicon", silicon, "--model", "llama-3.1-8b", "-o", out, "--json")
    )
    for key in (
        "attention_fit_median_rel_error",
        "ffn_fit_median_rel_error",
        "attention_fit_max_rel_error",
        "ffn_fit_max_rel_error",
        "ranges_fitted",
        "filters",
    ):
        assert key in data
    assert data["filters"]["attention"]["kernel_source"] == "vllm_flash_attn_fa3"
    assert data["ranges_fitted"]["ffn_tokens"] == [128.0, 4096.0]
    fitted = load_coefficients(out)
    assert fitted.alpha_ffn_s == data["alpha_ffn_s"]
    again = _json(run_cli("cost", "--profile", out, "--json"))
    assert again["alpha_attn_s"] == data["alpha_attn_s"]
    assert again["model"] == "llama-3.1-8b" and again["profile"] == str(out)


def test_calibrate_ranges_and_errors(run_cli: Any, tmp_path: Path) -> None:
    """--ffn-range narrows the fit; bad sources and ranges exit 2."""
    silicon = SAMPLE_H200
    out = tmp_path / "p.yaml"
    data = _json(
        run_cli(
            "calibrate", "--silicon", silicon, "--model", "qwen3-30b-a3b", "-o", out,
            "--ffn-range", "256:2048", "--json",
        )
    )  # fmt: skip
    assert data["ranges_fitted"]["ffn_tokens"] == [256.0, 2048.0]
    bad = run_cli("calibrate", "--model", "llama-3.1-8b", "-o", out)
    assert bad.exit_code == 2 and "exactly one of --silicon DIR or --profile-csv" in bad.stderr
    bad = run_cli("calibrate", "--silicon", silicon, "-o", out, "--ffn-range", "a-b")
    assert bad.exit_code == 2 and "--ffn-range must be LOW:HIGH" in bad.stderr


def test_profile_then_calibrate_csv(run_cli: Any, tmp_path: Path) -> None:
    """`profile --json` on the CPU writes the CSV that `calibrate --profile-csv` fits."""
    pytest.importorskip("torch")
    config = DATA / "tiny_llama.json"
    csv_path = tmp_path / "prof.csv"
    data = _json(
        run_cli(
            "profile", "--model", config, "-o", csv_path, "--batch-sizes", "1,4",
            "--context-tokens", "16,64", "--ffn-tokens", "8,32", "--repeats", "1",
            "--warmup", "0", "--json",
        )
    )  # fmt: skip
    assert data["rows"] == 6 and data["rows_by_kind"] == {"attention": 4, "ffn_dense": 2}
    assert csv_path.exists() and data["device"] == "cpu"
    out = tmp_path / "p.yaml"
    no_hw = run_cli("calibrate", "--profile-csv", csv_path, "--model", config, "-o", out)
    assert no_hw.exit_code == 2 and "give --hardware" in no_hw.stderr
    fit = _json(
        run_cli(
            "calibrate", "--profile-csv", csv_path, "--model", config, "--hardware", "h100-sxm",
            "-o", out, "--batch-range", "1:4", "--context-range", "1:100", "--ffn-range", "1:64",
            "--json",
        )
    )  # fmt: skip
    assert fit["comm_source"] == "roofline (h100-sxm)" and out.exists()
    bad = run_cli("profile", "--model", config, "-o", csv_path, "--batch-sizes", "1,x")
    assert bad.exit_code == 2 and "--batch-sizes must be comma-separated integers" in bad.stderr


def test_cost_deployment_flags_json(run_cli: Any) -> None:
    """The deployment flags reach the roofline; --json shows dtypes, parallelism, per-GPU
    memory on both sides and the layers."""
    from afdsizer.cost import load_model_spec
    from afdsizer.deployment import Deployment

    data = _json(
        run_cli(
            "cost", "--model", "qwen3-235b-a22b-fp8", "--hardware", "h200", "--attn-gpus", "8",
            "--attn-parallel", "dp", "--ffn-gpus", "8", "--context-tokens", "1100", "--json",
        )
    )  # fmt: skip
    spec = load_model_spec("qwen3-235b-a22b-fp8")
    api = cost_coefficients(
        model=spec, hardware="h200", deployment=Deployment(attn_gpus=8, attn_parallel="dp")
    )
    assert data["alpha_attn_s"] == api.alpha_attn_s and data["layers"] == 94
    assert (data["weight_dtype"], data["quantization"], data["kv_dtype"]) == (
        "fp8",
        "fp8_block",
        "bf16",
    )
    assert (data["attn_parallel"], data["ffn_parallel"], data["workers_per_instance"]) == (
        "dp",
        "ep",
        8,
    )
    assert data["attn_weight_bytes_per_gpu"] == spec.attention_weight_bytes  # a full copy
    assert data["ffn_weight_bytes_per_gpu"] < spec.ffn_weight_bytes / 7
    assert data["attn_usable_bytes_per_gpu"] == data["ffn_usable_bytes_per_gpu"] == 141e9 * 0.9
    assert data["kv_capacity_tokens"] == 611_432 and data["max_batch_per_worker"] == 555
    # --weight-dtype fp8 on the bf16 checkpoint gives the FP8 checkpoint's bytes.
    online = _json(
        run_cli(
            "cost", "--model", "qwen3-235b-a22b", "--hardware", "h200", "--weight-dtype", "fp8",
            "--json",
        )
    )  # fmt: skip
    assert online["weight_dtype"] == "fp8" and online["quantization"] == "fp8"
    assert online["ffn_weight_bytes"] == spec.ffn_weight_bytes


def test_cost_fp8_config_json(run_cli: Any, tmp_path: Path) -> None:
    """An FP8 config.json gives FP8 weight bytes on the command line too."""
    cfg = json.loads((DATA / "tiny_llama.json").read_text())
    cfg["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    data = _json(run_cli("cost", "--model", path, "--json"))
    # 2 layers x (q, o 64·64 + k, v 64·32) at 1 byte + embedding and LM head 2·100·64 at 2.
    assert data["attention_weight_bytes"] == 2 * (2 * 64 * 64 + 2 * 64 * 32) + 2 * 100 * 64 * 2
    assert data["ffn_weight_bytes"] == 2 * 3 * 64 * 128
    assert data["weight_dtype"] == "fp8" and data["quantization"] == "fp8_block"


def test_cost_human_output_shows_deployment(run_cli: Any) -> None:
    """The table names the weight and KV dtypes, the parallelism and per-GPU memory."""
    result = run_cli("cost", "--model", "qwen3-235b-a22b-fp8", "--hardware", "h200")
    assert result.exit_code == 0
    for text in ("fp8 (fp8_block) / bf16", "Attention 1 tp, FFN 8 ep", "FFN GPU memory", "94"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--attn-parallel", "pp"), "--attn-parallel must be one of tp, dp, got 'pp'"),
        (("--ffn-parallel", "dp"), "--ffn-parallel must be one of auto, ep, tp, got 'dp'"),
        (("--weight-dtype", "int4"), "--weight-dtype must be one of bf16, fp16, fp8, got 'int4'"),
        (("--ffn-parallel", "ep"), "ffn_parallel ep needs routed experts; llama-3.1-70b is dense"),
        (("--context-tokens", "0"), "--context-tokens must be > 0 tokens"),
        (("--attn-gpus", "3"), "attn_gpus=3 must divide the 64 attention heads"),
        (
            ("--model", "qwen3-235b-a22b", "--ffn-gpus", "2"),
            "FFN weights of qwen3-235b-a22b (bf16) plus activations of 4096 tokens need",
        ),
        (
            ("--model", "llama-3.1-70b", "--hardware", "h20", "--weight-dtype", "bf16",
             "--ffn-gpus", "1"),
            "the smallest FFN instance that fits is --ffn-gpus 2",
        ),
    ],
)  # fmt: skip
def test_cost_deployment_errors_exit_2(run_cli: Any, args: tuple[str, ...], message: str) -> None:
    """Bad deployment flags and deployments that do not fit: one line, exit 2."""
    result = run_cli("cost", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cost_refuses_impossible_config(run_cli: Any, tmp_path: Path) -> None:
    """An HF config with 32 heads and 7 KV heads (issue 13, item 10) is refused in one line."""
    cfg = json.loads((DATA / "tiny_llama.json").read_text())
    cfg.update(num_attention_heads=32, num_key_value_heads=7, head_dim=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    result = run_cli("cost", "--model", path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"afdsizer: error: num_attention_heads 32 must be a multiple of num_key_value_heads 7 "
        f"({path})"
    )
