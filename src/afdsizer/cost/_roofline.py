"""Roofline cost model: the six coefficients from a model, a hardware spec and a deployment.

DESIGN.md §5, §9. Per decode step through all L layers, with explicit efficiency factors
(:class:`RooflineEfficiency`). α is the **per-pass fixed cost** — what one pass of a batch
through the layers costs whatever its size: weight and expert reads, kernel launches, message
latency — and β the **per-token slope**. The theory multiplies α by the microbatches m (each
microbatch is one more pass); the coefficients never contain m.

The coefficients describe one **worker** (DESIGN.md §9): under TP attention an instance of g_A
GPUs with one batch of B slots; under DP attention ONE GPU with its own b slots and a full copy
of the attention weights (``kv_capacity_tokens`` is then per GPU). With G = GPUs per worker and
per-GPU HBM bandwidth BW:

- Attention: α_A = L·o_A + (projection and LM-head bytes one GPU reads)/(BW·η_BW),
  β_A = max(KV bytes/token per GPU / (BW·η_BW), attention FLOP/KV token / (G·F_bf16·η_attn)).
  The projections' compute grows with B, not with the KV load; at decode batch sizes it hides
  under their weight reads, so it is left in α_A.
- Communication (per worker, both directions, every layer): α_C = 2·L·latency,
  β_C = 2·L·h·2 bytes·c / (G·link·η_link), with c the expected destinations a token's k experts
  land on under EP (FFN GPUs over a scale-up fabric, FFN nodes over NICs) and 1 otherwise;
  a TP Attention instance adds its per-layer all-reduce (L·latency_up, and
  L·h·2 bytes·2(G−1)/G / (link_up·η_link) per token). ``ffn_ingress=True`` adds the FFN side's
  links, γ_C = bytes/(g_F·link·η) per token of r·B.
- FFN (instance of g_F GPUs, EP or TP): exact per-GPU roofline
  t_F(N) = L·o_F + Σ_layers max(bytes one GPU reads(N)/(BW·η_BW), FLOP(N)/(g_F·F·η_F))
  (+ the TP all-reduce of the N tokens' outputs), where an MoE layer reads the distinct experts
  a batch of N tokens activates, E·(1 − (1 − k/E)^N), of those the GPU holds. F is the FP8 peak
  for FP8 weights. t_F is not affine in N, so α_F, β_F are its least-squares line over an
  operating range of N, in relative error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import lsq_linear

from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._hardware import HardwareSpec
from afdsizer.cost._model import UNQUANTIZED_WEIGHT_BYTES, ModelSpec
from afdsizer.cost._sharding import (
    ACTIVATION_BYTES,
    DeploymentMemory,
    attention_gpus_per_worker,
    attention_streamed_bytes_per_gpu,
    attention_weight_bytes_per_gpu,
    check_attention_fits,
    deployment_memory,
    ffn_token_copies,
    kv_bytes_per_token_per_gpu,
    resolve_ffn_parallel,
)
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = [
    "DEFAULT_FFN_TOKENS_RANGE",
    "LinkKind",
    "RooflineEfficiency",
    "affine_fit_rel",
    "ffn_roofline_time_s",
    "kv_capacity_tokens",
    "resolve_deployment",
    "roofline_coefficients",
    "roofline_memory",
]

LinkKind = Literal["auto", "scale-up", "scale-out"]

DEFAULT_FFN_TOKENS_RANGE: tuple[int, int] = (128, 4096)
"""Operating range of the FFN batch N = r·B over which t_F(N) is linearised, tokens
(B = 128 slots, r = 1 … 32 Attention instances per FFN instance)."""

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


def resolve_deployment(
    deployment: Deployment | None = None,
    *,
    kv_dtype: str | None = None,
    attn_gpus: int | None = None,
    ffn_gpus: int | None = None,
) -> Deployment:
    """``deployment`` (default :class:`Deployment()`) with the older keywords applied.

    The keywords predate :class:`Deployment` and still work; a keyword that contradicts a
    given deployment is refused rather than silently winning.

    Raises
    ------
    InputError
        A keyword disagrees with ``deployment``, or a value is out of range.
    """
    given = {"kv_dtype": kv_dtype, "attn_gpus": attn_gpus, "ffn_gpus": ffn_gpus}
    changes = {k: v for k, v in given.items() if v is not None}
    if deployment is None:
        for name in ("attn_gpus", "ffn_gpus"):
            g = changes.get(name)
            if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 1):
                raise InputError(f"{name} must be an integer >= 1 (GPUs per instance), got {g!r}")
        return Deployment(**changes)  # type: ignore[arg-type]
    for key, value in changes.items():
        if getattr(deployment, key) != value:
            raise InputError(
                f"{key}={value!r} contradicts the deployment's {key}="
                f"{getattr(deployment, key)!r}; give it in one place"
            )
    return deployment


def roofline_memory(
    model: ModelSpec,
    hardware: HardwareSpec,
    deployment: Deployment | None = None,
    *,
    ffn_hardware: HardwareSpec | None = None,
    efficiency: RooflineEfficiency | None = None,
    ffn_tokens: float = DEFAULT_FFN_TOKENS_RANGE[1],
) -> DeploymentMemory:
    """Per-GPU memory of both sides under the roofline's reserve (see :func:`deployment_memory`).

    The model is served in ``deployment.weight_dtype`` when that is set.

    Raises
    ------
    InputError
        Weights that do not fit a GPU of their side (naming the side, the GB needed and
        available, and the smallest GPU count that fits).
    """
    dep = deployment or Deployment()
    eff = efficiency or RooflineEfficiency()
    return deployment_memory(
        model.with_weight_dtype(dep.weight_dtype),
        hardware,
        dep,
        ffn_hardware=ffn_hardware,
        reserve_frac=eff.memory_reserve_frac,
        ffn_tokens=ffn_tokens,
    )


def kv_capacity_tokens(
    model: ModelSpec,
    hardware: HardwareSpec,
    *,
    kv_dtype: str | None = None,
    attn_gpus: int | None = None,
    efficiency: RooflineEfficiency | None = None,
    deployment: Deployment | None = None,
) -> float:
    """KV tokens one Attention worker can hold after its weights and a reserve.

    A worker is the instance under TP attention and one GPU under DP; every GPU of a worker
    holds its share of each cached token, so the worker holds
    (HBM·(1 − reserve) − Attention weights per GPU) / KV bytes per token per GPU tokens.

    Raises
    ------
    InputError
        The Attention-side weights do not fit one Attention GPU (message names the GB and
        the smallest TP degree that fits).
    """
    dep = resolve_deployment(deployment, kv_dtype=kv_dtype, attn_gpus=attn_gpus)
    eff = efficiency or RooflineEfficiency()
    served = model.with_weight_dtype(dep.weight_dtype)
    usable = hardware.hbm_capacity_bytes * (1.0 - eff.memory_reserve_frac)
    check_attention_fits(served, hardware, dep, usable)
    free = usable - attention_weight_bytes_per_gpu(served, dep)
    return float(free // kv_bytes_per_token_per_gpu(served, dep))


def _ffn_allreduce_s(
    model: ModelSpec,
    hardware: HardwareSpec,
    g: int,
    tokens: npt.NDArray[np.float64],
    eff: RooflineEfficiency,
) -> npt.NDArray[np.float64]:
    """Ring all-reduce of N tokens' outputs over g TP GPUs, every layer, s (0 for g = 1)."""
    if g == 1:
        return np.zeros_like(tokens)
    link = hardware.scale_up_bandwidth_bytes_per_s * eff.link_bandwidth_frac
    volume = tokens * model.hidden_size * ACTIVATION_BYTES * 2 * (g - 1) / g
    return model.num_layers * (hardware.scale_up_latency_s + volume / link)


