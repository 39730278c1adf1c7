"""Configuration of one simulation run (:class:`SimConfig`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = ["DEFAULT_LAYERS", "DEFAULT_WARMUP_FRAC", "SimConfig"]

DEFAULT_WARMUP_FRAC = 0.1
"""Fraction of the steps discarded as warm-up when ``warmup_steps`` is not given."""

Pipeline = Literal["overlapped", "serial", "microbatch"]
Refill = Literal["resample", "replay"]
Arrivals = Literal["closed", "trace", "poisson"]
JitterDist = Literal["lognormal", "gamma"]

_PIPELINES = ("overlapped", "serial", "microbatch")
_REFILLS = ("resample", "replay")
_ARRIVALS = ("closed", "trace", "poisson")
_JITTER_DISTS = ("lognormal", "gamma")
_MAX_SEED = 2**63 - 1
DEFAULT_LAYERS = 32
"""Layers of the microbatch pipeline when not given (a Llama-8B-sized model's)."""
_DEFAULTS = Deployment()
"""GPU counts come from here when not given: the defaults every entry point shares."""


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """One rA–1F bundle simulation: shape, length, pipeline, jitter and workload mode.

    Parameters
    ----------
    ratio : int
        r, Attention workers sharing the FFN instance. >= 1.
    batch : int
        B, request slots per Attention instance (split over its ``workers_per_instance``
        barrier workers). >= 1.
    steps : int, default 100_000
        Decode steps simulated (warm-up included). >= 1.
    warmup_steps : int or None, default None
        Leading steps discarded from every metric; None means ``DEFAULT_WARMUP_FRAC`` of
        ``steps`` (rounded down). 0 <= warmup_steps < steps.
    seed : int, default 0
        Seeds every random choice (request draws, jitter, Poisson arrivals). 0 <= seed < 2**63.
    pipeline : {"overlapped", "serial", "microbatch"}, default "overlapped"
        How Attention, communication and FFN combine into a step time τ: ``max``, sum, or an
        m-microbatch flow shop through ``layers`` layers (see :func:`afdsizer.sim.simulate`).
    microbatches : int, default 2
        m, microbatches per worker for ``pipeline="microbatch"``; must divide the slots of a
        worker, ``batch / workers_per_instance``.
    layers : int, default 32
        Layers the microbatch pipeline flows through (each layer takes 1/layers of the step's
        time per microbatch). Only used by ``pipeline="microbatch"``. >= 1.
    workers_per_instance : int, default 1
        k, barrier workers per Attention instance: 1 under tensor-parallel attention, the
        instance's GPUs ``attn_gpus`` under data-parallel attention (each GPU its own batch of
        B/k slots). The bundle simulates r·k workers; must divide ``batch``.
    attn_gpus, ffn_gpus : int, default from :class:`afdsizer.deployment.Deployment`
        g_A and g_F, GPUs per Attention and per FFN instance: only the per-GPU throughput
        r·B-tokens/s / (r·g_A + g_F) uses them (the coefficients already describe the GPUs).
    jitter_cv : float, default 0
        Coefficient of variation of a multiplicative noise on each worker's Attention time,
        drawn per worker per step with mean 1. 0 disables it.
    jitter_dist : {"lognormal", "gamma"}, default "lognormal"
        Distribution of the jitter factor.
    refill : {"resample", "replay"}, default "resample"
        Which request an empty slot receives (closed loop) or which lengths Poisson arrivals
        carry: a seeded draw from the trace (with common random numbers across r), or the
        trace rows in order, cycling.
    arrivals : {"closed", "trace", "poisson"}, default "closed"
        Closed loop (slots refilled at once) or open loop with a FIFO queue, arrivals from the
        trace's timestamps or a Poisson process.
    arrival_rate_per_s : float or None, default None
        λ, Poisson arrival rate, requests/s; required (> 0) with ``arrivals="poisson"``.
    trace_time_scale : float, default 1
        Trace timestamps are multiplied by this (0.5 doubles the arrival rate). > 0.
    kv_capacity_tokens : float or None, default None
        KV tokens one Attention worker can hold; None takes the coefficients' value (which may
        itself be None: unlimited). A request is admitted to a worker only if the final
        contexts (P + D) of its requests, the new one included, fit. Per barrier worker (per
        GPU under DP attention), as the coefficients' value.
    stagger : bool, default False
        Closed loop: start each slot's first request at a step of its decode drawn uniformly
        (seeded, per slot), the stationary phase, instead of all slots starting fresh
        together. Without it a fixed-length workload (one (P, D) for every request) moves
        all slots in lockstep for the whole run.
    batch_means : int, default 20
        Batches for the batch-means standard error of the throughput. >= 2.
    record_series : bool, default False
        Keep the per-step time series in :attr:`SimResult.series`.

    Raises
    ------
    InputError
        A field breaks its rule; the message names it.

    Examples
    --------
    >>> SimConfig(ratio=4, batch=64, steps=1000).effective_warmup_steps
    100
    """

    ratio: int
    batch: int
    steps: int = 100_000
    warmup_steps: int | None = None
    seed: int = 0
    pipeline: Pipeline = "overlapped"
    microbatches: int = 2
    layers: int = DEFAULT_LAYERS
    workers_per_instance: int = 1
    attn_gpus: int = _DEFAULTS.attn_gpus
    ffn_gpus: int = _DEFAULTS.ffn_gpus
    jitter_cv: float = 0.0
    jitter_dist: JitterDist = "lognormal"
    refill: Refill = "resample"
    arrivals: Arrivals = "closed"
    arrival_rate_per_s: float | None = None
    trace_time_scale: float = 1.0
    kv_capacity_tokens: float | None = None
    stagger: bool = False
    batch_means: int = 20
    record_series: bool = False

    def __post_init__(self) -> None:
        _check_int("ratio", self.ratio, 1)
        _check_int("batch", self.batch, 1)
        _check_int("steps", self.steps, 1)
        if self.warmup_steps is not None:
            _check_int("warmup_steps", self.warmup_steps, 0)
            if self.warmup_steps >= self.steps:
                raise InputError(
                    f"warmup_steps must be < steps ({self.steps}), got {self.warmup_steps}"
                )
        _check_int("seed", self.seed, 0)
        if self.seed > _MAX_SEED:
            raise InputError(f"seed must be < 2**63, got {self.seed}")
        _check_choice("pipeline", self.pipeline, _PIPELINES)
        _check_int("microbatches", self.microbatches, 1)
        _check_int("layers", self.layers, 1)
        self._check_workers()
        if self.pipeline == "microbatch" and self.slots_per_worker % self.microbatches:
            what = f"batch ({self.batch})"
            if self.workers_per_instance > 1:
                what = f"batch / workers_per_instance ({self.slots_per_worker})"
            raise InputError(f"microbatches must divide {what}, got {self.microbatches}")
        if not isinstance(self.jitter_cv, int | float) or not (
            math.isfinite(self.jitter_cv) and self.jitter_cv >= 0
        ):
            raise InputError(f"jitter_cv must be a finite number >= 0, got {self.jitter_cv!r}")
        _check_choice("jitter_dist", self.jitter_dist, _JITTER_DISTS)
        _check_choice("refill", self.refill, _REFILLS)
        _check_choice("arrivals", self.arrivals, _ARRIVALS)
        rate = self.arrival_rate_per_s
        if self.arrivals == "poisson" and (rate is None or not (math.isfinite(rate) and rate > 0)):
            raise InputError(
                f"arrival_rate_per_s must be > 0 requests/s with arrivals='poisson', got {rate!r}"
            )
        scale = self.trace_time_scale
        if not isinstance(scale, int | float) or not (math.isfinite(scale) and scale > 0):
            raise InputError(f"trace_time_scale must be a finite number > 0, got {scale!r}")
        cap = self.kv_capacity_tokens
        if cap is not None and not (isinstance(cap, int | float) and cap > 0):
            raise InputError(f"kv_capacity_tokens must be > 0 tokens or None, got {cap!r}")
        _check_int("batch_means", self.batch_means, 2)
        if not isinstance(self.stagger, bool):
            raise InputError(f"stagger must be True or False, got {self.stagger!r}")
        if self.stagger and self.arrivals != "closed":
            raise InputError("stagger needs the closed loop (open loops start empty)")

    def _check_workers(self) -> None:
        _check_int("attn_gpus", self.attn_gpus, 1)
        _check_int("ffn_gpus", self.ffn_gpus, 1)
        _check_int("workers_per_instance", self.workers_per_instance, 1)
        k = self.workers_per_instance
        if k not in (1, self.attn_gpus):
            raise InputError(
                f"workers_per_instance must be 1 (TP attention) or attn_gpus = {self.attn_gpus} "
                f"(DP attention), got {k}"
            )
        if self.batch % k:
            raise InputError(
                f"workers_per_instance ({k}) must divide batch ({self.batch}): each worker "
                "runs batch / workers_per_instance slots"
            )

    @classmethod
    def from_deployment(
        cls,
        deployment: Deployment,
        *,
        ratio: int,
        batch: int | None = None,
        steps: int = 100_000,
        seed: int = 0,
        layers: int | None = None,
        warmup_steps: int | None = None,
        stagger: bool = False,
        record_series: bool = False,
    ) -> SimConfig:
        """The simulation of ``deployment`` at r = ``ratio``: the same bundle the theory sizes.

        GPUs, DP workers (``deployment.workers_per_instance``), microbatches and pipeline come
        from the deployment: m = 1 with the overlapped pipeline is the paper's model; the
        ``microbatch`` pipeline is the m-microbatch flow shop through L layers, every
        microbatch paying the fixed costs.

        Parameters
        ----------
        deployment : Deployment
            How the bundle runs.
        ratio : int
            r, Attention instances per FFN instance.
        batch : int, optional
            B per Attention instance; default ``deployment.fixed_batch``.
        steps, seed, warmup_steps, stagger, record_series
            As the fields of the same names.
        layers : int, optional
            L for the microbatch pipeline; default ``deployment.layers``.

        Raises
        ------
        InputError
            No batch (the deployment leaves B to be chosen), no layers for the microbatch
            pipeline, the overlapped pipeline with m > 1 (not simulated: use the microbatch
            pipeline), or a field the config refuses.

        Examples
        --------
        >>> d = Deployment(attn_gpus=4, attn_parallel="dp", microbatches=2, layers=94)
        >>> cfg = SimConfig.from_deployment(d, ratio=3, batch=256)
        >>> cfg.pipeline, cfg.microbatches, cfg.workers_per_instance, cfg.slots_per_worker
        ('microbatch', 2, 4, 64)
        """
        b = batch if batch is not None else deployment.fixed_batch
        if b is None:
            raise InputError("give batch: the deployment leaves B to be chosen")
        m = deployment.microbatches
        pipeline = deployment.resolved_pipeline
        if pipeline == "overlapped" and m > 1:
            raise InputError(
                f"the simulator's overlapped pipeline has one microbatch, got microbatches={m}; "
                "use pipeline='microbatch' (the flow shop engines run)"
            )
        n_layers = layers if layers is not None else deployment.layers
        if pipeline == "microbatch" and n_layers is None:
            raise InputError(
                "the microbatch pipeline needs layers: give layers= or Deployment(layers=...)"
            )
        return cls(
            ratio=ratio,
            batch=b,
            steps=steps,
            seed=seed,
            warmup_steps=warmup_steps,
            pipeline=pipeline,
            microbatches=m,
            layers=n_layers if n_layers is not None else DEFAULT_LAYERS,
            workers_per_instance=deployment.workers_per_instance,
            attn_gpus=deployment.attn_gpus,
            ffn_gpus=deployment.ffn_gpus,
            stagger=stagger,
            record_series=record_series,
        )

    @property
    def slots_per_worker(self) -> int:
        """b = B / k, slots of one barrier worker."""
        return self.batch // self.workers_per_instance

    @property
    def gpus_per_bundle(self) -> int:
        """r·g_A + g_F, the GPUs of one rA–1F bundle."""
        return self.ratio * self.attn_gpus + self.ffn_gpus

    @property
    def effective_warmup_steps(self) -> int:
        """Warm-up steps actually discarded (``warmup_steps`` or its default)."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return int(self.steps * DEFAULT_WARMUP_FRAC)

    @property
    def groups_per_worker(self) -> int:
        """Microbatch groups per worker: ``microbatches`` in microbatch mode, else 1."""
        return self.microbatches if self.pipeline == "microbatch" else 1
