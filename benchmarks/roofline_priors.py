"""Fit the roofline's kernel priors (RooflineEfficiency defaults) to the measured tables.

Reads ``shared/calibration/aiconfigurator_silicon/{h100_sxm,h200_sxm}`` (vLLM 0.24.0 kernels,
NCCL 2.29.2; ``AFDSIZER_SHARED`` overrides the shared/ folder) and fits, with the very functions
the roofline uses (``afdsizer.cost._kernel_time``), on both GPUs at once in log error:

- GEMM (``torch.nn.functional.linear`` bf16 rows, m <= 4096): ``kernel_launch_s``,
  ``hbm_bandwidth_frac``, ``gemm_flops_frac``; on the FP8 per-tensor (Cutlass) rows, the rest
  fixed, ``fp8_activation_quant_s`` and ``fp8_gemm_flops_frac``; ``fp8_block_gemm_floor_s``
  is the median of vLLM's default block-FP8 kernel (DeepGemm) at m <= 1024.
- Decode attention (FlashAttention-3, full window, the presets' head shapes, B <= 512):
  ``attention_kernel_s``, ``attention_per_request_head_s``, ``attention_bandwidth_frac`` (bf16
  KV) and ``attention_fp8_kv_bandwidth_frac``.
- Fused MoE (the presets' expert shapes, EP 2-16, N = 16-8192, balanced rows; bf16 Triton and
  block-FP8 FlashInfer-Cutlass kernels) with the ``power_law_1.2`` rows (what aiconfigurator
  reads for Qwen3 MoE) in one fit: ``moe_kernel_s``, ``moe_bandwidth_frac``, ``moe_flops_frac``,
  ``moe_fp8_flops_frac``, ``moe_half_rate_expert_params``, ``moe_power_law_slowdown``.
- NCCL all-gather and reduce-scatter (fp16, 2-8 GPUs; ``message_size`` is the gathered buffer in
  elements): ``collective_step_s``, ``collective_bandwidth_frac``.

Run: ``python benchmarks/roofline_priors.py`` (a few seconds). It prints each prior, the median
and 90th-percentile |error| of the fitted kernel model on the rows, and the block of defaults
to paste into ``RooflineEfficiency``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from afdsizer.cost import RooflineEfficiency, load_hardware_spec, load_model_spec  # noqa: E402
from afdsizer.cost._kernel_time import (  # noqa: E402
    attention_kernel_time_s,
    collective_time_s,
    gemm_time_s,
    moe_kernel_time_s,
)

SHARED = Path(os.environ.get("AFDSIZER_SHARED", ROOT.parent / "shared"))
SILICON = SHARED / "calibration" / "aiconfigurator_silicon"
GPUS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200"}
MS = 1e-3
ATTENTION_SHAPES = {(64, 8, 128), (32, 8, 128), (64, 4, 128), (32, 4, 128)}
"""(heads, KV heads, head dim) of the GQA presets: Llama-3.1-70B/8B, Mixtral, Qwen3-235B/30B."""
MOE_PRESETS = ("qwen3-235b-a22b", "qwen3-30b-a3b", "mixtral-8x7b", "deepseek-v3")
MOE_KERNELS = {
    "bfloat16": "vllm_unquantizedfusedmoe_triton_tritonexperts",
    "fp8_block": "vllm_fp8moe_flashinfer_cutlass_flashinferexperts",
}
"""vLLM 0.24.0's fused-MoE kernels for bf16 and block-FP8 checkpoints on Hopper."""
FP8_BLOCK_GEMM = "DeepGemmFp8BlockScaledMMKernel"
"""vLLM's block-FP8 linear kernel on Hopper when DeepGEMM is installed (its default)."""


def table(gpu: str, pattern: str) -> pl.DataFrame:
    """One measured table of one GPU, with the preset hardware name attached."""
    (path,) = sorted((SILICON / gpu).glob(pattern))
    return pl.read_parquet(path).with_columns(pl.lit(GPUS[gpu]).alias("hw"))


def both(pattern: str) -> pl.DataFrame:
    """The table of both GPUs, stacked."""
    return pl.concat([table(g, pattern) for g in GPUS], how="diagonal_relaxed")


