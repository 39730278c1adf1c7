"""Issue 12's grid: every preset model on the full H100 and H200 tables (../shared).

Calibration picks the checkpoint's dtype per part by itself, and no fitted coefficient lies more
than 4x from the roofline of the same deployment without a warning. The fused-MoE curve
reproduces the measured rows and extrapolates from N <= 2,048 to N >= 8,192.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
import pytest
from tests.cost._calibration_data import shared_gpu

from afdsizer.cost import MODEL_PRESETS, load_model_spec
from afdsizer.cost._calibrate import calibrate
from afdsizer.cost._crosscheck import ROOFLINE_RATIO_WARN
from afdsizer.cost._moe_curve import fit_expert_curve
from afdsizer.cost._silicon import read_silicon

GPUS = ["h100_sxm", "h200_sxm"]
DEPLOYMENTS: dict[str, tuple[int, int, str]] = {
    "deepseek-v3": (8, 16, "fp8"),  # the disagreement of issue 12
    "llama-3.1-70b": (4, 8, "bf16"),
    "qwen3-235b-a22b": (4, 8, "bf16"),
}
"""(attn_gpus, ffn_gpus, kv_dtype) per preset; others run 1 Attention GPU and one 8-GPU node."""
MOE_MEDIAN_TOL = 0.10
MOE_EXTRAPOLATION_TOL = 0.15
KNOWN_MISSES = {
    ("h200_sxm", "mixtral-8x7b", "balanced", "median"): "10.5%: one local expert, tile staircase",
    ("h200_sxm", "mixtral-8x7b", "balanced", "extrapolation"): "25%: the same staircase",
    ("h100_sxm", "qwen3-235b-a22b", "power_law_1.2", "extrapolation"): "16%",
    ("h100_sxm", "qwen3-235b-a22b", "power_law_1.01", "extrapolation"): "17%",
}
"""Measured misses of the curve (docs/calibration.md lists every case); strict xfails."""


def _checkpoint_dtype(model: str) -> str:
    """The table dtype a preset's config.json implies, read here independently of afdsizer."""
    text = resources.files("afdsizer.cost").joinpath(f"presets/models/{model}.json").read_text()
    quant = json.loads(text).get("quantization_config") or {}
    if str(quant.get("quant_method", "")).lower() != "fp8":
        return "bfloat16"
    return "fp8_block" if quant.get("weight_block_size") else "fp8"


def _deployment(model: str) -> dict[str, Any]:
    attn, ffn, kv = DEPLOYMENTS.get(model, (1, 8, "bf16"))
    return {"attn_gpus": attn, "ffn_gpus": ffn, "kv_dtype": kv}


@pytest.mark.parametrize("gpu", GPUS)
@pytest.mark.parametrize("model", MODEL_PRESETS)
def test_checkpoint_dtypes_and_no_silent_roofline_disagreement(gpu: str, model: str) -> None:
    """Per part: the checkpoint's dtype (LM head bf16); every ratio beyond 4x is a warning."""
    result = calibrate(model=model, silicon=shared_gpu(gpu), **_deployment(model))
    expected = _checkpoint_dtype(model)
    parts = {f["part"]: f for f in result.fits}
    ffn_parts = ["moe"] if load_model_spec(model).is_moe else []
    ffn_parts += ["ffn_gemm"] if "ffn_gemm" in parts else []
    assert ffn_parts
    for part in ffn_parts:
        assert parts[part]["dtype"] == expected, part
    if "attn_gemm" in result.filters:
        assert result.filters["attn_gemm"]["dtype"] == expected
    if load_model_spec(model).is_mla:
        assert result.filters["attention"]["gemm_type"] == expected
    assert result.filters["lm_head"]["dtype"] == "bfloat16"
    checked = 0
    for entry in result.fits:
        for key, ratio in (entry["ratio_to_roofline"] or {}).items():
            checked += 1
            outside = not 1 / ROOFLINE_RATIO_WARN <= ratio <= ROOFLINE_RATIO_WARN
            warned = any(w.startswith(f"{entry['part']}: {key} = ") for w in result.warnings)
            assert warned == outside, (entry["part"], key, ratio)
            assert (f"{entry['part']}: {key} = " in " ".join(entry["warnings"])) == outside
    assert checked >= 7  # α/β of attention, FFN and communication, the projections' fixed time


def test_deepseek_v3_disagreement_is_reported() -> None:
    """Issue 12's case: β_F tens of times the roofline's, and the calibration says so."""
    result = calibrate(
        model="deepseek-v3", silicon=shared_gpu("h200_sxm"), **_deployment("deepseek-v3")
    )
    ffn = next(f for f in result.fits if f["part"] == "ffn")
    assert ffn["ratio_to_roofline"]["beta_ffn_s_per_token"] > 10
    assert ffn["kernel_source"] == "vllm_fp8moe_flashinfer_cutlass_flashinferexperts"
    assert result.filters["moe"]["moe_ep_size"] == 16
    assert any(w.startswith("ffn: beta_ffn_s_per_token") for w in result.warnings)


MOE_CASES = [
    (gpu, model, routing)
    for gpu in GPUS
    for model in MODEL_PRESETS
    if load_model_spec(model).is_moe
    for routing in ("balanced", "power_law_1.2", "power_law_1.01")
]


def _moe_case(gpu: str, model: str, routing: str, what: str) -> Any:
    reason = KNOWN_MISSES.get((gpu, model, routing, what))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(gpu, model, routing, marks=marks, id=f"{gpu}-{model}-{routing}")


@pytest.mark.parametrize(("gpu", "model", "routing"), [_moe_case(*c, "median") for c in MOE_CASES])
def test_moe_curve_reproduces_the_measured_rows(gpu: str, model: str, routing: str) -> None:
    """Median relative error of the curve over all MoE rows (N = 1 … 16,384) is <= 10%."""
    N, t, curve = _fit_moe(gpu, model, routing, max_tokens=None)
    assert float(np.median(np.abs(curve.time_s(N) - t) / t)) <= MOE_MEDIAN_TOL


@pytest.mark.parametrize(
    ("gpu", "model", "routing"), [_moe_case(*c, "extrapolation") for c in MOE_CASES]
)
def test_moe_curve_extrapolates_past_the_fitted_rows(gpu: str, model: str, routing: str) -> None:
    """Fitted on N <= 2,048, the curve predicts the rows at N >= 8,192 within 15% (median)."""
    N, t, curve = _fit_moe(gpu, model, routing, max_tokens=2048)
    far = N >= 8192
    assert far.sum() >= 3
    assert float(np.median(np.abs(curve.time_s(N[far]) - t[far]) / t[far])) <= MOE_EXTRAPOLATION_TOL


def _fit_moe(gpu: str, model: str, routing: str, *, max_tokens: int | None) -> Any:
    dep = _deployment(model)
    meas = read_silicon(shared_gpu(gpu), load_model_spec(model), attn_gpus=dep["attn_gpus"],
                        ffn_gpus=dep["ffn_gpus"], moe_routing=routing)  # fmt: skip
    assert meas.moe_tokens is not None and meas.moe_call_time_s is not None and meas.moe_shape
    tokens, t, shape = meas.moe_tokens, meas.moe_call_time_s, meas.moe_shape
    use = tokens <= (max_tokens or np.inf)
    curve, _ = fit_expert_curve(
        tokens[use], t[use], part="moe", num_experts=int(shape["num_experts"]),
        experts_per_token=int(shape["experts_per_token"]), local_experts=shape["local_experts"],
    )  # fmt: skip
    return tokens, t, curve
