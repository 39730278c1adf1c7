"""How a deployment splits the model over each side's GPUs, and what one GPU must hold.

docs/design.md §9. An Attention instance is g_A GPUs:

- **TP** (``attn_parallel="tp"``): heads split. Each GPU holds 1/g_A of the query and output
  projections and of the vocabulary-parallel embedding and LM head; K/V projections and the KV
  cache are split by KV head, but a KV head cannot be split, so beyond g_A = H_kv every GPU keeps
  one (KV replicated g_A/H_kv times). MLA's latent cache is shared by all heads: every TP GPU
  keeps all of it, and the latent down-projections (q_a, kv_a) too.
- **DP** (``"dp"``): every GPU is a worker with its own slots and a full copy of the weights.

An FFN instance is g_F GPUs: **EP** splits the routed experts (⌈E/g_F⌉ whole experts per GPU),
**TP** splits every matrix; dense MLPs, shared experts and routers are split over g_F either way.
Memory is checked per GPU: weights of its side plus the KV cache (Attention) or the activations
of the largest FFN batch (FFN), under a reserve for CUDA graphs and fragmentation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Literal

from afdsizer.cost._hardware import HardwareSpec
from afdsizer.cost._model import KV_DTYPE_BYTES, UNQUANTIZED_WEIGHT_BYTES, ModelSpec
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = [
    "ACTIVATION_BYTES",
    "DeploymentMemory",
    "attention_gpus_per_worker",
    "attention_streamed_bytes_per_gpu",
    "attention_weight_bytes_per_gpu",
    "check_attention_fits",
    "check_batch_fits",
    "check_ffn_fits",
    "deployment_memory",
    "ffn_activation_bytes_per_gpu",
    "ffn_token_copies",
    "ffn_weight_bytes_per_gpu",
    "kv_bytes_per_token_per_gpu",
    "max_batch_per_worker",
    "resolve_ffn_parallel",
    "worker_batch",
]

ACTIVATION_BYTES = 2
"""Bytes per activation element (bf16) sent between the sides and held during the FFN."""

_MAX_SEARCH_GPUS = 4096
"""Largest GPU count tried when naming the smallest instance whose weights fit."""

_PRODUCT_TERMS_MAX = 1024
"""Top-k up to which the EP miss probability is an explicit product (log-gamma beyond)."""


def _size(nbytes: float) -> str:
    """Bytes as GB, or MB/kB when small (decimal units, as datasheets give HBM)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if nbytes >= 0.1 * scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 1e3:.1f} kB"


def resolve_ffn_parallel(model: ModelSpec, deployment: Deployment) -> Literal["ep", "tp"]:
    """The FFN parallelism: ``deployment.ffn_parallel``; auto = EP for MoE, TP for dense models
    (and for MoE models with more FFN GPUs than routed experts).

    Raises
    ------
    InputError
        EP on a dense model, or more EP GPUs than routed experts.
    """
    mode = deployment.ffn_parallel
    if mode == "auto":
        return "ep" if 0 < deployment.ffn_gpus <= model.num_experts else "tp"
    if mode == "ep" and not model.is_moe:
        raise InputError(f"ffn_parallel ep needs routed experts; {model.name} is dense (use tp)")
    if mode == "ep" and deployment.ffn_gpus > model.num_experts:
        raise InputError(
            f"ffn_gpus={deployment.ffn_gpus} must not exceed the {model.num_experts} routed "
            f"experts of {model.name} under ffn_parallel ep (use tp, or fewer GPUs)"
        )
    return mode


def attention_gpus_per_worker(model: ModelSpec, deployment: Deployment) -> int:
    """GPUs one barrier worker spans: g_A under TP (heads split), 1 under DP.

    Raises
    ------
    InputError
        Under TP, g_A does not divide the heads, or (GQA) neither g_A nor H_kv divides the other.
    """
    if deployment.attn_parallel == "dp":
        return 1
    g, H, Hkv = deployment.attn_gpus, model.num_attention_heads, model.num_kv_heads
    if H % g:
        raise InputError(
            f"attn_gpus={g} must divide the {H} attention heads of {model.name} under "
            "attn_parallel tp"
        )
    if not model.is_mla and Hkv % g and g % Hkv:
        raise InputError(
            f"attn_gpus={g} and the {Hkv} KV heads of {model.name} must divide one another "
            "under attn_parallel tp"
        )
    return g