def err_stats(pred: np.ndarray, meas: np.ndarray) -> str:
    """Median and 90th-percentile |relative error| of a kernel model on its rows."""
    e = np.abs(pred / meas - 1.0)
    return f"median |err| {np.median(e):5.1%}, p90 {np.quantile(e, 0.9):5.1%}, {e.size} rows"


def fit(
    names: list[str],
    x0: list[float],
    scale: list[float],
    predict: Callable[[RooflineEfficiency], np.ndarray],
    meas: np.ndarray,
    base: RooflineEfficiency,
) -> RooflineEfficiency:
    """Least squares in log error (soft-L1) over the named fields, bounded to valid values."""

    def eff_of(p: np.ndarray) -> RooflineEfficiency:
        return dataclasses.replace(
            base, **{n: float(v * s) for n, v, s in zip(names, p, scale, strict=True)}
        )

    def resid(p: np.ndarray) -> np.ndarray:
        return np.log(predict(eff_of(p)) / meas)

    lo = [1.0 if n.endswith("_slowdown") else 1e-3 for n in names]
    hi = [np.inf if not n.endswith("_frac") else 1.0 / s for n, s in zip(names, scale, strict=True)]
    x = np.array(x0) / np.array(scale)
    sol = least_squares(resid, x, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
    return eff_of(sol.x)


def gemm_rows(kernel: str, m_max: int) -> dict[str, Any]:
    g = both("gemm/*/*/gemm_perf.parquet").filter(
        (pl.col("kernel_source") == kernel) & (pl.col("m") <= m_max)
    )
    return {c: g[c].to_numpy() for c in ("m", "n", "k", "hw", "latency")}


def gemm_predict(rows: dict[str, Any], wb: int, quant: str | None, eff: RooflineEfficiency):
    out = np.empty(rows["m"].size)
    for hw in np.unique(rows["hw"]):
        sel = rows["hw"] == hw
        out[sel] = gemm_time_s(
            rows["m"][sel],
            rows["n"][sel],
            rows["k"][sel],
            weight_bytes=wb,
            quantization=quant,
            hardware=load_hardware_spec(hw),
            efficiency=eff,
        )
    return out


def fit_gemm(base: RooflineEfficiency) -> RooflineEfficiency:
    bf = gemm_rows("torch.nn.functional.linear", 4096)
    names = ["kernel_launch_s", "hbm_bandwidth_frac", "gemm_flops_frac"]
    eff = fit(
        names,
        [3e-6, 0.8, 0.7],
        [1e-6, 1, 1],
        lambda e: gemm_predict(bf, 2, None, e),
        bf["latency"] * MS,
        base,
    )
    print(
        "GEMM bf16 (torch linear, m <= 4096):",
        err_stats(gemm_predict(bf, 2, None, eff), bf["latency"] * MS),
    )
    f8 = gemm_rows("CutlassFP8ScaledMMLinearKernel", 4096)
    eff = fit(
        ["fp8_activation_quant_s", "fp8_gemm_flops_frac"],
        [4e-6, 0.5],
        [1e-6, 1],
        lambda e: gemm_predict(f8, 1, "fp8", e),
        f8["latency"] * MS,
        eff,
    )
    print(
        "GEMM fp8 per-tensor (Cutlass), bf16 launch and bandwidth, own quantize and FLOP:",
        err_stats(gemm_predict(f8, 1, "fp8", eff), f8["latency"] * MS),
    )
    blk = gemm_rows(FP8_BLOCK_GEMM, 1024)
    floor = float(np.median(blk["latency"])) * MS
    eff = dataclasses.replace(eff, fp8_block_gemm_floor_s=floor)
    print(
        f"GEMM fp8 block ({FP8_BLOCK_GEMM}, m <= 1024): floor = median {floor * 1e6:.1f} us;",
        err_stats(gemm_predict(blk, 1, "fp8_block", eff), blk["latency"] * MS),
    )
    return eff


def fit_attention(base: RooflineEfficiency) -> RooflineEfficiency:
    a = both("attention/*/*/generation_attention_perf.parquet").filter(
        (pl.col("kernel_source") == "vllm_flash_attn_fa3")
        & (pl.col("window_size") == 0)
        & (pl.col("batch_size") <= 512)
        & (pl.col("step") >= 63)
    )
    shape = list(zip(a["num_heads"], a["num_key_value_heads"], a["head_dim"], strict=True))
    a = a.filter(pl.Series([s in ATTENTION_SHAPES for s in shape]))
    b = a["batch_size"].to_numpy().astype(float)
    hkv = a["num_key_value_heads"].to_numpy().astype(float)
    fp8 = (a["kv_cache_dtype"] == "fp8").to_numpy()
    # KV read per call: step cached tokens + the new one, K and V, every KV head.
    kv = b * (a["step"].to_numpy() + 1) * 2 * hkv * a["head_dim"].to_numpy() * np.where(fp8, 1, 2)
    hw = a["hw"].to_numpy()
    meas = a["latency"].to_numpy() * MS

    def predict(eff: RooflineEfficiency) -> np.ndarray:
        out = np.empty(b.size)
        for name in np.unique(hw):
            for is8 in (False, True):
                sel = (hw == name) & (fp8 == is8)
                out[sel] = attention_kernel_time_s(
                    b[sel],
                    kv[sel],
                    kv_heads=hkv[sel],
                    kv_dtype="fp8" if is8 else "bf16",
                    hardware=load_hardware_spec(name),
                    efficiency=eff,
                )
        return out

    names = [
        "attention_kernel_s",
        "attention_per_request_head_s",
        "attention_bandwidth_frac",
        "attention_fp8_kv_bandwidth_frac",
    ]
    eff = fit(names, [11e-6, 30e-9, 0.8, 0.45], [1e-6, 1e-9, 1, 1], predict, meas, base)
    p = predict(eff)
    print("attention FA3 bf16 KV:", err_stats(p[~fp8], meas[~fp8]))
    print("attention FA3 fp8 KV:", err_stats(p[fp8], meas[fp8]))
    return eff


def moe_rows(dist: str) -> pl.DataFrame:
    m = both("moe/*/*/moe_perf.parquet").filter(
        (pl.col("distribution") == dist)
        & (pl.col("moe_tp_size") == 1)
        & pl.col("moe_ep_size").is_between(2, 16)
        & pl.col("num_tokens").is_between(16, 8192)
        & pl.col("kernel_source").is_in(list(MOE_KERNELS.values()))
    )
    keep = []
    for name in MOE_PRESETS:
        s = load_model_spec(name)
        keep.append(
            (pl.col("hidden_size") == s.hidden_size)
            & (pl.col("inter_size") == s.moe_intermediate_size)
            & (pl.col("topk") == s.experts_per_token)
            & (pl.col("num_experts") == s.num_experts)
        )
    return m.filter(pl.any_horizontal(keep))


def moe_predict(m: pl.DataFrame, routing: str, eff: RooflineEfficiency) -> np.ndarray:
    N = m["num_tokens"].to_numpy().astype(float)
    h, inter = m["hidden_size"].to_numpy(), m["inter_size"].to_numpy()
    k, E, ep = m["topk"].to_numpy(), m["num_experts"].to_numpy(), m["moe_ep_size"].to_numpy()
    fp8 = (m["moe_dtype"] == "fp8_block").to_numpy()
    wb = np.where(fp8, 1, 2)
    expert = 3.0 * h * inter
    held = np.ceil(E / ep)
    # Distinct experts the batch activates among the GPU's, under uniform routing.
    read = held * (1.0 - (1.0 - k / E) ** N) * expert * wb
    flop = 2.0 * N * k * expert / ep
    hw = m["hw"].to_numpy()
    out = np.empty(N.size)
    for name in np.unique(hw):
        for is8 in (False, True):
            sel = (hw == name) & (fp8 == is8)
            out[sel] = moe_kernel_time_s(
                read[sel],
                flop[sel],
                weight_bytes=1 if is8 else 2,
                expert_params=expert[sel],
                routing=routing,  # type: ignore[arg-type]
                hardware=load_hardware_spec(name),
                efficiency=eff,
            )
    return out


def fit_moe(base: RooflineEfficiency) -> RooflineEfficiency:
    bal, law = moe_rows("balanced"), moe_rows("power_law_1.2")
    meas = bal["latency"].to_numpy() * MS
    lm = law["latency"].to_numpy() * MS
    names = [
        "moe_kernel_s",
        "moe_bandwidth_frac",
        "moe_flops_frac",
        "moe_fp8_flops_frac",
        "moe_half_rate_expert_params",
        "moe_power_law_slowdown",
    ]
    # One fit over the balanced and the power-law rows: the slowdown is the only difference.
    eff = fit(
        names,
        [40e-6, 0.8, 0.44, 0.31, 5e6, 1.78],
        [1e-6, 1, 1, 1, 1e6, 1],
        lambda e: np.concatenate(
            [moe_predict(bal, "balanced", e), moe_predict(law, "power_law", e)]
        ),
        np.concatenate([meas, lm]),
        base,
    )
    p = moe_predict(bal, "balanced", eff)
    fp8 = (bal["moe_dtype"] == "fp8_block").to_numpy()
    print("MoE balanced bf16 (Triton):", err_stats(p[~fp8], meas[~fp8]))
    print("MoE balanced fp8 block (FlashInfer-Cutlass):", err_stats(p[fp8], meas[fp8]))
    p = moe_predict(law, "power_law", eff)
    f8 = (law["moe_dtype"] == "fp8_block").to_numpy()
    print("MoE power law 1.2 bf16:", err_stats(p[~f8], lm[~f8]))
    print("MoE power law 1.2 fp8 block:", err_stats(p[f8], lm[f8]))
    ratio = lm / moe_predict(law, "balanced", eff)
    print(f"  power-law rows / balanced model: median {np.median(ratio):.2f}x")
    for name in MOE_PRESETS:
        s = load_model_spec(name)
        for rows, routing in ((bal, "balanced"), (law, "power_law")):
            sel = (rows["hidden_size"] == s.hidden_size).to_numpy() & (
                rows["num_experts"] == s.num_experts
            ).to_numpy()
            pred = moe_predict(rows, routing, eff)
            meas_r = rows["latency"].to_numpy() * MS
            for dt in ("bfloat16", "fp8_block"):
                d = sel & (rows["moe_dtype"] == dt).to_numpy()
                if d.any():
                    print(f"  {name:16s} {dt:9s} {routing:9s}", err_stats(pred[d], meas_r[d]))
    return eff


def fit_collectives(base: RooflineEfficiency) -> RooflineEfficiency:
    c = both("comm/*/*/nccl_perf.parquet").filter(
        pl.col("op_name").is_in(["all_gather", "reduce_scatter"]) & (pl.col("nccl_dtype") == "half")
    )
    V = c["message_size"].to_numpy() * 2.0
    g, hw = c["num_gpus"].to_numpy(), c["hw"].to_numpy()
    meas = c["latency"].to_numpy() * MS

    def predict(eff: RooflineEfficiency) -> np.ndarray:
        out = np.empty(V.size)
        for name in np.unique(hw):
            for n in np.unique(g):
                sel = (hw == name) & (g == n)
                out[sel] = collective_time_s(
                    V[sel], int(n), hardware=load_hardware_spec(name), efficiency=eff
                )
        return out

    eff = fit(
        ["collective_step_s", "collective_bandwidth_frac"],
        [1e-6, 0.75],
        [1e-6, 1],
        predict,
        meas,
        base,
    )
    print("NCCL all-gather + reduce-scatter, 2-8 GPUs:", err_stats(predict(eff), meas))
    return eff


def main() -> int:
    if not SILICON.is_dir():
        print(f"no measured tables at {SILICON} (set AFDSIZER_SHARED)", file=sys.stderr)
        return 2
    eff = RooflineEfficiency()
    for step in (fit_gemm, fit_attention, fit_moe, fit_collectives):
        eff = step(eff)
    print("\nRooflineEfficiency priors (paste as the defaults):")
    for f in dataclasses.fields(eff):
        v = getattr(eff, f.name)
        print(f"    {f.name}: float = {v:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