def ffn_roofline_time_s(
    model: ModelSpec,
    hardware: HardwareSpec,
    tokens: npt.ArrayLike,
    *,
    ffn_gpus: int | None = None,
    efficiency: RooflineEfficiency | None = None,
    deployment: Deployment | None = None,
) -> npt.NDArray[np.float64]:
    """Exact roofline FFN time per decode step (all layers) for N tokens, s.

    One FFN GPU's time (the instance runs its g_F GPUs in parallel): the weights it reads, its
    share of the FLOPs at the dtype's peak, the TP all-reduce when ``ffn_parallel`` is tp.

    Parameters
    ----------
    tokens : array-like of shape (n,)
        N, tokens in the FFN batch (r·B when the bundle is full).
    ffn_gpus : int, optional
        g_F; default the deployment's.
    deployment : Deployment, optional
        GPUs, FFN parallelism and weight dtype; default :class:`Deployment()`.
    """
    dep = resolve_deployment(deployment, ffn_gpus=ffn_gpus)
    eff = efficiency or RooflineEfficiency()
    m = model.with_weight_dtype(dep.weight_dtype)
    N = np.asarray(tokens, dtype=np.float64)
    g = dep.ffn_gpus
    # Per-GPU rates: the instance's g GPUs run in parallel, each on its share.
    bw = hardware.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac
    peak = hardware.flops_per_s(m.weight_dtype)
    gemm, moe = peak * eff.gemm_flops_frac, peak * eff.moe_flops_frac
    wb = m.weight_bytes_per_param
    t = np.full_like(N, m.num_layers * eff.ffn_overhead_s_per_layer)
    if m.num_dense_layers:
        P = m.dense_mlp_params
        t += m.num_dense_layers * np.maximum(P * wb / (g * bw), 2.0 * N * P / (g * gemm))
    if m.num_moe_layers:
        ep = resolve_ffn_parallel(m, dep) == "ep"
        # Share of the routed experts on one GPU: ⌈E/g⌉ whole experts (EP) or 1/g of each (TP).
        held = math.ceil(m.num_experts / g) / m.num_experts if ep else 1.0 / g
        always = m.shared_expert_params * wb + m.router_params * UNQUANTIZED_WEIGHT_BYTES
        read = (m.distinct_experts(N) * m.expert_params * wb * held + always / g) / bw
        # Routed experts run as grouped GEMMs of ~N·k/E tokens each: far below GEMM peak.
        routed = m.experts_per_token * m.expert_params * held / moe
        rest = (m.shared_expert_params + m.router_params) / (g * gemm)
        t += m.num_moe_layers * np.maximum(read, 2.0 * N * (routed + rest))
    if resolve_ffn_parallel(m, dep) == "tp":
        t += _ffn_allreduce_s(m, hardware, g, N, eff)
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
    sol = lsq_linear(A / scale, np.ones_like(T), bounds=(tiny * scale, np.inf), method="bvls")
    alpha, beta = (float(v) for v in sol.x / scale)
    rel = np.abs(alpha + beta * X - T) / T
    return alpha, beta, rel


