"""Per-kernel roofline times: GEMM, decode attention, fused MoE, NCCL collectives.

docs/design.md §5. One decode layer is a handful of kernels; each costs a fixed launch/latency part
plus the larger of its memory and compute times, at achieved (not datasheet) rates. The
fractions and fixed times are :class:`~afdsizer.cost.RooflineEfficiency` fields, priors fitted
to the measured vLLM 0.24.0 / NCCL 2.29.2 tables of H100 and H200 by
``benchmarks/roofline_priors.py`` (docs/cost.md, "Kernel priors"):

- GEMM [m, k] x [k, n]: max(floor, t_launch (+ t_quant) + max(bytes/(BW·η_BW), 2mnk/(F·η_F))),
  t_quant for FP8's dynamic activation quantization (per tensor, or per 128-wide group for
  block-scaled weights). The floor is 0 unless set: the measured vLLM (DeepGemm) block-FP8
  rows are flat at ~85 µs up to m = 1024, but they were timed without CUDA graphs, so that is
  host dispatch, not GPU work, and a CUDA-graph decode step does not pay it.
- Decode attention (FlashAttention-3), one layer: t_attn + c·B·H_kv + KV bytes/(BW·η_kv), η_kv
  per KV dtype (the FP8-KV kernel reads half the bytes but runs barely faster).
- Fused MoE layer on one GPU: t_moe + expert bytes read/(BW·η_moe,BW) + s·FLOP/(F·η_moe(P)),
  η_moe(P) = η_moe·P/(P + P_half) for experts of P weights, s the routing slowdown (1 balanced;
  the measured power-law rows' factor otherwise).
- All-gather / reduce-scatter of V bytes over g GPUs of one node: latency(g) +
  (g − 1)/g · V/(link·η_coll), latency(g) = scale-up latency + (g − 2)·t_step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from afdsizer.cost._hardware import HardwareSpec

if TYPE_CHECKING:
    from afdsizer.cost._roofline import RooflineEfficiency

__all__ = [
    "MoeRouting",
    "attention_kernel_time_s",
    "collective_time_s",
    "gemm_time_s",
    "moe_kernel_time_s",
]

MoeRouting = Literal["balanced", "power_law"]

_Array = npt.NDArray[np.float64]
_ACT_BYTES = 2  # bf16 activations in and out of every kernel


def gemm_time_s(
    tokens: npt.ArrayLike,
    n: npt.ArrayLike,
    k: npt.ArrayLike,
    *,
    weight_bytes: float,
    quantization: str | None,
    hardware: HardwareSpec,
    efficiency: RooflineEfficiency,
) -> _Array:
    """One GEMM of ``tokens`` rows against an [k, n] weight on one GPU, s.

    Parameters
    ----------
    tokens : array-like
        m, rows (tokens) of the activation.
    n, k : array-like
        Output and reduction width of the weight.
    weight_bytes : float
        Bytes per weight (1 for FP8, 2 for 16-bit).
    quantization : {"fp8_block", "fp8"} or None
        FP8 scheme: both quantize their input first (``fp8_activation_quant_s``);
        ``fp8_block`` also has the ``fp8_block_gemm_floor_s`` floor, when one is set.
    """
    eff = efficiency
    m = np.asarray(tokens, dtype=np.float64)
    nn, kk = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    fp8 = weight_bytes == 1
    frac = eff.fp8_gemm_flops_frac if fp8 else eff.gemm_flops_frac
    peak = hardware.flops_per_s("fp8" if fp8 else "bf16") * frac
    moved = nn * kk * weight_bytes + m * (nn + kk) * _ACT_BYTES
    busy = np.maximum(
        moved / (hardware.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac),
        2.0 * m * nn * kk / peak,
    )
    floor = eff.fp8_block_gemm_floor_s if quantization == "fp8_block" else 0.0
    # FP8 with dynamic activations quantizes its input first (per tensor or per 128-wide
    # group): one more kernel, one more fixed time.
    quantizes = quantization in ("fp8", "fp8_block")
    fixed = eff.kernel_launch_s + (eff.fp8_activation_quant_s if quantizes else 0.0)
    out: _Array = np.maximum(floor, fixed + busy)
    return out


def attention_kernel_time_s(
    batch: npt.ArrayLike,
    kv_bytes: npt.ArrayLike,
    *,
    kv_heads: float,
    kv_dtype: str,
    hardware: HardwareSpec,
    efficiency: RooflineEfficiency,
) -> _Array:
    """One layer's decode-attention kernel on one GPU (GQA, FlashAttention-3), s.

    Parameters
    ----------
    batch : array-like
        Requests in the call.
    kv_bytes : array-like
        KV-cache bytes the call reads (all its requests, this layer, this GPU).
    kv_heads : float
        KV heads one GPU holds; the per-request work is per (request, KV head).
    kv_dtype : str
        KV-cache dtype; ``fp8`` uses ``attention_fp8_kv_bandwidth_frac``.
    """
    eff = efficiency
    frac = (
        eff.attention_fp8_kv_bandwidth_frac if kv_dtype == "fp8" else eff.attention_bandwidth_frac
    )
    b = np.asarray(batch, dtype=np.float64)
    read = np.asarray(kv_bytes, dtype=np.float64) / (hardware.hbm_bandwidth_bytes_per_s * frac)
    return eff.attention_kernel_s + eff.attention_per_request_head_s * b * kv_heads + read


def moe_kernel_time_s(
    read_bytes: npt.ArrayLike,
    flop: npt.ArrayLike,
    *,
    weight_bytes: float,
    expert_params: float,
    routing: MoeRouting,
    hardware: HardwareSpec,
    efficiency: RooflineEfficiency,
) -> _Array:
    """One fused-MoE layer on one GPU, s: expert weights read plus grouped-GEMM FLOPs.

    Parameters
    ----------
    read_bytes : array-like
        Expert weight bytes the GPU reads (its distinct activated experts).
    flop : array-like
        FLOPs of the GPU's token-expert pairs under balanced routing.
    weight_bytes : float
        Bytes per expert weight (1 for FP8): picks the FP8 peak and the FP8 fractions.
    expert_params : float
        Weights of one expert (3·h·I): small experts' grouped GEMMs reach a smaller share of
        the peak, P/(P + ``moe_half_rate_expert_params``) of the fitted fraction.
    routing : {"balanced", "power_law"}
        Expert-load law; power law multiplies the compute time by the measured slowdown.
    """
    eff = efficiency
    fp8 = weight_bytes == 1
    frac = eff.moe_fp8_flops_frac if fp8 else eff.moe_flops_frac
    # Small experts leave the grouped GEMM's tiles and waves part-empty (the rows: Qwen3-30B's
    # 4.7 M-weight experts run at half the rate of Mixtral's 176 M ones).
    frac *= expert_params / (expert_params + eff.moe_half_rate_expert_params)
    slow = eff.moe_power_law_slowdown if routing == "power_law" else 1.0
    peak = hardware.flops_per_s("fp8" if fp8 else "bf16") * frac
    bw = hardware.hbm_bandwidth_bytes_per_s * eff.moe_bandwidth_frac
    # A sum, not a max: at decode sizes (a few tokens per expert) the grouped GEMM's tiles do
    # not overlap the expert loads with the MMAs; the rows fit the sum better (roofline_priors).
    read = np.asarray(read_bytes, dtype=np.float64) / bw
    return eff.moe_kernel_s + read + slow * np.asarray(flop, dtype=np.float64) / peak


def collective_time_s(
    total_bytes: npt.ArrayLike,
    gpus: int,
    *,
    hardware: HardwareSpec,
    efficiency: RooflineEfficiency,
) -> _Array:
    """One NCCL all-gather or reduce-scatter of ``total_bytes`` over ``gpus`` GPUs of a node, s.

    Ring volume (g − 1)/g of the gathered buffer crosses each GPU's link; 0 for one GPU.
    """
    V = np.asarray(total_bytes, dtype=np.float64)
    if gpus <= 1:
        return np.zeros_like(V)
    eff = efficiency
    latency = hardware.scale_up_latency_s + (gpus - 2) * eff.collective_step_s
    link = hardware.scale_up_bandwidth_bytes_per_s * eff.collective_bandwidth_frac
    return latency + (gpus - 1) / gpus * V / link