def _kv_heads_per_gpu(model: ModelSpec, g: int) -> int:
    # A KV head is not split: past g = H_kv each GPU keeps one (replicated g/H_kv times).
    return max(1, model.num_kv_heads // g)


def _attention_params_per_gpu(model: ModelSpec, g: int) -> tuple[float, float]:
    """(projection params of all layers, embedding + LM head params) held by one of g TP GPUs."""
    h, H, L = model.hidden_size, model.num_attention_heads, model.num_layers
    if model.is_mla:
        q_a = h * model.q_lora_rank
        kv_a = h * (model.kv_lora_rank + model.qk_rope_head_dim)
        split = model.attention_params_per_layer - q_a - kv_a
        per_layer = q_a + kv_a + split / g  # the latent down-projections stay whole
    else:
        d = model.head_dim
        per_layer = 2 * h * H * d / g + 2 * h * d * _kv_heads_per_gpu(model, g)
    return L * per_layer, model.embedding_params / g


def attention_weight_bytes_per_gpu(model: ModelSpec, deployment: Deployment) -> float:
    """Attention-side weight bytes on one Attention GPU (full copy under DP)."""
    proj, emb = _attention_params_per_gpu(model, attention_gpus_per_worker(model, deployment))
    return proj * model.weight_bytes_per_param + emb * UNQUANTIZED_WEIGHT_BYTES


def attention_streamed_bytes_per_gpu(model: ModelSpec, deployment: Deployment) -> float:
    """Weight bytes one Attention GPU reads per decode step: its projections and LM-head share."""
    g = attention_gpus_per_worker(model, deployment)
    proj, _ = _attention_params_per_gpu(model, g)
    return proj * model.weight_bytes_per_param + model.lm_head_bytes / g


def kv_bytes_per_token_per_gpu(model: ModelSpec, deployment: Deployment) -> float:
    """KV bytes one cached token of a worker occupies on each of the worker's GPUs."""
    g = attention_gpus_per_worker(model, deployment)
    full = model.kv_bytes_per_token(deployment.kv_dtype)
    if model.is_mla or g == 1:
        return float(full)  # MLA: every head reads the one latent, so TP GPUs all keep it
    b = KV_DTYPE_BYTES[deployment.kv_dtype]
    return float(2 * _kv_heads_per_gpu(model, g) * model.head_dim * model.num_layers * b)


def ffn_token_copies(
    model: ModelSpec, deployment: Deployment, *, gpus_per_destination: int = 1
) -> float:
    """Expected copies of a token's activation sent to the FFN instance per direction and layer.

    EP: one per destination holding at least one of its k experts, a destination being a group
    of ``gpus_per_destination`` FFN GPUs: 1 for GPU-to-GPU links (every GPU is addressed), the
    scale-up domain for NIC traffic (one copy per node crosses the network and is forwarded over
    NVLink inside it, as DeepEP's internode kernels do). Under uniform routing without
    replacement a destination with E/n of the experts (n destinations) is missed with
    probability Π_{i<k} (E − E/n − i)/(E − i), so the copies are n·(1 − that) (≤ min(k, n)).
    TP (and dense): one; the instance's own all-reduce is charged to t_F.
    """
    if resolve_ffn_parallel(model, deployment) != "ep":
        return 1.0
    E, k = model.num_experts, model.experts_per_token
    n = math.ceil(deployment.ffn_gpus / gpus_per_destination)
    return n * (1.0 - _miss_probability(E, k, E / n))


def _miss_probability(E: int, k: int, held: float) -> float:
    """P(none of k experts drawn without replacement from E is among ``held`` given ones)."""
    if E - held - k + 1 <= 0:
        return 0.0
    if k <= _PRODUCT_TERMS_MAX:
        miss = 1.0
        for i in range(k):
            miss *= (E - held - i) / (E - i)
        return miss
    # NOTE: the same product through log-gamma, so a hostile top-k of millions stays O(1).
    lg = math.lgamma
    return math.exp(lg(E - held + 1) - lg(E - held - k + 1) + lg(E - k + 1) - lg(E + 1))


def _experts_per_gpu(model: ModelSpec, deployment: Deployment) -> float:
    """Routed experts' share on one FFN GPU, in experts: ⌈E/g_F⌉ (EP) or E/g_F (TP)."""
    g = deployment.ffn_gpus
    if resolve_ffn_parallel(model, deployment) == "ep":
        return float(math.ceil(model.num_experts / g))
    return model.num_experts / g


def ffn_weight_bytes_per_gpu(model: ModelSpec, deployment: Deployment) -> float:
    """FFN-side weight bytes on one FFN GPU."""
    g = deployment.ffn_gpus
    wb = model.weight_bytes_per_param
    dense = model.num_dense_layers * model.dense_mlp_params * wb / g
    routed = _experts_per_gpu(model, deployment) * model.expert_params * wb
    shared = model.shared_expert_params * wb / g
    router = model.router_params * UNQUANTIZED_WEIGHT_BYTES / g
    return dense + model.num_moe_layers * (routed + shared + router)


def ffn_activation_bytes_per_gpu(model: ModelSpec, deployment: Deployment, tokens: float) -> float:
    """Activations one FFN GPU holds for an FFN batch of N tokens (one layer live at a time).

    Inputs and outputs (2·h per token copy received) and the gate/up outputs (2·I per token,
    split over g_F), at :data:`ACTIVATION_BYTES` each.
    """
    g = deployment.ffn_gpus
    # Every TP GPU sees every token; an EP GPU the copies routed to its experts.
    tp = resolve_ffn_parallel(model, deployment) == "tp"
    share = 1.0 if tp else ffn_token_copies(model, deployment) / g
    width = model.experts_per_token * model.moe_intermediate_size + model.shared_intermediate_size
    width = max(width, model.intermediate_size if model.num_dense_layers else 0)
    return ACTIVATION_BYTES * tokens * (2 * model.hidden_size * share + 2 * width / g)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentMemory:
    """Per-GPU memory of one deployment, both sides, bytes (docs/design.md §9).

    Parameters
    ----------
    attn_parallel, ffn_parallel : str
        Resolved parallelism of each side ("tp"/"dp"; "ep"/"tp").
    workers_per_instance : int
        Barrier workers per Attention instance (g_A under DP, else 1).
    attn_usable_bytes_per_gpu, ffn_usable_bytes_per_gpu : float
        HBM of one GPU after the reserve, bytes.
    attn_weight_bytes_per_gpu : float
        Attention-side weights on one Attention GPU, bytes.
    kv_bytes_per_token_per_gpu : float
        KV bytes one cached token of a worker takes on each of its GPUs, bytes.
    kv_capacity_tokens : float
        KV tokens one worker can hold (an instance under TP, a GPU under DP).
    ffn_weight_bytes_per_gpu, ffn_activation_bytes_per_gpu : float
        FFN-side weights and the activations of the largest FFN batch on one FFN GPU, bytes.
    ffn_tokens : float
        The FFN batch N the activations are sized for, tokens.
    """

    attn_parallel: str
    ffn_parallel: str
    workers_per_instance: int
    attn_usable_bytes_per_gpu: float
    attn_weight_bytes_per_gpu: float
    kv_bytes_per_token_per_gpu: float
    kv_capacity_tokens: float
    ffn_usable_bytes_per_gpu: float
    ffn_weight_bytes_per_gpu: float
    ffn_activation_bytes_per_gpu: float
    ffn_tokens: float

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain dict of all fields (JSON friendly)."""
        return dataclasses.asdict(self)


def _smallest_fitting(fits: Callable[[int], bool], candidates: Iterable[int]) -> int | None:
    return next((g for g in candidates if fits(g)), None)


def check_attention_fits(
    model: ModelSpec, hardware: HardwareSpec, deployment: Deployment, usable: float
) -> None:
    need = attention_weight_bytes_per_gpu(model, deployment)
    if need < usable:
        return
    where = (
        f"attention weights of {model.name} ({model.weight_dtype}) need {_size(need)} "
        f"per GPU on {deployment.attn_gpus} x {hardware.name} ({deployment.attn_parallel}), "
        f"{_size(usable)} available after the reserve"
    )
    H = model.num_attention_heads

    def fits(g: int) -> bool:
        tp = deployment.replace(attn_gpus=g, attn_parallel="tp")
        try:
            return attention_weight_bytes_per_gpu(model, tp) < usable
        except InputError:  # g not a valid TP degree for these heads
            return False

    top = min(H, _MAX_SEARCH_GPUS)
    g = _smallest_fitting(fits, range(1, top + 1))
    if g is None:
        raise InputError(f"{where}; no tensor-parallel degree up to {top} GPUs fits")
    if deployment.attn_parallel == "dp":
        raise InputError(
            f"{where}; DP attention keeps a full copy on every GPU: use --attn-parallel tp "
            f"with --attn-gpus {g} or more"
        )
    raise InputError(f"{where}; the smallest Attention instance that fits is --attn-gpus {g}")


def check_ffn_fits(
    model: ModelSpec, hardware: HardwareSpec, deployment: Deployment, usable: float, tokens: float
) -> None:
    def need(d: Deployment) -> float:
        return ffn_weight_bytes_per_gpu(model, d) + ffn_activation_bytes_per_gpu(model, d, tokens)

    got = need(deployment)
    if got < usable:
        return
    mode = resolve_ffn_parallel(model, deployment)
    top = min(model.num_experts, _MAX_SEARCH_GPUS) if mode == "ep" else _MAX_SEARCH_GPUS
    g = _smallest_fitting(
        lambda n: need(deployment.replace(ffn_gpus=n, ffn_parallel=mode)) < usable,
        range(deployment.ffn_gpus + 1, top + 1),
    )
    hint = (
        f"the smallest FFN instance that fits is --ffn-gpus {g}"
        if g
        else (f"no {mode.upper()} instance up to {top} GPUs fits")
    )
    raise InputError(
        f"FFN weights of {model.name} ({model.weight_dtype}) plus activations of {tokens:.0f} "
        f"tokens need {_size(got)} per GPU on {deployment.ffn_gpus} x {hardware.name} "
        f"({mode}), {_size(usable)} available after the reserve; {hint}"
    )


def deployment_memory(
    model: ModelSpec,
    hardware: HardwareSpec,
    deployment: Deployment,
    *,
    ffn_hardware: HardwareSpec | None = None,
    reserve_frac: float = 0.1,
    ffn_tokens: float = 4096.0,
) -> DeploymentMemory:
    """Per-GPU memory of both sides, refusing a deployment whose weights do not fit.

    Parameters
    ----------
    model, hardware : ModelSpec, HardwareSpec
        The model (in the precision it is served) and the Attention-side GPU.
    deployment : Deployment
        GPUs and parallelism per side, KV dtype.
    ffn_hardware : HardwareSpec, optional
        FFN-side GPU when it differs.
    reserve_frac : float, default 0.1
        Share of each GPU's HBM kept free (CUDA graphs, fragmentation, attention activations).
    ffn_tokens : float, default 4096
        Largest FFN batch N whose activations must fit, tokens.

    Raises
    ------
    InputError
        A side's weights do not fit one of its GPUs (the message names the side, the GB
        needed and available, and the smallest GPU count that fits), or a parallelism that
        the model's shape does not allow.

    Examples
    --------
    >>> from afdsizer.cost import load_hardware_spec, load_model_spec
    >>> m = load_model_spec("qwen3-235b-a22b-fp8")
    >>> d = Deployment(attn_gpus=8, attn_parallel="dp", ffn_gpus=8)
    >>> mem = deployment_memory(m, load_hardware_spec("h200"), d)
    >>> mem.ffn_parallel, round(mem.ffn_weight_bytes_per_gpu / 1e9, 1)
    ('ep', 28.4)
    """
    fhw = ffn_hardware or hardware
    usable_a = hardware.hbm_capacity_bytes * (1.0 - reserve_frac)
    usable_f = fhw.hbm_capacity_bytes * (1.0 - reserve_frac)
    check_attention_fits(model, hardware, deployment, usable_a)
    check_ffn_fits(model, fhw, deployment, usable_f, ffn_tokens)
    weights_a = attention_weight_bytes_per_gpu(model, deployment)
    kv = kv_bytes_per_token_per_gpu(model, deployment)
    return DeploymentMemory(
        attn_parallel=deployment.attn_parallel,
        ffn_parallel=resolve_ffn_parallel(model, deployment),
        workers_per_instance=deployment.workers_per_instance,
        attn_usable_bytes_per_gpu=usable_a,
        attn_weight_bytes_per_gpu=weights_a,
        kv_bytes_per_token_per_gpu=kv,
        kv_capacity_tokens=float((usable_a - weights_a) // kv),
        ffn_usable_bytes_per_gpu=usable_f,
        ffn_weight_bytes_per_gpu=ffn_weight_bytes_per_gpu(model, deployment),
        ffn_activation_bytes_per_gpu=ffn_activation_bytes_per_gpu(model, deployment, ffn_tokens),
        ffn_tokens=float(ffn_tokens),
    )


def worker_batch(deployment: Deployment) -> int | None:
    """Slots of one barrier worker the deployment fixes: b under DP, B under TP; None if free.

    Raises
    ------
    InputError
        Under DP attention, a ``batch`` that the g_A GPUs cannot share evenly.
    """
    B = deployment.fixed_batch
    if B is None or deployment.attn_parallel == "tp":
        return B
    if B % deployment.attn_gpus:
        raise InputError(
            f"batch {B} must be a multiple of attn_gpus={deployment.attn_gpus} under DP "
            "attention (or give batch_per_gpu)"
        )
    return B // deployment.attn_gpus


def max_batch_per_worker(kv_capacity_tokens: float | None, tokens_per_slot: float) -> int | None:
    """Largest slots per worker whose KV fits: ⌊capacity / tokens per slot⌋ (None: unlimited).

    Parameters
    ----------
    kv_capacity_tokens : float or None
        KV tokens one worker holds (``CostCoefficients.kv_capacity_tokens``).
    tokens_per_slot : float
        KV tokens one slot holds at the load you plan for (θ, a quantile, or ISL + OSL), tokens.

    Raises
    ------
    InputError
        ``tokens_per_slot`` is not a positive finite number.

    Examples
    --------
    >>> max_batch_per_worker(611_432.0, 1_100.0)
    555
    """
    if not (isinstance(tokens_per_slot, int | float) and 0 < tokens_per_slot < math.inf):
        raise InputError(f"tokens_per_slot must be a finite number > 0, got {tokens_per_slot!r}")
    if kv_capacity_tokens is None:
        return None
    return int(kv_capacity_tokens // tokens_per_slot)


def check_batch_fits(
    kv_capacity_tokens: float | None, deployment: Deployment, tokens_per_slot: float
) -> None:
    """Refuse a fixed batch whose KV does not fit its worker, naming the largest that does.

    Raises
    ------
    InputError
        ``batch`` (TP) or ``batch_per_gpu`` (DP) times ``tokens_per_slot`` exceeds the worker's
        KV capacity; the message gives the largest batch that fits.
    """
    b = worker_batch(deployment)
    most = max_batch_per_worker(kv_capacity_tokens, tokens_per_slot)
    if b is None or most is None or b <= most:
        return
    dp = deployment.attn_parallel == "dp"
    option, where = ("--batch-per-gpu", "one GPU") if dp else ("--batch", "one instance")
    hint = f"the largest batch that fits is {option} {most}" if most else "no slot fits"
    raise InputError(
        f"{b} slots x {tokens_per_slot:,.0f} KV tokens = {b * tokens_per_slot:,.0f} tokens "
        f"exceed the {kv_capacity_tokens:,.0f} that {where} holds ({deployment.kv_dtype} KV); "
        f"{hint}"
    )