def _attention_terms(
    m: ModelSpec, hardware: HardwareSpec, dep: Deployment, eff: RooflineEfficiency
) -> tuple[float, float]:
    """(α_A, β_A) of one worker: weights streamed per pass; KV bytes or FLOPs per cached token."""
    G = attention_gpus_per_worker(m, dep)
    bw = hardware.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac  # per GPU
    alpha = m.num_layers * eff.attention_overhead_s_per_layer
    alpha += attention_streamed_bytes_per_gpu(m, dep) / bw
    flops = G * hardware.dense_flops_per_s["bf16"] * eff.attention_flops_frac
    beta = max(kv_bytes_per_token_per_gpu(m, dep) / bw, m.attention_flop_per_kv_token / flops)
    return alpha, beta


def _comm_terms(
    m: ModelSpec,
    hardware: HardwareSpec,
    fhw: HardwareSpec,
    dep: Deployment,
    eff: RooflineEfficiency,
    *,
    link: LinkKind,
    ffn_ingress: bool,
) -> tuple[float, float, float, bool]:
    """(α_C, β_C, γ_C, scale_up) of one worker: activations both ways every layer."""
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
    L, h, G = m.num_layers, m.hidden_size, attention_gpus_per_worker(m, dep)
    # Over NICs one copy per FFN node crosses the network (forwarded over NVLink inside it).
    per_destination = 1 if scale_up else fhw.scale_up_domain_gpus
    copies = ffn_token_copies(m, dep, gpus_per_destination=per_destination)
    bytes_per_token = 2 * L * h * ACTIVATION_BYTES * copies
    alpha = 2 * L * latency
    beta = bytes_per_token / (G * link_bw * eff.link_bandwidth_frac)
    if G > 1:
        # A TP Attention instance all-reduces its heads' outputs once per layer (ring).
        up = hardware.scale_up_bandwidth_bytes_per_s * eff.link_bandwidth_frac
        alpha += L * hardware.scale_up_latency_s
        beta += L * h * ACTIVATION_BYTES * 2 * (G - 1) / G / up
    gamma = 0.0
    if ffn_ingress:
        gamma = bytes_per_token / (dep.ffn_gpus * ffn_link_bw * eff.link_bandwidth_frac)
    return alpha, beta, gamma, scale_up


