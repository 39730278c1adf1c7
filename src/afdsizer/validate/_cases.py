"""The default grid of cost cases: model × hardware × batch, spanning the three regimes.

Each case is built here by a small, explicit roofline (DESIGN.md §5) from public model shapes and
H100 SXM datasheet numbers, so that validate depends on no other stage's presets and every number
can be checked by hand. The same five cases run on every trace; which regime each lands in is the
theory's verdict on that trace (reported, never forced):

==========================  ======================================================  ==========
case                        how it is made                                          regime
==========================  ======================================================  ==========
``dense70b-h100-b128``      Llama-3.1-70B shapes, bf16, 1-GPU Attention instance,   Attention
                            8-GPU FFN instance, NVLink, B = 128
``dense70b-h100-b16``       the same coefficients at B = 16: few slots per worker,  Attention
                            so the barrier (σ·√B next to B·θ) is largest
``dense70b-ib200-b256``     Llama-3.1-70B, 4-GPU Attention instance, one 200 Gb/s   comm.
                            InfiniBand NIC per Attention instance, B = 256
``qwen3moe-h100-b32``       Qwen3-235B-A22B shapes, fp8 experts on an 8-GPU FFN     FFN
                            instance (all experts read per step), B = 32
``deepseekv3-ep32-b128``    DeepSeek-V3 shapes (MLA cache, fp8 MoE) with a 32-GPU   Attention
                            EP FFN instance, 400 Gb/s IB, B = 128: cheap FFN per
                            token, so r is large and Λ(r) flat near the optimum
==========================  ======================================================  ==========
"""

from __future__ import annotations

import dataclasses

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError

__all__ = ["CostCase", "ModelShape", "default_cases", "roofline_case"]

