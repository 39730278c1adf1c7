"""Roofline cost model: the six coefficients from a model, a hardware spec and a deployment.

docs/design.md §5, §9. Per decode step through all L layers, with explicit efficiency factors
(:class:`RooflineEfficiency`). α is the **per-pass fixed cost** — what one pass of a batch
through the layers costs whatever its size: weight and expert reads, kernel launches, message
latency — and β the **per-token slope**. The theory multiplies α by the microbatches m (each
microbatch is one more pass); the coefficients never contain m.

The coefficients describe one **worker** (docs/design.md §9): under TP attention an instance of g_A
GPUs with one batch of B slots; under DP attention ONE GPU with its own b slots and a full copy
of the attention weights (``kv_capacity_tokens`` is then per GPU). With G = GPUs per worker and
per-GPU HBM bandwidth BW:

Every kernel is a fixed time plus its memory and compute times at achieved rates
(:mod:`afdsizer.cost._kernel_time`; priors fitted to the measured vLLM/NCCL tables by
``benchmarks/roofline_priors.py``):

- Attention: α_A = L·(q/k/v and o GEMMs at decode sizes — weight-bound, or on the block-FP8
  floor — + the attention call + two add+RMSNorm kernels + the EP combine) + LM-head GEMM +
  embedding; β_A = max(KV bytes/token per GPU / (BW·η_kv), attention FLOP/KV token /
  (G·F_bf16·η_attn)), plus δ_A/θ (per-slot work) when ``slot_context_tokens`` θ is given.
- Communication (per worker, both directions, every layer): α_C = 2·L·latency,
  β_C = 2·L·h·2 bytes·c / (G·link·η_link), with c the expected destinations a token's k experts
  land on under EP (FFN GPUs over a scale-up fabric, FFN nodes over NICs) and 1 otherwise;
  a TP Attention instance adds its per-layer all-reduce (L·latency_up, and
  L·h·2 bytes·2(G−1)/G / (link_up·η_link) per token). ``ffn_ingress=True`` adds the FFN side's
  links, γ_C = bytes/(g_F·link·η) per token of r·B.
- FFN (instance of g_F GPUs, EP or TP), per GPU and layer: the all-gather and reduce-scatter of
  the N tokens inside the node, the router GEMM, the fused MoE over the distinct experts a
  batch of N tokens activates, E·(1 − (1 − k/E)^N), of those the GPU holds (with the routing
  law's slowdown), shared experts; or the dense GEMMs split over g_F. F is the FP8 peak for FP8
  weights. t_F is not affine in N, so α_F, β_F are its least-squares line over an operating
  range of N, in relative error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._hardware import HardwareSpec
from afdsizer.cost._kernel_time import (
    MoeRouting,
    collective_time_s,
    gemm_time_s,
    moe_kernel_time_s,
)
from afdsizer.cost._model import UNQUANTIZED_WEIGHT_BYTES, ModelSpec
from afdsizer.cost._sharding import (
    ACTIVATION_BYTES,
    DeploymentMemory,
    _attention_params_per_gpu,
    attention_gpus_per_worker,
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
    "resolve_moe_routing",
    "roofline_coefficients",
    "roofline_memory",
]

LinkKind = Literal["auto", "scale-up", "scale-out"]
EAGER_FP8_BLOCK_GEMM_FLOOR_S = 92e-6
"""The floor of the measured vLLM block-FP8 (DeepGemm) rows, s: host dispatch, timed without
CUDA graphs. ``RooflineEfficiency(fp8_block_gemm_floor_s=EAGER_FP8_BLOCK_GEMM_FLOOR_S)``
models an engine that runs decode eagerly (``benchmarks/roofline_priors.py`` prints the fit)."""

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
    """Achieved fractions of datasheet peaks and fixed kernel times of a decode step.

    The defaults are priors fitted to the measured vLLM 0.24.0 and NCCL 2.29.2 tables of H100
    SXM and H200 SXM (``shared/calibration``) by ``benchmarks/roofline_priors.py``, which prints
    each fit and its error; docs/cost.md ("Kernel priors") lists them. Fractions apply to the
    GPU's own peaks, so the same prior serves every GPU of a preset; the fixed times are per
    kernel call (launch, synchronisation and tail), which the rows show to be a floor no peak
    can explain.

    Parameters
    ----------
    hbm_bandwidth_frac : float
        η_BW, HBM fraction a GEMM reaches streaming its weights (decode GEMMs are weight-bound).
    gemm_flops_frac, fp8_gemm_flops_frac : float
        η_F, fraction of the bf16 / FP8 dense peak in compute-bound GEMMs.
    kernel_launch_s : float
        Fixed time of every GEMM, norm and elementwise kernel, s.
    fp8_activation_quant_s : float
        Extra fixed time of an FP8 GEMM, per-tensor or block-scaled: the dynamic quantization
        of its input (one more kernel), s.
    fp8_block_gemm_floor_s : float, default 0
        Least time of a 128x128 block-scaled FP8 GEMM, s. 0: none. The measured vLLM DeepGemm
        rows are flat at ~92 µs up to m = 1024, but aiconfigurator's collector times block-FP8
        GEMMs without CUDA graphs (alone of its GEMMs), so that floor is host dispatch, which a
        CUDA-graph decode step does not pay (docs/cost.md, "Kernel priors"); 92e-6 models an
        eager-mode engine.
    attention_kernel_s : float
        Fixed time of one decode-attention call (one layer), s.
    attention_per_request_head_s : float
        Decode-attention time per (request, KV head on the GPU), s: query load, split-KV
        combine and output write, which the rows show beside the KV read.
    attention_bandwidth_frac, attention_fp8_kv_bandwidth_frac : float
        HBM fraction decode attention reaches reading a bf16/fp16 or an FP8 KV cache.
    attention_flops_frac : float
        η_attn, fraction of the bf16 peak in compute-bound decode attention (absorbed MLA); not
        fitted (the MLA module rows include the projections).
    moe_kernel_s : float
        Fixed time of one fused-MoE call (routing, permute, two grouped GEMMs, un-permute), s.
    moe_bandwidth_frac : float
        HBM fraction a fused-MoE call reaches reading the activated experts.
    moe_flops_frac, moe_fp8_flops_frac : float
        Fraction of the bf16 / FP8 dense peak in the grouped GEMMs under balanced routing.
    moe_half_rate_expert_params : float
        Weights per expert at which the grouped GEMMs reach half of their fraction (small
        experts run less efficiently), weights.
    moe_power_law_slowdown : float
        Factor (>= 1) on the grouped GEMMs' compute time when expert loads follow a power law
        (``moe_routing="power_law"``), from the tables' power-law (α = 1.2) rows; the bf16 and
        block-FP8 kernels give the same factor within 4%.
    link_bandwidth_frac : float
        η_link, fraction of a link's bandwidth for the Attention↔FFN activation transfers.
    collective_bandwidth_frac : float
        Fraction of the scale-up bandwidth an NCCL all-gather / reduce-scatter reaches.
    collective_step_s : float
        Latency an NCCL all-gather / reduce-scatter adds per GPU beyond two, s.
    attention_overhead_s_per_layer, ffn_overhead_s_per_layer : float, default 0
        Extra fixed time per layer on each side beyond the modelled kernels (rope, sampling,
        framework gaps), s.
    memory_reserve_frac : float, default 0.1
        Share of HBM kept free for activations, CUDA graphs and fragmentation.
    """

    # Fitted by benchmarks/roofline_priors.py on shared/calibration (H100 SXM + H200 SXM).
    hbm_bandwidth_frac: float = 0.80
    gemm_flops_frac: float = 0.78
    fp8_gemm_flops_frac: float = 0.41
    kernel_launch_s: float = 3.2e-6
    fp8_activation_quant_s: float = 5.3e-6
    fp8_block_gemm_floor_s: float = 0.0
    attention_kernel_s: float = 12.7e-6
    attention_per_request_head_s: float = 21.7e-9
    attention_bandwidth_frac: float = 0.93
    attention_fp8_kv_bandwidth_frac: float = 0.67
    attention_flops_frac: float = 0.5
    moe_kernel_s: float = 37.5e-6
    moe_bandwidth_frac: float = 0.89
    moe_flops_frac: float = 0.52
    moe_fp8_flops_frac: float = 0.38
    moe_half_rate_expert_params: float = 5.2e6
    moe_power_law_slowdown: float = 1.75
    link_bandwidth_frac: float = 0.8
    collective_bandwidth_frac: float = 0.55
    collective_step_s: float = 0.84e-6
    attention_overhead_s_per_layer: float = 0.0
    ffn_overhead_s_per_layer: float = 0.0
    memory_reserve_frac: float = 0.1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "memory_reserve_frac":
                ok, rule = 0 <= value < 1, "in [0, 1)"
            elif f.name.endswith("_frac"):
                ok, rule = 0 < value <= 1, "in (0, 1]"
            elif f.name.endswith("_slowdown"):
                ok, rule = value >= 1, ">= 1"
            elif f.name.endswith("_params"):
                ok, rule = value >= 0, ">= 0 weights"
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
        return Deployment(**changes)  # type: ignore[arg-type]  # Deployment validates them
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


def resolve_moe_routing(model: ModelSpec, moe_routing: str | None) -> MoeRouting:
    """The expert-load law: ``moe_routing``, or for None the family default (power law).

    aiconfigurator 0.12.0 reads power-law expert loads for every MoE family it models (α = 1.2
    for Qwen3 MoE, 1.01 for DeepSeek and the others); the measured kernels under such loads run
    up to 1.8x the balanced ones once compute-bound, so balanced routing is the exception that
    must be asked for. Dense models have no routing (the value is unused).

    Raises
    ------
    InputError
        ``moe_routing`` is not balanced or power_law.
    """
    if moe_routing is None:
        return "power_law"
    if moe_routing not in ("balanced", "power_law"):
        raise InputError(f"moe_routing must be balanced or power_law, got {moe_routing!r}")
    return moe_routing  # type: ignore[return-value]


def _scale_up(hardware: HardwareSpec, link: str) -> bool:
    """Whether Attention↔FFN traffic uses the scale-up fabric (see :data:`LinkKind`)."""
    if link not in ("auto", "scale-up", "scale-out"):
        raise InputError(f"link must be auto, scale-up or scale-out, got {link!r}")
    return link == "scale-up" or (
        link == "auto" and hardware.scale_up_domain_gpus >= _SCALE_UP_MIN_DOMAIN_GPUS
    )


def _ffn_collectives_s(
    m: ModelSpec,
    hw: HardwareSpec,
    dep: Deployment,
    N: npt.NDArray[np.float64],
    eff: RooflineEfficiency,
    *,
    scale_up: bool,
) -> npt.NDArray[np.float64]:
    """Per layer: all-gather of the tokens before the FFN and reduce-scatter after, s.

    Tokens reach the FFN instance on one GPU each (one copy per FFN node over NICs); the
    all-gather gives every GPU of the node all of them (EP dispatch, TP input), the
    reduce-scatter sums the partial outputs back (EP combine, TP reduction): the same volume
    as a TP all-reduce. Under EP over a scale-up fabric the Attention side sends each token to
    its experts' GPUs itself, so there is none.
    """
    g, ep = dep.ffn_gpus, resolve_ffn_parallel(m, dep) == "ep"
    if g == 1 or (ep and scale_up):
        return np.zeros_like(N)
    tokens = N
    group = g
    if ep:
        group = min(g, hw.scale_up_domain_gpus)
        nodes = math.ceil(g / group)
        # Each node gathers the tokens that touch it: N · (nodes per token) / nodes.
        tokens = N * ffn_token_copies(m, dep, gpus_per_destination=group) / nodes
    volume = tokens * m.hidden_size * ACTIVATION_BYTES
    return 2.0 * collective_time_s(volume, group, hardware=hw, efficiency=eff)


def _gemm(
    m: ModelSpec, hw: HardwareSpec, eff: RooflineEfficiency, N: npt.ArrayLike, n: float, k: float
) -> npt.NDArray[np.float64]:
    """One projection/expert GEMM of the model's precision."""
    return gemm_time_s(
        N,
        n,
        k,
        weight_bytes=m.weight_bytes_per_param,
        quantization=m.quantization,
        hardware=hw,
        efficiency=eff,
    )