def roofline_coefficients(
    model: ModelSpec,
    hardware: HardwareSpec,
    *,
    deployment: Deployment | None = None,
    kv_dtype: str | None = None,
    attn_gpus: int | None = None,
    ffn_gpus: int | None = None,
    ffn_hardware: HardwareSpec | None = None,
    link: LinkKind = "auto",
    ffn_ingress: bool = False,
    efficiency: RooflineEfficiency | None = None,
    ffn_tokens_range: tuple[int, int] = DEFAULT_FFN_TOKENS_RANGE,
) -> CostCoefficients:
    """The six coefficients (and γ_C, KV capacity, layers) by roofline; see the module docstring.

    Parameters
    ----------
    model, hardware : ModelSpec, HardwareSpec
        Model and Attention-side GPU.
    deployment : Deployment, optional
        GPUs and parallelism per side, KV and weight dtype; default :class:`Deployment()`.
        Under DP attention the coefficients describe one GPU (one barrier worker).
    kv_dtype : {"bf16", "fp16", "fp8"}, optional
        KV-cache dtype (older keyword; must agree with ``deployment``).
    attn_gpus, ffn_gpus : int, optional
        g_A, g_F: GPUs per Attention / FFN instance (older keywords, as ``kv_dtype``).
    ffn_hardware : HardwareSpec, optional
        FFN-side GPU when it differs from ``hardware``.
    link : {"auto", "scale-up", "scale-out"}
        Fabric between Attention and FFN instances.
    ffn_ingress : bool
        Also charge the FFN side's ingress (γ_C > 0), DESIGN.md §2.
    efficiency : RooflineEfficiency, optional
        Efficiency factors; defaults as documented there.
    ffn_tokens_range : (int, int)
        Operating range of N for the linearisation of t_F, tokens; its top is also the FFN
        batch whose activations must fit.

    Raises
    ------
    InputError
        Bad GPU counts, dtypes, link or range; a parallelism the model's shape forbids;
        weights that do not fit a GPU of their side.

    Examples
    --------
    >>> from afdsizer.cost import load_hardware_spec, load_model_spec
    >>> m, hw = load_model_spec("qwen3-235b-a22b-fp8"), load_hardware_spec("h200")
    >>> dp = roofline_coefficients(m, hw, deployment=Deployment(attn_gpus=8, attn_parallel="dp"))
    >>> dp.layers, dp.kv_capacity_tokens
    (94, 611432.0)
    """
    dep = resolve_deployment(deployment, kv_dtype=kv_dtype, attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
    eff = efficiency or RooflineEfficiency()
    fhw = ffn_hardware or hardware
    lo, hi = ffn_tokens_range
    if not 1 <= lo < hi:
        raise InputError(f"ffn_tokens_range must satisfy 1 <= low < high tokens, got {lo}, {hi}")
    m = model.with_weight_dtype(dep.weight_dtype)
    memory = deployment_memory(
        m, hardware, dep, ffn_hardware=fhw, reserve_frac=eff.memory_reserve_frac, ffn_tokens=hi
    )
    alpha_attn, beta_attn = _attention_terms(m, hardware, dep, eff)
    alpha_comm, beta_comm, gamma_comm, scale_up = _comm_terms(
        m, hardware, fhw, dep, eff, link=link, ffn_ingress=ffn_ingress
    )
    # FFN: linearise the exact roofline over the operating range.
    grid = np.unique(np.geomspace(lo, hi, _FIT_POINTS).round())
    t_f = ffn_roofline_time_s(m, fhw, grid, efficiency=eff, deployment=dep)
    alpha_ffn, beta_ffn, _ = affine_fit_rel(grid, t_f)
    worker = "per GPU" if dep.attn_parallel == "dp" else "per instance"
    precision = m.weight_dtype + (f" ({m.quantization})" if m.quantization else "")
    return CostCoefficients(
        alpha_attn_s=alpha_attn,
        beta_attn_s_per_token=beta_attn,
        alpha_comm_s=alpha_comm,
        beta_comm_s_per_token=beta_comm,
        alpha_ffn_s=alpha_ffn,
        beta_ffn_s_per_token=beta_ffn,
        gamma_comm_s_per_token=gamma_comm,
        kv_capacity_tokens=memory.kv_capacity_tokens,
        layers=m.num_layers,
        source=(
            f"roofline: {m.name} on {hardware.name}"
            + (f" / FFN {fhw.name}" if fhw is not hardware else "")
            + f", weights {precision}, kv {dep.kv_dtype}, {dep.attn_gpus}A {dep.attn_parallel} "
            + f"({worker}) + {dep.ffn_gpus}F {memory.ffn_parallel}, "
            + ("scale-up" if scale_up else "scale-out")
        ),
    )
