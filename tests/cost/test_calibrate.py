"""Calibration on the measured H100/H200 tables (shared/calibration) and on an unseen GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.cost._calibration_data import shared_gpu

from afdsizer.cost import cost_coefficients, load_coefficients, load_model_spec
from afdsizer.cost._calibrate import calibrate, write_profile
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._silicon import StepMeasurements, read_silicon
from afdsizer.errors import DataFileError, InputError

FIT_MEDIAN_REL_TOL = 0.10
"""Issue 3: fitted coefficients reproduce the rows they were fitted on within 10% (median)."""
COMM_FIT_MEDIAN_REL_TOL = 0.15
"""NCCL latency is flat below ~64k elements and linear above: a line fits it less well."""
FIT_MAX_REL_TOL = 0.50
"""Worst point of a fit: GEMMs turning compute-bound, MLA projections growing with B."""

CASES = [
    ("llama-3.1-8b", 1, 1),  # dense GQA
    ("qwen3-30b-a3b", 1, 1),  # MoE
    ("deepseek-v3", 1, 16),  # MLA + MoE with shared experts and dense layers
]
"""(model, g_A, g_F). DeepSeek-V3's FP8 weights (~671 GB) need 16 H100s on the FFN side."""


def _gpu(name: str) -> Path:
    return shared_gpu(name)


def _row_ms(path: str, **eq: object) -> float:
    """Median latency (ms) of the raw parquet rows matching ``eq`` exactly."""
    lf = pl.scan_parquet(path)
    for col, value in eq.items():
        lf = lf.filter(pl.col(col) == value)
    df = lf.select("latency").collect()
    assert df.height > 0, eq
    return float(df["latency"].median())  # type: ignore[arg-type]


def _fit_at(c_attn: tuple[float, float], x: float) -> float:
    return c_attn[0] + c_attn[1] * x


