"""Roofline cost model: the six coefficients from a model spec and a hardware spec (DESIGN.md §5).

Per decode step through all layers, with explicit efficiency factors (:class:`RooflineEfficiency`):

- Attention (instance of g_A GPUs, tensor-parallel over heads):
  α_A = layers·o_A + (projection and LM-head weights)/(g_A·BW·η_BW),
  β_A = max(KV bytes/token / (g_A·BW·η_BW), attention FLOP/KV token / (g_A·F·η_attn)).
  The projections' compute grows with B, not with the KV load L; at decode batch sizes it hides
  under their weight reads, so it is left in α_A.
- Communication (per Attention instance, both directions, every layer):
  α_C = 2·layers·latency, β_C = 2·layers·h·2 bytes·c / (g_A·link·η_link), with c = min(k, g_F)
  copies of a token for MoE (one per FFN GPU that holds one of its k experts) and 1 for dense.
  With ``ffn_ingress=True`` the FFN side's links carry r·B tokens: γ_C = same bytes/(g_F·link·η).
- FFN (instance of g_F GPUs, EP for MoE, TP for dense): exact roofline
  t_F(N) = layers·o_F + Σ_layers max(weight bytes read(N)/(g_F·BW·η_BW), FLOP(N)/(g_F·F·η_F)),
  where an MoE layer reads the E·(1 − (1 − k/E)^N) distinct experts a batch of N tokens activates.
  t_F is not affine in N (a kink where compute overtakes memory, a concave expert count), so
  α_F, β_F are its least-squares line over an operating range of N, in relative error.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import numpy.typing as npt

from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._hardware import HardwareSpec
from afdsizer.cost._model import ModelSpec
from afdsizer.errors import InputError

__all__ = [
    "DEFAULT_FFN_TOKENS_RANGE",
    "LinkKind",
    "RooflineEfficiency",
    "affine_fit_rel",
    "ffn_roofline_time_s",
    "kv_capacity_tokens",
    "roofline_coefficients",
]

LinkKind = Literal["auto", "scale-up", "scale-out"]

DEFAULT_FFN_TOKENS_RANGE: tuple[int, int] = (128, 4096)
"""Operating range of the FFN batch N = r·B over which t_F(N) is linearised, tokens
(B = 128 slots, r = 1 … 32 Attention instances per FFN instance)."""

ACTIVATION_BYTES = 2
"""Bytes per activation element sent between Attention and FFN (bf16)."""

_SCALE_UP_MIN_DOMAIN_GPUS = 32
"""``link="auto"`` uses the scale-up fabric when it spans at least this many GPUs (GB200 NVL72):
a bundle of several Attention instances and one FFN instance then fits inside it; on 8-GPU
boards the bundle spans nodes and the traffic goes through the NICs."""

_FIT_POINTS = 64
"""Geometric grid points of N in the linearisation."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RooflineEfficiency:
    """Fractions of datasheet peaks a decode step reaches, and fixed per-layer overheads.

    The defaults are round numbers close to what the measured H100/H200 kernels in
    ``shared/calibration`` reach (docs/calibration.md compares roofline and fit).

    Parameters
    ----------
    hbm_bandwidth_frac : float, default 0.8
        η_BW, achieved fraction of HBM bandwidth when streaming weights and KV cache.
    gemm_flops_frac : float, default 0.7
        η_F, achieved fraction of dense peak FLOP/s in large GEMMs.
    moe_flops_frac : float, default 0.3
        η_MoE, achieved fraction of dense peak in the routed experts' grouped GEMMs, whose
        per-expert batches (N·k/E tokens) are small. With 0.3 the roofline t_F of the MoE
        presets is 0.46–1.54x the measured vLLM fused-MoE times on H100/H200 over N = 128…4096
        (docs/calibration.md); DeepSeek-V3's fp8 block-scaled kernels are the slow end.
    attention_flops_frac : float, default 0.5
        η_attn, achieved fraction of bf16 peak in decode attention (MLA is compute-heavy).
    link_bandwidth_frac : float, default 0.8
        η_link, achieved fraction of link bandwidth for activation transfers.
    attention_overhead_s_per_layer : float, default 20e-6
        o_A, fixed kernel time per layer on the Attention side (norm, rope, launch tails), s.
    ffn_overhead_s_per_layer : float, default 15e-6
        o_F, fixed kernel time per layer on the FFN side (activation, routing), s.
    memory_reserve_frac : float, default 0.1
        Share of HBM kept free for activations, CUDA graphs and fragmentation.
    """

    hbm_bandwidth_frac: float = 0.8
    gemm_flops_frac: float = 0.7
    moe_flops_frac: float = 0.3
    attention_flops_frac: float = 0.5
    link_bandwidth_frac: float = 0.8
    attention_overhead_s_per_layer: float = 20e-6
    ffn_overhead_s_per_layer: float = 15e-6
    memory_reserve_frac: float = 0.1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "memory_reserve_frac":
                ok, rule = 0 <= value < 1, "in [0, 1)"
            elif f.name.endswith("_frac"):
                ok, rule = 0 < value <= 1, "in (0, 1]"
            else:
                ok, rule = value >= 0, ">= 0 s"
            if not ok:
                raise InputError(f"{f.name} must be {rule}, got {value!r}")


