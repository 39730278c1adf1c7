"""How a bundle runs, apart from its cost coefficients: the one place every default lives.

A :class:`Deployment` is a frozen value shared by every stage (design §7, §9): the cost stage
reads the GPUs, parallelism and dtypes to build coefficients for it, the theory sizes (B, r) for
it, the simulator steps its pipeline. Every entry point — the CLI commands, the sweep spec,
``calibrate`` and the Python API — takes its defaults from here, so changing one default here
changes it everywhere.

Terms (docs/design.md §9):

- An **Attention instance** is ``attn_gpus`` GPUs. Tensor-parallel (``"tp"``): one batch of B
  slots, heads and weights split. Data-parallel (``"dp"``): each GPU runs its own b slots with a
  full copy of the attention weights, B = g_A·b. The theory's barrier runs over *workers*: the
  instance under TP, each GPU under DP (so r DP instances are r·g_A workers of b slots each).
- An **FFN instance** is ``ffn_gpus`` GPUs, experts split (``"ep"``) or tensor-parallel
  (``"tp"``); ``"auto"`` is EP for MoE models and TP for dense ones.
- **Microbatches** m: each worker's slots split into m groups that ping-pong through the layers.
  m = 1 with the ``"overlapped"`` pipeline is the paper's model (Attention, communication and FFN
  overlap for free); the ``"microbatch"`` pipeline is the m·L-stage flow shop that engines run,
  every microbatch paying the fixed costs again (m = 1 there is serial execution).
- The **objective**: tokens/s per GPU (default), per instance (the paper's Λ) or per dollar.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Literal

from afdsizer.errors import InputError

__all__ = [
    "AttnParallel",
    "BarrierLaw",
    "Deployment",
    "FfnParallel",
    "MoeRouting",
    "ObjectiveName",
    "PipelineName",
]

AttnParallel = Literal["tp", "dp"]
"""Attention instance parallelism: one batch over g_A GPUs, or g_A batches of b slots."""
FfnParallel = Literal["auto", "ep", "tp"]
"""FFN instance parallelism: experts split, tensor-parallel, or EP for MoE / TP for dense."""
ObjectiveName = Literal["gpu", "instance", "dollar"]
"""What (B, r) maximises: tokens/s per GPU, per instance (the paper's Λ), or per dollar."""
BarrierLaw = Literal["auto", "empirical", "gaussian"]
"""Law of a worker's load behind the barrier; auto: the trace's empirical law when there is one."""
MoeRouting = Literal["auto", "balanced", "power_law"]
"""Expert loads the MoE kernels see: uniform, or power-law skewed; auto: power law for MoE."""
PipelineName = Literal["auto", "overlapped", "microbatch"]
"""auto: overlapped when m = 1 (the paper's model), the microbatch flow shop when m >= 2."""

_DTYPES = ("bf16", "fp16", "fp8")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _positive_or_none(name: str, value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(float(value)) and float(value) > 0)
    ):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """Everything about how an rA–1F bundle runs that is not a cost coefficient.

    Parameters
    ----------
    attn_gpus : int, default 1
        g_A, GPUs per Attention instance.
    ffn_gpus : int, default 8
        g_F, GPUs per FFN instance (one 8-GPU node: a 70B model's FFN weights need more than
        one GPU).
    attn_parallel : {"tp", "dp"}, default "tp"
        How an Attention instance's GPUs share its batch (module notes).
    ffn_parallel : {"auto", "ep", "tp"}, default "auto"
        How an FFN instance's GPUs share the experts.
    microbatches : int, default 1
        m, microbatches per worker; must divide the worker's batch.
    pipeline : {"auto", "overlapped", "microbatch"}, default "auto"
        Step-time model (module notes).
    layers : int, optional
        L, decoder layers the microbatch pipeline flows through; None: the model's (or the
        profile's). Needed by the microbatch pipeline only.
    kv_dtype : {"bf16", "fp16", "fp8"}, default "bf16"
        KV-cache dtype.
    weight_dtype : {"bf16", "fp16", "fp8"}, optional
        Weight dtype; None: the checkpoint's (``quantization_config`` / ``torch_dtype``).
    batch : int, optional
        B, slots per Attention instance; None: chosen jointly with r.
    batch_per_gpu : int, optional
        b, slots per Attention GPU (DP attention): B = b·g_A. Exclusive with ``batch``.
    barrier : {"auto", "empirical", "gaussian"}, default "auto"
        Law of a worker's load behind the barrier.
    kv_quantile : float, default 0.999
        Quantile of a worker's load that must fit in its KV memory.
    tpot_target_s : float, optional
        Upper bound on the expected step time E[τ], s.
    tpot_p99_target_s : float, optional
        Upper bound on the 99th percentile of the step time under the barrier law, s.
    price_attn_per_h, price_ffn_per_h : float, optional
        Hourly price of an Attention and an FFN instance (any currency), given together.
    objective : {"gpu", "instance", "dollar"}, optional
        What to maximise; None: "dollar" with prices, else "gpu".
    moe_routing : {"auto", "balanced", "power_law"}, default "auto"
        Expert load balance the MoE kernels are costed at; auto: power law (what measured
        serving traffic shows, and what aiconfigurator assumes for every MoE family).

    Examples
    --------
    >>> d = Deployment(attn_gpus=4, attn_parallel="dp", ffn_gpus=8, microbatches=2)
    >>> d.workers_per_instance, d.resolved_pipeline, d.resolved_objective
    (4, 'microbatch', 'gpu')
    >>> d.gpus_per_bundle(3)
    20
    """

    attn_gpus: int = 1
    ffn_gpus: int = 8
    attn_parallel: AttnParallel = "tp"
    ffn_parallel: FfnParallel = "auto"
    microbatches: int = 1
    pipeline: PipelineName = "auto"
    layers: int | None = None
    kv_dtype: str = "bf16"
    weight_dtype: str | None = None
    batch: int | None = None
    batch_per_gpu: int | None = None
    barrier: BarrierLaw = "auto"
    kv_quantile: float = 0.999
    tpot_target_s: float | None = None
    tpot_p99_target_s: float | None = None
    price_attn_per_h: float | None = None
    price_ffn_per_h: float | None = None
    objective: ObjectiveName | None = None
    moe_routing: MoeRouting = "auto"

    def __post_init__(self) -> None:
        _positive_int("attn_gpus (g_A, GPUs per Attention instance)", self.attn_gpus)
        _positive_int("ffn_gpus (g_F, GPUs per FFN instance)", self.ffn_gpus)
        _positive_int("microbatches (m, per worker)", self.microbatches)
        _choice("attn_parallel", self.attn_parallel, ("tp", "dp"))
        _choice("ffn_parallel", self.ffn_parallel, ("auto", "ep", "tp"))
        _choice("pipeline", self.pipeline, ("auto", "overlapped", "microbatch"))
        _choice("barrier", self.barrier, ("auto", "empirical", "gaussian"))
        _choice("moe_routing", self.moe_routing, ("auto", "balanced", "power_law"))
        _choice("kv_dtype", self.kv_dtype, _DTYPES)
        if self.weight_dtype is not None:
            _choice("weight_dtype", self.weight_dtype, _DTYPES)
        if self.objective is not None:
            _choice("objective", self.objective, ("gpu", "instance", "dollar"))
        if self.layers is not None:
            _positive_int("layers (L, decoder layers)", self.layers)
        if self.batch is not None:
            _positive_int("batch (B, slots per Attention instance)", self.batch)
        if self.batch_per_gpu is not None:
            _positive_int("batch_per_gpu (b, slots per Attention GPU)", self.batch_per_gpu)
            if self.batch is not None:
                raise InputError("give batch or batch_per_gpu, not both")
        q = self.kv_quantile
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.5 <= q < 1:
            raise InputError(f"kv_quantile must lie in [0.5, 1), got {q!r}")
        for name in ("tpot_target_s", "tpot_p99_target_s", "price_attn_per_h", "price_ffn_per_h"):
            _positive_or_none(name, getattr(self, name))
        if (self.price_attn_per_h is None) != (self.price_ffn_per_h is None):
            raise InputError("price_attn_per_h and price_ffn_per_h go together (hourly prices)")
        if self.objective == "dollar" and self.price_attn_per_h is None:
            raise InputError("objective 'dollar' needs price_attn_per_h and price_ffn_per_h")

    @property
    def workers_per_instance(self) -> int:
        """Barrier workers per Attention instance: g_A under DP attention, else 1."""
        return self.attn_gpus if self.attn_parallel == "dp" else 1

    @property
    def resolved_pipeline(self) -> Literal["overlapped", "microbatch"]:
        """The step-time model: ``pipeline``, or overlapped for m = 1 and microbatch for m >= 2."""
        if self.pipeline != "auto":
            return self.pipeline
        return "overlapped" if self.microbatches == 1 else "microbatch"

    @property
    def resolved_objective(self) -> Literal["gpu", "instance", "dollar"]:
        """``objective``, or "dollar" with prices and "gpu" without."""
        if self.objective is not None:
            return self.objective
        return "dollar" if self.price_attn_per_h is not None else "gpu"

    @property
    def fixed_batch(self) -> int | None:
        """B fixed by ``batch`` or ``batch_per_gpu``·g_A; None when B is to be chosen."""
        if self.batch_per_gpu is not None:
            return self.batch_per_gpu * self.attn_gpus
        return self.batch

    def objective_weights(self) -> tuple[float, float]:
        """(w_A, w_F) of the objective r·B/((w_A·r + w_F)·E[τ]): GPUs, 1 and 1, or prices."""
        objective = self.resolved_objective
        if objective == "dollar":
            assert self.price_attn_per_h is not None and self.price_ffn_per_h is not None
            return float(self.price_attn_per_h), float(self.price_ffn_per_h)
        if objective == "instance":
            return 1.0, 1.0
        return float(self.attn_gpus), float(self.ffn_gpus)

    def gpus_per_bundle(self, ratio: int) -> int:
        """r·g_A + g_F, the GPUs of one rA–1F bundle."""
        return ratio * self.attn_gpus + self.ffn_gpus

    def replace(self, **changes: object) -> Deployment:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
