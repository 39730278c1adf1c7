"""Configuration of one simulation run (:class:`SimConfig`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from afdsizer.errors import InputError

__all__ = ["DEFAULT_WARMUP_FRAC", "SimConfig"]

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
        B, request slots per Attention worker. >= 1.
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
        m, microbatches per worker for ``pipeline="microbatch"``; must divide ``batch``.
    layers : int, default 32
        Layers the microbatch pipeline flows through (each layer takes 1/layers of the step's
        time per microbatch). Only used by ``pipeline="microbatch"``. >= 1.
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
        contexts (P + D) of its requests, the new one included, fit.
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
    layers: int = 32
    jitter_cv: float = 0.0
    jitter_dist: JitterDist = "lognormal"
    refill: Refill = "resample"
    arrivals: Arrivals = "closed"
    arrival_rate_per_s: float | None = None
    trace_time_scale: float = 1.0
    kv_capacity_tokens: float | None = None
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
        if self.pipeline == "microbatch" and self.batch % self.microbatches:
            raise InputError(
                f"microbatches must divide batch ({self.batch}), got {self.microbatches}"
            )
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