H100_HBM_BYTES_PER_S = 3.35e12
"""H100 SXM HBM3 bandwidth, B/s (NVIDIA H100 datasheet)."""
H100_BF16_FLOP_PER_S = 989e12
"""H100 SXM dense BF16 tensor-core peak, FLOP/s (datasheet; fp8 experts still counted at this)."""
NVLINK_BYTES_PER_S = 450e9
"""NVLink 4 bandwidth per direction per GPU, B/s."""
IB200_BYTES_PER_S = 25e9
"""One 200 Gb/s InfiniBand NIC, B/s."""
HBM_EFFICIENCY = 0.7
"""Fraction of peak HBM bandwidth that decode kernels reach (roofline prior)."""
FLOP_EFFICIENCY = 0.6
"""Fraction of peak FLOP/s that FFN GEMMs reach."""
LINK_EFFICIENCY = 0.7
"""Fraction of link bandwidth that activation transfers reach."""
KERNEL_OVERHEAD_S = 10e-6
"""Fixed launch/sync time per layer per side, s."""
NVLINK_LATENCY_S = 5e-6
"""One NVLink message, s (one each way per layer)."""
IB400_BYTES_PER_S = 50e9
"""One 400 Gb/s InfiniBand NIC, B/s."""
IB_LATENCY_S = 10e-6
"""One InfiniBand message, s."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelShape:
    """The few model numbers a roofline needs (from the model's config.json).

    Parameters
    ----------
    name : str
        Label.
    layers : int
        Transformer layers.
    hidden : int
        Hidden size (activations sent per token per layer each way).
    kv_bytes_per_token : float
        KV cache bytes per token, all layers, B.
    attn_weight_bytes : float
        Weights on the Attention side (QKV and output projections), B.
    ffn_weight_bytes_read : float
        FFN weights read per step (all experts for a large MoE batch), B.
    ffn_flop_per_token : float
        FFN FLOP per token (active parameters × 2), FLOP.
    """

    name: str
    layers: int
    hidden: int
    kv_bytes_per_token: float
    attn_weight_bytes: float
    ffn_weight_bytes_read: float
    ffn_flop_per_token: float


def _llama70b() -> ModelShape:
    L, h, heads, kv_heads, hd, inter = 80, 8192, 64, 8, 128, 28672
    attn_params = L * (2 * h * heads * hd + 2 * h * kv_heads * hd)
    ffn_params = L * 3 * h * inter
    return ModelShape(
        name="llama-3.1-70b",
        layers=L,
        hidden=h,
        kv_bytes_per_token=2 * L * kv_heads * hd * 2,  # K and V, bf16
        attn_weight_bytes=2 * attn_params,
        ffn_weight_bytes_read=2 * ffn_params,
        ffn_flop_per_token=2 * ffn_params,
    )


def _qwen3_235b() -> ModelShape:
    L, h, heads, kv_heads, hd = 94, 4096, 64, 4, 128
    experts, top_k, expert_inter = 128, 8, 1536
    attn_params = L * (2 * h * heads * hd + 2 * h * kv_heads * hd)
    expert_params = 3 * h * expert_inter
    return ModelShape(
        name="qwen3-235b-a22b",
        layers=L,
        hidden=h,
        kv_bytes_per_token=2 * L * kv_heads * hd * 2,
        attn_weight_bytes=2 * attn_params,
        # fp8 experts (1 B/param); a batch of >= 32 tokens touches ~all 128 experts per layer.
        ffn_weight_bytes_read=1 * L * experts * expert_params,
        ffn_flop_per_token=2 * L * top_k * expert_params,
    )


def _deepseek_v3() -> ModelShape:
    L, h, dense_layers, dense_inter = 61, 7168, 3, 18432
    routed, shared, top_k, expert_inter = 256, 1, 8, 2048
    heads, q_rank, kv_rank, rope_dim, nope_dim, v_dim = 128, 1536, 512, 64, 128, 128
    # MLA projections per layer: q_a, q_b, kv_a (latent + rope key), kv_b, o.
    attn_per_layer = (
        h * q_rank
        + q_rank * heads * (nope_dim + rope_dim)
        + h * (kv_rank + rope_dim)
        + kv_rank * heads * (nope_dim + v_dim)
        + heads * v_dim * h
    )
    expert = 3 * h * expert_inter
    dense = dense_layers * 3 * h * dense_inter
    moe_layers = L - dense_layers
    return ModelShape(
        name="deepseek-v3",
        layers=L,
        hidden=h,
        kv_bytes_per_token=L * (kv_rank + rope_dim) * 2,  # MLA latent cache, bf16
        attn_weight_bytes=2 * L * attn_per_layer,
        # fp8 weights, all routed experts read per step (a batch of >= 128 tokens touches ~all).
        ffn_weight_bytes_read=moe_layers * (routed + shared) * expert + dense,
        ffn_flop_per_token=2 * (moe_layers * (top_k + shared) * expert + dense),
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CostCase:
    """One validation case: named cost coefficients and the batch B they are run at.

    Parameters
    ----------
    name : str
        Short identifier (used in tables and JSON as ``case``).
    coefficients : CostCoefficients
        α, β of Attention, communication, FFN (s, s/token).
    batch : int
        B, slots per Attention worker.
    description : str
        How the coefficients were made.
    """

    name: str
    coefficients: CostCoefficients
    batch: int
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(
                f"batch of case {self.name!r} must be an integer >= 1, got {self.batch!r}"
            )


def roofline_case(
    name: str,
    model: ModelShape,
    *,
    batch: int,
    attn_gpus: int,
    ffn_gpus: int,
    link_bytes_per_s: float,
    link_latency_s: float,
    description: str,
) -> CostCase:
    """Build a case from a model shape and H100 SXM GPUs by roofline (DESIGN.md §5).

    Notes
    -----
    α_A = attention weights / (attn_gpus·HBM·eff) + layers·overhead; β_A = KV bytes per token /
    (attn_gpus·HBM·eff). α_F = FFN weights read / (ffn_gpus·HBM·eff) + layers·overhead;
    β_F = FFN FLOP per token / (ffn_gpus·peak·eff). α_C = 2·layers·link latency;
    β_C = 2·layers·hidden·2 B / (link·eff) (bf16 activations, both directions).
    """
    hbm = H100_HBM_BYTES_PER_S * HBM_EFFICIENCY
    overhead = model.layers * KERNEL_OVERHEAD_S
    coefficients = CostCoefficients(
        alpha_attn_s=model.attn_weight_bytes / (attn_gpus * hbm) + overhead,
        beta_attn_s_per_token=model.kv_bytes_per_token / (attn_gpus * hbm),
        alpha_comm_s=2 * model.layers * link_latency_s,
        beta_comm_s_per_token=2
        * model.layers
        * model.hidden
        * 2
        / (link_bytes_per_s * LINK_EFFICIENCY),
        alpha_ffn_s=model.ffn_weight_bytes_read / (ffn_gpus * hbm) + overhead,
        beta_ffn_s_per_token=model.ffn_flop_per_token
        / (ffn_gpus * H100_BF16_FLOP_PER_S * FLOP_EFFICIENCY),
        source=f"validate roofline: {model.name}, H100 SXM, {attn_gpus}A/{ffn_gpus}F GPUs",
    )
    return CostCase(name=name, coefficients=coefficients, batch=batch, description=description)


def default_cases() -> tuple[CostCase, ...]:
    """The five default cases (module docstring), Attention-, communication- and FFN-bound.

    Examples
    --------
    >>> [c.batch for c in default_cases()]
    [128, 16, 256, 32, 128]
    """
    llama, qwen, deepseek = _llama70b(), _qwen3_235b(), _deepseek_v3()
    nv = {"link_bytes_per_s": NVLINK_BYTES_PER_S, "link_latency_s": NVLINK_LATENCY_S}
    return (
        roofline_case(
            "dense70b-h100-b128", llama, batch=128, attn_gpus=1, ffn_gpus=8, **nv,
            description="Llama-3.1-70B bf16; 1-GPU Attention, 8-GPU FFN over NVLink; B=128",
        ),
        roofline_case(
            "dense70b-h100-b16", llama, batch=16, attn_gpus=1, ffn_gpus=8, **nv,
            description="as dense70b-h100-b128 at B=16 (largest barrier: σ·√B vs B·θ)",
        ),
        roofline_case(
            "dense70b-ib200-b256", llama, batch=256, attn_gpus=4, ffn_gpus=8,
            link_bytes_per_s=IB200_BYTES_PER_S, link_latency_s=IB_LATENCY_S,
            description="Llama-3.1-70B; 4-GPU Attention, one 200 Gb/s IB NIC each; B=256",
        ),
        roofline_case(
            "qwen3moe-h100-b32", qwen, batch=32, attn_gpus=1, ffn_gpus=8, **nv,
            description="Qwen3-235B-A22B, fp8 experts all read per step; 8-GPU FFN; B=32",
        ),
        roofline_case(
            "deepseekv3-ep32-b128", deepseek, batch=128, attn_gpus=1, ffn_gpus=32,
            link_bytes_per_s=IB400_BYTES_PER_S, link_latency_s=IB_LATENCY_S,
            description="DeepSeek-V3 (MLA, fp8 MoE) on a 32-GPU EP FFN; 400 Gb/s IB; B=128",
        ),
    )  # fmt: skip