@pytest.mark.parametrize("gpu", ["h100_sxm", "h200_sxm"])
@pytest.mark.parametrize(("model", "attn_gpus", "ffn_gpus"), CASES)
def test_fit_reproduces_measured_rows(gpu: str, model: str, attn_gpus: int, ffn_gpus: int) -> None:
    """Median relative error of the fit over the rows it was fitted on is <= 10%."""
    result = calibrate(model=model, silicon=_gpu(gpu), attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
    fit = result.fit
    assert fit["attention_fit_median_rel_error"] <= FIT_MEDIAN_REL_TOL
    assert fit["ffn_fit_median_rel_error"] <= FIT_MEDIAN_REL_TOL
    assert fit["comm_fit_median_rel_error"] <= COMM_FIT_MEDIAN_REL_TOL
    assert fit["attention_fit_max_rel_error"] <= FIT_MAX_REL_TOL
    assert fit["ffn_fit_max_rel_error"] <= FIT_MAX_REL_TOL
    assert fit["n_points"]["attention"] >= 10 and fit["n_points"]["ffn"] >= 10
    # Recompute the reported error independently from the measurements and coefficients.
    meas = read_silicon(_gpu(gpu), load_model_spec(model), attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
    c = result.coefficients
    N = meas.ffn_tokens
    sel = (N >= 128) & (N <= 4096)
    rel = np.abs(c.ffn_time_s(N[sel]) - meas.ffn_time_s[sel]) / meas.ffn_time_s[sel]
    assert float(np.median(rel)) == pytest.approx(fit["ffn_fit_median_rel_error"], rel=1e-9)
    assert result.device.startswith("NVIDIA H")
    assert result.hardware == {"h100_sxm": "h100-sxm", "h200_sxm": "h200"}[gpu]


def test_deployment_that_does_not_fit_is_refused() -> None:
    """8 x H100 cannot hold DeepSeek-V3's FFN weights: one line naming the GPUs that would."""
    with pytest.raises(InputError, match=r"deepseek-v3 \(fp8\).*8 x h100-sxm.*--ffn-gpus 10"):
        calibrate(model="deepseek-v3", silicon=_gpu("h100_sxm"), attn_gpus=1, ffn_gpus=8)


def test_dense_point_composed_by_hand_from_raw_rows() -> None:
    """Llama-3.1-8B, B=64, 4095 cached: 32 x (FA3 + qkv + o GEMMs) + LM head, from raw rows."""
    root = _gpu("h100_sxm")
    attn = str(next(root.glob("attention/*/*/*.parquet")))
    gemm = str(next(root.glob("gemm/*/*/*.parquet")))
    bf16 = {"gemm_dtype": "bfloat16", "kernel_source": "torch.nn.functional.linear"}
    kernel = _row_ms(
        attn,
        batch_size=64,
        step=4095,
        num_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        window_size=0,
        kv_cache_dtype="bfloat16",
        kernel_source="vllm_flash_attn_fa3",
    )
    qkv = _row_ms(gemm, m=64, n=(32 + 2 * 8) * 128, k=4096, **bf16)
    o = _row_ms(gemm, m=64, n=4096, k=4096, **bf16)
    # LM head 128256 x 4096 is not in the table: the nearest shape, scaled by n·k.
    lm = _row_ms(gemm, m=64, n=65536, k=4096, **bf16) * 128_256 / 65_536
    expected_s = (32 * (kernel + qkv + o) + lm) * 1e-3
    meas = read_silicon(root, load_model_spec("llama-3.1-8b"))
    i = np.flatnonzero((meas.attention_batch == 64) & (meas.attention_load_tokens == 64 * 4096))
    assert meas.attention_time_s[i[0]] == pytest.approx(expected_s, rel=1e-9)
    c = calibrate(model="llama-3.1-8b", silicon=root).coefficients
    assert c.attention_time_s(64 * 4096) == pytest.approx(expected_s, rel=FIT_MEDIAN_REL_TOL)


def test_moe_point_composed_by_hand_from_raw_rows() -> None:
    """Qwen3-30B-A3B, N=512: 48 layers x one fused MoE call (128 experts, top-8); the default
    rows are the power-law (α = 1.2) ones, as the roofline's default routing."""
    root = _gpu("h200_sxm")
    moe = str(next(root.glob("moe/*/*/*.parquet")))
    one = _row_ms(
        moe,
        num_tokens=512,
        hidden_size=2048,
        inter_size=768,
        topk=8,
        num_experts=128,
        moe_tp_size=1,
        moe_ep_size=1,
        distribution="power_law_1.2",
        moe_dtype="bfloat16",
        kernel_source="vllm_unquantizedfusedmoe_triton_tritonexperts",
    )
    meas = read_silicon(root, load_model_spec("qwen3-30b-a3b"))
    assert meas.ffn_time_s[meas.ffn_tokens == 512][0] == pytest.approx(48 * one * 1e-3, rel=1e-9)
    c = calibrate(model="qwen3-30b-a3b", silicon=root, ffn_gpus=1).coefficients
    assert c.ffn_time_s(512) == pytest.approx(48 * one * 1e-3, rel=FIT_MEDIAN_REL_TOL)


def test_mla_point_composed_by_hand_from_raw_rows() -> None:
    """DeepSeek-V3, B=64, 4096 cached: 61 fp8 MLA module calls + the LM head, which stays bf16."""
    root = _gpu("h100_sxm")
    mla = str(next(root.glob("mla/*/*/*.parquet")))
    gemm = str(next(root.glob("gemm/*/*/*.parquet")))
    module = _row_ms(
        mla,
        batch_size=64,
        step=4096,
        num_heads=128,
        kv_cache_dtype="bfloat16",
        gemm_type="fp8_block",
        kernel_source="FLASH_ATTN_MLA",
    )
    bf16 = {"gemm_dtype": "bfloat16", "kernel_source": "torch.nn.functional.linear"}
    lm = _row_ms(gemm, m=64, n=65536, k=7168, **bf16) * 129_280 / 65_536
    meas = read_silicon(root, load_model_spec("deepseek-v3"), ffn_gpus=8)
    i = np.flatnonzero((meas.attention_batch == 64) & (meas.attention_load_tokens == 64 * 4097))
    assert meas.attention_time_s[i[0]] == pytest.approx((61 * module + lm) * 1e-3, rel=1e-9)


def test_roofline_agrees_with_measured_fit_on_attention() -> None:
    """The roofline's α_A and β_A for Llama-3.1-70B on H100 are within 30% of the H100 fit."""
    fitted = calibrate(model="llama-3.1-70b", silicon=_gpu("h100_sxm")).coefficients
    roof = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm")
    assert roof.alpha_attn_s == pytest.approx(fitted.alpha_attn_s, rel=0.3)
    assert roof.beta_attn_s_per_token == pytest.approx(fitted.beta_attn_s_per_token, rel=0.3)


def _copy_subset(src: Path, dst: Path, scale: float) -> None:
    """A GPU folder the code has never seen: bf16 rows only, latencies scaled by ``scale``."""
    keep = {
        "attention": pl.col("num_heads") == 32,
        "gemm": pl.col("gemm_dtype") == "bfloat16",
        "comm": pl.col("op_name") == "alltoall",
    }
    for table, cond in keep.items():
        path = next(src.glob(f"{table}/*/*/*.parquet"))
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True)
        df = pl.scan_parquet(path).filter(cond).collect()
        df = df.with_columns(pl.col("latency") * scale, pl.lit("Mystery GPU").alias("device"))
        df.write_parquet(out)


def test_unseen_gpu_calibrates_the_same_way(tmp_path: Path) -> None:
    """A new folder (subset of H200 rows, 1.7x slower) fits α, β exactly 1.7x H200's."""
    src = _gpu("h200_sxm")
    new = tmp_path / "mystery_gpu"
    _copy_subset(src, new, scale=1.7)
    ref = calibrate(model="llama-3.1-8b", silicon=src)
    got = calibrate(model="llama-3.1-8b", silicon=new)
    for key in (
        "alpha_attn_s",
        "beta_attn_s_per_token",
        "alpha_comm_s",
        "beta_comm_s_per_token",
        "alpha_ffn_s",
        "beta_ffn_s_per_token",
    ):
        assert getattr(got.coefficients, key) == pytest.approx(
            1.7 * getattr(ref.coefficients, key), rel=1e-6
        ), key
    assert got.fit["ffn_fit_median_rel_error"] == pytest.approx(ref.fit["ffn_fit_median_rel_error"])
    assert got.device == "Mystery GPU"
    assert got.hardware is None and got.coefficients.kv_capacity_tokens is None
    path = tmp_path / "profile.yaml"
    write_profile(got, path)
    assert load_coefficients(path) == got.coefficients.__class__.from_mapping(
        got.coefficients.to_dict(), source=str(path)
    )
    # With --hardware the KV capacity comes back.
    with_hw = calibrate(model="llama-3.1-8b", silicon=new, hardware="h200")
    assert with_hw.coefficients.kv_capacity_tokens == pytest.approx(
        cost_coefficients(model="llama-3.1-8b", hardware="h200").kv_capacity_tokens
    )


def test_calibration_errors(tmp_path: Path) -> None:
    """Missing tables, absent kernels, impossible shapes and empty ranges are InputErrors."""
    root = _gpu("h100_sxm")
    with pytest.raises(InputError, match="exactly one of --silicon DIR or --profile-csv"):
        calibrate(model="llama-3.1-8b")
    with pytest.raises(DataFileError, match="is not a directory"):
        calibrate(model="llama-3.1-8b", silicon=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match=r"has no gemm/\*/\*/gemm_perf.parquet"):
        calibrate(model="llama-3.1-8b", silicon=tmp_path / "empty")
    with pytest.raises(InputError, match="kernel_source 'fa9' has no attention kv bfloat16 rows"):
        calibrate(model="llama-3.1-8b", silicon=root, attention_kernel="fa9")
    with pytest.raises(InputError, match=r"no MoE rows for qwen3-30b-a3b .* ffn_gpus = 3"):
        calibrate(model="qwen3-30b-a3b", silicon=root, ffn_gpus=3)
    with pytest.raises(InputError, match="attn_gpus=3 must divide the 32 attention heads"):
        calibrate(model="llama-3.1-8b", silicon=root, attn_gpus=3)
    with pytest.raises(InputError, match=r"no ffn_gemm kernel has measured rows covering the fit"):
        calibrate(
            model="llama-3.1-8b",
            silicon=root,
            fitter=CostFitter(ffn_tokens_range=(100_000, 200_000)),
        )


def test_fitter_follows_estimator_rules() -> None:
    """fit returns self; fitted attributes end in _; unfitted use is an error."""
    fitter = CostFitter(attention_context_range=(1, 1e9), comm_batch_range=(1, 1e9))
    with pytest.raises(InputError, match="not fitted"):
        fitter.coefficients()
    L = np.array([1e3, 1e4, 1e5])
    m = StepMeasurements(
        attention_batch=np.full(3, 64.0),
        attention_load_tokens=L,
        attention_time_s=2e-3 + 3e-8 * L,
        ffn_tokens=np.array([128.0, 1024.0]),
        ffn_time_s=np.array([1e-3, 2e-3]),
    )
    assert fitter.fit(m) is fitter
    assert fitter.alpha_attn_s_ == pytest.approx(2e-3) and fitter.comm_fit_median_rel_error_ is None
    with pytest.raises(InputError, match="no communication points"):
        fitter.coefficients()