def _router_gemm(
    m: ModelSpec, hw: HardwareSpec, eff: RooflineEfficiency, N: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The MoE router (16-bit even in FP8 checkpoints) over all N tokens on every GPU."""
    return gemm_time_s(
        N,
        m.num_experts,
        m.hidden_size,
        weight_bytes=UNQUANTIZED_WEIGHT_BYTES,
        quantization=None,
        hardware=hw,
        efficiency=eff,
    )


def ffn_roofline_time_s(
    model: ModelSpec,
    hardware: HardwareSpec,
    tokens: npt.ArrayLike,
    *,
    ffn_gpus: int | None = None,
    efficiency: RooflineEfficiency | None = None,
    deployment: Deployment | None = None,
    moe_routing: str | None = None,
    link: LinkKind = "auto",
) -> npt.NDArray[np.float64]:
    """Roofline FFN time of one pass (all layers) for N tokens on one FFN GPU, s.

    Per MoE layer: the router GEMM over the N tokens, the fused-MoE kernel over the GPU's
    activated experts (⌈E/g⌉ whole experts under EP, 1/g of each under TP; distinct experts of
    N tokens under uniform routing, E·(1 − (1 − k/E)^N)) with the routing law's slowdown, the
    shared experts' GEMMs; per dense layer the gate/up and down GEMMs split over g and the
    activation kernel; per layer the all-gather and reduce-scatter inside the instance
    (:mod:`afdsizer.cost._kernel_time` has each kernel's form).

    Parameters
    ----------
    tokens : array-like of shape (n,)
        N, tokens in the FFN batch of one pass (r·B/m with m microbatches).
    ffn_gpus : int, optional
        g_F; default the deployment's.
    deployment : Deployment, optional
        GPUs, FFN parallelism and weight dtype; default :class:`Deployment()`.
    moe_routing : {"balanced", "power_law"}, optional
        Expert-load law; default :func:`resolve_moe_routing`'s.
    link : {"auto", "scale-up", "scale-out"}
        Fabric the tokens arrive on (EP over a scale-up fabric needs no gather).
    """
    dep = resolve_deployment(deployment, ffn_gpus=ffn_gpus)
    eff = efficiency or RooflineEfficiency()
    m = model.with_weight_dtype(dep.weight_dtype)
    routing = resolve_moe_routing(m, moe_routing)
    N = np.asarray(tokens, dtype=np.float64)
    g, h = dep.ffn_gpus, m.hidden_size
    t = np.full_like(N, m.num_layers * eff.ffn_overhead_s_per_layer)
    t += m.num_layers * _ffn_collectives_s(
        m, hardware, dep, N, eff, scale_up=_scale_up(hardware, link)
    )
    if m.num_dense_layers:
        inter = m.intermediate_size
        dense = _gemm(m, hardware, eff, N, 2 * inter / g, h)
        dense += _gemm(m, hardware, eff, N, h, inter / g)
        t += m.num_dense_layers * (dense + eff.kernel_launch_s)
    if m.num_moe_layers:
        ep = resolve_ffn_parallel(m, dep) == "ep"
        # Share of the routed experts on one GPU: ⌈E/g⌉ whole experts (EP) or 1/g of each (TP).
        held = math.ceil(m.num_experts / g) / m.num_experts if ep else 1.0 / g
        wb = m.weight_bytes_per_param
        read = m.distinct_experts(N) * m.expert_params * wb * held
        flop = 2.0 * N * m.experts_per_token * m.expert_params * held
        layer = _router_gemm(m, hardware, eff, N) + moe_kernel_time_s(
            read,
            flop,
            weight_bytes=wb,
            expert_params=m.expert_params,
            routing=routing,
            hardware=hardware,
            efficiency=eff,
        )
        if m.shared_intermediate_size:
            Is = m.shared_intermediate_size
            layer += _gemm(m, hardware, eff, N, 2 * Is / g, h) + _gemm(
                m, hardware, eff, N, h, Is / g
            )
        t += m.num_moe_layers * layer
    return t


def affine_fit_rel(
    x: npt.ArrayLike, t_s: npt.ArrayLike
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """Least-squares line t ≈ α + β·x in relative error, with α, β > 0.

    Minimises Σ ((α + β·x_i − t_i)/t_i)², so small and large times weigh alike, subject to
    α, β >= 1e-12. A convex quadratic in two unknowns with lower bounds has its minimum at the
    unconstrained solution when that is feasible, else on a bound, where the other unknown is a
    one-dimensional least squares: so the fit is closed-form (scipy's bounded solver gives the
    same answer, ``tests/cost/test_roofline.py``, and costs ~0.2 s of import at start-up).

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
    alpha, beta = _bounded_least_squares_2(A, np.ones_like(T), _FIT_FLOOR)
    rel = np.abs(alpha + beta * X - T) / T
    return alpha, beta, rel


_FIT_FLOOR = 1e-12
"""Least α and β of :func:`affine_fit_rel` (s, s per unit): both stay positive."""


def _bounded_least_squares_2(
    A: npt.NDArray[np.float64], y: npt.NDArray[np.float64], floor: float
) -> tuple[float, float]:
    """argmin ||A·u − y||² over u >= floor (two columns), exactly."""
    # Columns scaled to unit norm so both unknowns are solved to the same precision.
    norms = np.linalg.norm(A, axis=0)
    B = A / norms
    lo = floor * norms
    u, *_ = np.linalg.lstsq(B, y, rcond=None)
    if u[0] >= lo[0] and u[1] >= lo[1]:
        return _unscaled(u, norms, floor)
    candidates = [np.array([lo[0], lo[1]])]
    for fixed in (0, 1):
        free = 1 - fixed
        rest = y - B[:, fixed] * lo[fixed]
        value = max(lo[free], float(B[:, free] @ rest))  # unit column: the 1-D solution
        point = np.empty(2)
        point[fixed], point[free] = lo[fixed], value
        candidates.append(point)
    best = min(candidates, key=lambda v: float(np.sum((B @ v - y) ** 2)))
    return _unscaled(best, norms, floor)


def _unscaled(
    u: npt.NDArray[np.float64], norms: npt.NDArray[np.float64], floor: float
) -> tuple[float, float]:
    # Dividing a bound back by its column norm can round it a hair below the floor.
    return max(floor, float(u[0] / norms[0])), max(floor, float(u[1] / norms[1]))


def _attention_gemms_s(
    m: ModelSpec, hw: HardwareSpec, dep: Deployment, eff: RooflineEfficiency
) -> float:
    """One layer's projection GEMMs on one Attention GPU at decode sizes (weight-bound), s.

    GQA: the fused q/k/v projection and the output projection. MLA: four GEMMs (q_a with kv_a,
    q_b, the absorbed kv_b, o) sharing the layer's weights. Their compute grows with the batch,
    not with the KV load, and hides under the weight read (or the FP8 floor) at decode sizes.
    """
    G = attention_gpus_per_worker(m, dep)
    if m.is_mla:
        proj, _ = _attention_params_per_gpu(m, G)
        share = proj / m.num_layers / 4
        return float(4 * _gemm(m, hw, eff, 0.0, share, 1.0))
    return gqa_projections_s(
        m, hw, G, eff, weight_bytes=m.weight_bytes_per_param, quantization=m.quantization
    )


def gqa_projections_s(
    m: ModelSpec,
    hw: HardwareSpec,
    gpus: int,
    eff: RooflineEfficiency,
    *,
    weight_bytes: float,
    quantization: str | None,
) -> float:
    """One GQA layer's fused q/k/v and output projections on a GPU with 1/``gpus`` of the
    heads, at decode sizes (m = 0: launch, quantization, weight read), s."""
    d, h = m.head_dim, m.hidden_size
    q = m.num_attention_heads // gpus
    kv = max(1, m.num_kv_heads // gpus)

    def gemm(n: float, k: float) -> npt.NDArray[np.float64]:
        return gemm_time_s(0.0, n, k, weight_bytes=weight_bytes, quantization=quantization,
                           hardware=hw, efficiency=eff)  # fmt: skip

    return float(gemm((q + 2 * kv) * d, h) + gemm(h, q * d))


def lm_head_s(m: ModelSpec, hw: HardwareSpec, gpus: int, eff: RooflineEfficiency) -> float:
    """The 16-bit LM head on a GPU with 1/``gpus`` of the vocabulary, once per pass, s."""
    return float(
        gemm_time_s(
            0.0,
            m.vocab_size / gpus,
            m.hidden_size,
            weight_bytes=UNQUANTIZED_WEIGHT_BYTES,
            quantization=None,
            hardware=hw,
            efficiency=eff,
        )
    )


def _attention_per_slot_s(
    m: ModelSpec, hw: HardwareSpec, dep: Deployment, eff: RooflineEfficiency, per_destination: int
) -> float:
    """δ_A, Attention time per slot and pass (all layers) that the KV load does not carry, s.

    The attention kernel's per-(request, KV head) work; the two add+RMSNorm kernels, which read
    and write x and the residual (4·h elements each); under EP the combine, which reads the
    partial results (one per FFN node over NICs, per expert GPU over a scale-up fabric, as the
    transfer counts them) and the residual and writes the sum.
    """
    G, h = attention_gpus_per_worker(m, dep), m.hidden_size
    kv_heads = 1 if m.is_mla else max(1, m.num_kv_heads // G)
    moved = 2.0 * 4 * h
    if m.is_moe and resolve_ffn_parallel(m, dep) == "ep":
        moved += (ffn_token_copies(m, dep, gpus_per_destination=per_destination) + 2) * h
    bw = hw.hbm_bandwidth_bytes_per_s * eff.hbm_bandwidth_frac
    per_layer = eff.attention_per_request_head_s * kv_heads + moved * ACTIVATION_BYTES / bw
    return m.num_layers * per_layer


def _attention_terms(
    m: ModelSpec,
    hardware: HardwareSpec,
    dep: Deployment,
    eff: RooflineEfficiency,
    slot_context_tokens: float | None,
    per_destination: int,
) -> tuple[float, float]:
    """(α_A, β_A) of one worker.

    α_A per layer: the projection GEMMs, the attention call, the two add+RMSNorm kernels, the
    combine of the experts' partial results under EP; per pass the LM head and the embedding.
    β_A: KV bytes per cached token per GPU at the kernel's achieved bandwidth (or MLA's FLOPs).
    Per-slot work (the attention kernel's per-request part, the norms' and combine's
    activations) is folded into β_A as δ/θ when ``slot_context_tokens`` θ is given.
    """
    G = attention_gpus_per_worker(m, dep)
    L, launch = m.num_layers, eff.kernel_launch_s
    ep = m.is_moe and resolve_ffn_parallel(m, dep) == "ep"
    per_layer = _attention_gemms_s(m, hardware, dep, eff) + eff.attention_kernel_s
    per_layer += 2 * launch + (launch if ep else 0.0) + eff.attention_overhead_s_per_layer
    alpha = L * per_layer + lm_head_s(m, hardware, G, eff) + launch  # + the embedding gather
    kv_bw = hardware.hbm_bandwidth_bytes_per_s * (
        eff.attention_fp8_kv_bandwidth_frac
        if dep.kv_dtype == "fp8"
        else eff.attention_bandwidth_frac
    )
    flops = G * hardware.dense_flops_per_s["bf16"] * eff.attention_flops_frac
    beta = max(kv_bytes_per_token_per_gpu(m, dep) / kv_bw, m.attention_flop_per_kv_token / flops)
    if slot_context_tokens is not None:
        theta = slot_context_tokens
        if (
            isinstance(theta, bool)
            or not isinstance(theta, int | float)
            or not 0 < theta < math.inf
        ):
            raise InputError(
                "slot_context_tokens must be a finite number > 0 (KV tokens per slot), "
                f"got {theta!r}"
            )
        beta += _attention_per_slot_s(m, hardware, dep, eff, per_destination) / theta
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
    scale_up = _scale_up(hardware, link)
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
    moe_routing: str | None = None,
    slot_context_tokens: float | None = None,
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
        Also charge the FFN side's ingress (γ_C > 0), docs/design.md §2.
    efficiency : RooflineEfficiency, optional
        Efficiency factors; defaults as documented there.
    ffn_tokens_range : (int, int)
        Operating range of N for the linearisation of t_F, tokens; its top is also the FFN
        batch whose activations must fit.
    moe_routing : {"balanced", "power_law"}, optional
        Expert-load law of the MoE kernels; default power law, as aiconfigurator assumes for
        every MoE family (:func:`resolve_moe_routing`).
    slot_context_tokens : float, optional
        θ, mean KV tokens per slot: folds the per-slot Attention work (δ_A) into β_A as δ_A/θ.
        Without it that work (about 2 µs per slot and step on the presets) is left out.

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
    # The EP partial results come back one per destination, as the transfer counts them.
    per_dest = 1 if _scale_up(hardware, link) else fhw.scale_up_domain_gpus
    alpha_attn, beta_attn = _attention_terms(m, hardware, dep, eff, slot_context_tokens, per_dest)
    alpha_comm, beta_comm, gamma_comm, scale_up = _comm_terms(
        m, hardware, fhw, dep, eff, link=link, ffn_ingress=ffn_ingress
    )
    # FFN: linearise the exact roofline over the operating range.
    grid = np.unique(np.geomspace(lo, hi, _FIT_POINTS).round())
    t_f = ffn_roofline_time_s(
        m, fhw, grid, efficiency=eff, deployment=dep, moe_routing=moe_routing, link=link
    )
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
            + (f", {resolve_moe_routing(m, moe_routing)} routing" if m.is_moe else "")
        ),
    )