def _check_gpus(attn_gpus: int, ffn_gpus: int) -> None:
    for name, g in (("attn_gpus", attn_gpus), ("ffn_gpus", ffn_gpus)):
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise InputError(f"{name} must be an integer >= 1 (GPUs per instance), got {g!r}")


def kv_capacity_tokens(
    model: ModelSpec,
    hardware: HardwareSpec,
    *,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    efficiency: RooflineEfficiency | None = None,
) -> float:
    """KV tokens one Attention instance can hold after its weights and a reserve.

    (g_A·HBM·(1 − reserve) − Attention-side weight bytes) / KV bytes per token.

    Raises
    ------
    InputError
        The Attention-side weights do not fit in the instance's memory.
    """
    _check_gpus(attn_gpus, 1)
    eff = efficiency or RooflineEfficiency()
    usable = attn_gpus * hardware.hbm_capacity_bytes * (1.0 - eff.memory_reserve_frac)
    free = usable - model.attention_weight_bytes
    if free <= 0:
        raise InputError(
            f"attention weights of {model.name} ({model.attention_weight_bytes / 2**30:.1f} GiB) "
            f"must fit in attn_gpus={attn_gpus} x {hardware.name} after a "
            f"{eff.memory_reserve_frac:.0%} reserve ({usable / 2**30:.1f} GiB); "
            "use more --attn-gpus"
        )
    return float(free // model.kv_bytes_per_token(kv_dtype))


def ffn_roofline_time_s(
    model: ModelSpec,
    hardware: HardwareSpec,
    tokens: npt.ArrayLike,
    *,
    ffn_gpus: int = 1,
    efficiency: RooflineEfficiency | None = None,
) -> npt.NDArray[np.float64]:
    """Exact roofline FFN time per decode step (all layers) for N tokens, s.

    Parameters
    ----------
    tokens : array-like of shape (n,)
        N, tokens in the FFN batch (r·B when the bundle is full).
    """
    eff = efficiency or RooflineEfficiency()
    N = np.asarray(tokens, dtype=np.float64)
    bw = ffn_gpus * hardware.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac
    flops = ffn_gpus * hardware.flops_per_s(model.weight_bytes_per_param) * eff.gemm_flops_frac
    wb = model.weight_bytes_per_param
    t = np.full_like(N, model.num_layers * eff.ffn_overhead_s_per_layer)
    if model.num_dense_layers:
        P = model.dense_mlp_params
        dense = np.maximum(P * wb / bw, 2.0 * N * P / flops)
        t += model.num_dense_layers * dense
    if model.num_moe_layers:
        always = model.shared_expert_params + model.router_params
        read = (model.distinct_experts(N) * model.expert_params + always) * wb / bw
        # Routed experts run as grouped GEMMs of ~N·k/E tokens each: far below GEMM peak.
        moe_flops = flops / eff.gemm_flops_frac * eff.moe_flops_frac
        routed = model.experts_per_token * model.expert_params
        compute = 2.0 * N * (routed / moe_flops + always / flops)
        t += model.num_moe_layers * np.maximum(read, compute)
    return t


def affine_fit_rel(
    x: npt.ArrayLike, t_s: npt.ArrayLike
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """Least-squares line t ≈ α + β·x in relative error, with α, β > 0.

    Minimises Σ ((α + β·x_i − t_i)/t_i)², so small and large times weigh alike.

    Returns
    -------
    alpha, beta : float
        Intercept (s) and slope (s per unit of x).
    rel_error : ndarray of shape (n,)
        |α + β·x − t| / t at each point.
    """
    X = np.asarray(x, dtype=np.float64)
    T = np.asarray(t_s, dtype=np.float64)
    if X.size < 2 or np.ptp(X) == 0:
        raise InputError(f"an affine fit needs >= 2 distinct x values, got {np.unique(X).size}")
    A = np.column_stack([1.0 / T, X / T])
    # Scale the columns so the solver's tolerance means the same for both coefficients.
    scale = np.abs(A).max(axis=0)
    tiny = 1e-12
    from scipy.optimize import lsq_linear  # here: scipy.optimize takes ~0.5 s to import

    sol = lsq_linear(A / scale, np.ones_like(T), bounds=(tiny * scale, np.inf), method="bvls")
    alpha, beta = (float(v) for v in sol.x / scale)
    rel = np.abs(alpha + beta * X - T) / T
    return alpha, beta, rel


def roofline_coefficients(
    model: ModelSpec,
    hardware: HardwareSpec,
    *,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    ffn_hardware: HardwareSpec | None = None,
    link: LinkKind = "auto",
    ffn_ingress: bool = False,
    efficiency: RooflineEfficiency | None = None,
    ffn_tokens_range: tuple[int, int] = DEFAULT_FFN_TOKENS_RANGE,
) -> CostCoefficients:
    """The six coefficients (and γ_C, KV capacity) by roofline; see the module docstring.

    Parameters
    ----------
    model, hardware : ModelSpec, HardwareSpec
        Model and Attention-side GPU.
    kv_dtype : {"bf16", "fp8"}
        KV-cache dtype.
    attn_gpus, ffn_gpus : int
        g_A, g_F: GPUs per Attention / FFN instance.
    ffn_hardware : HardwareSpec, optional
        FFN-side GPU when it differs from ``hardware``.
    link : {"auto", "scale-up", "scale-out"}
        Fabric between Attention and FFN instances.
    ffn_ingress : bool
        Also charge the FFN side's ingress (γ_C > 0), DESIGN.md §2.
    efficiency : RooflineEfficiency, optional
        Efficiency factors; defaults as documented there.
    ffn_tokens_range : (int, int)
        Operating range of N for the linearisation of t_F, tokens.

    Raises
    ------
    InputError
        Bad GPU counts, kv_dtype, link or range; weights that do not fit the Attention instance.
    """
    _check_gpus(attn_gpus, ffn_gpus)
    eff = efficiency or RooflineEfficiency()
    fhw = ffn_hardware or hardware
    lo, hi = ffn_tokens_range
    if not 1 <= lo < hi:
        raise InputError(f"ffn_tokens_range must satisfy 1 <= low < high tokens, got {lo}, {hi}")
    L = model.num_layers

    # Attention: weights streamed once per step (LM head too; the embedding is a row lookup).
    streamed_params = L * model.attention_params_per_layer + model.vocab_size * model.hidden_size
    bw_a = attn_gpus * hardware.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac
    alpha_attn = L * eff.attention_overhead_s_per_layer
    alpha_attn += streamed_params * model.weight_bytes_per_param / bw_a
    attn_flops = attn_gpus * hardware.dense_flops_per_s["bf16"] * eff.attention_flops_frac
    beta_attn = max(
        model.kv_bytes_per_token(kv_dtype) / bw_a, model.attention_flop_per_kv_token / attn_flops
    )

    # Communication: one activation per token per direction per layer.
    if link not in ("auto", "scale-up", "scale-out"):
        raise InputError(f"link must be auto, scale-up or scale-out, got {link!r}")
    scale_up = link == "scale-up" or (
        link == "auto" and hardware.scale_up_domain_gpus >= _SCALE_UP_MIN_DOMAIN_GPUS
    )
    if scale_up:
        link_bw, latency = hardware.scale_up_bandwidth_bytes_per_s, hardware.scale_up_latency_s
        ffn_link_bw = fhw.scale_up_bandwidth_bytes_per_s
    else:
        link_bw, latency = hardware.scale_out_bandwidth_bytes_per_s, hardware.scale_out_latency_s
        ffn_link_bw = fhw.scale_out_bandwidth_bytes_per_s
    copies = min(model.experts_per_token, ffn_gpus) if model.is_moe else 1
    bytes_per_token = 2 * L * model.hidden_size * ACTIVATION_BYTES * copies
    alpha_comm = 2 * L * latency
    beta_comm = bytes_per_token / (attn_gpus * link_bw * eff.link_bandwidth_frac)
    gamma_comm = 0.0
    if ffn_ingress:
        gamma_comm = bytes_per_token / (ffn_gpus * ffn_link_bw * eff.link_bandwidth_frac)

    # FFN: linearise the exact roofline over the operating range.
    grid = np.unique(np.geomspace(lo, hi, _FIT_POINTS).round())
    t_f = ffn_roofline_time_s(model, fhw, grid, ffn_gpus=ffn_gpus, efficiency=eff)
    alpha_ffn, beta_ffn, _ = affine_fit_rel(grid, t_f)

    return CostCoefficients(
        alpha_attn_s=alpha_attn,
        beta_attn_s_per_token=beta_attn,
        alpha_comm_s=alpha_comm,
        beta_comm_s_per_token=beta_comm,
        alpha_ffn_s=alpha_ffn,
        beta_ffn_s_per_token=beta_ffn,
        gamma_comm_s_per_token=gamma_comm,
        kv_capacity_tokens=kv_capacity_tokens(
            model, hardware, kv_dtype=kv_dtype, attn_gpus=attn_gpus, efficiency=eff
        ),
        source=(
            f"roofline: {model.name} on {hardware.name}"
            + (f" / FFN {fhw.name}" if fhw is not hardware else "")
            + f", kv {kv_dtype}, {attn_gpus}A+{ffn_gpus}F GPUs, "
            + ("scale-up" if scale_up else "scale-out")
        ),
    )
