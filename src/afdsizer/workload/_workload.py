"""One frozen value for "the workload" that every sizing entry point consumes (docs/design.md §7).

A :class:`Workload` carries θ and σ of one slot's stationary load, optionally with their CIs,
and — when it came from a trace or from fixed lengths — the (P, D) pairs that define the
stationary worker-load law (:meth:`Workload.worker_loads`). It is validated once, at
construction; nothing downstream re-checks P and D.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError
from afdsizer.workload._estimators import estimate_slot_load
from afdsizer.workload._families import FixedLengths
from afdsizer.workload._trace import Trace, bundled_trace_path, load_trace
from afdsizer.workload._worker_load import DEFAULT_WORKER_LOAD_SAMPLES, sample_worker_loads

__all__ = ["Workload"]

FloatArray = npt.NDArray[np.float64]
_MAX_CACHED_DRAWS = 16
"""Worker-load draws a Workload keeps (oldest dropped first): one per B sized or drawn."""


def _finite(name: str, value: float, *, positive: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise InputError(f"{name} must be a finite number {bound} tokens, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """θ and σ of a decode slot's load, and the law of a worker's load when it is known.

    Build it with :meth:`from_trace`, :meth:`from_fixed_lengths` or :meth:`from_moments`.

    Attributes
    ----------
    theta_tokens : float
        θ = E[P·D + D(D−1)/2]/E[D], mean slot load, tokens.
    slot_load_std_tokens : float
        σ, std of one slot's stationary load, tokens.
    theta_ci_tokens : (float, float) or None
        95% CI of θ (trace only).
    source : str
        Where it came from: a trace path, ``"isl=…,osl=…"`` or ``"moments"``.
    trace : Trace or None
        The trace (or the constant pair of fixed lengths) defining the worker-load law.
    load_sampler : callable or None
        B → samples of a worker's load, tokens: a caller's own law (e.g. the 0.1 interface's
        ``worker_load_samples``), used instead of the trace's.
    """

    theta_tokens: float
    slot_load_std_tokens: float
    theta_ci_tokens: tuple[float, float] | None = None
    source: str = "moments"
    trace: Trace | None = None
    load_sampler: Callable[[int], npt.ArrayLike] | None = None
    _loads: dict[tuple[int, int, int], FloatArray] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Worker-load draws made so far, by (batch, seed, n_samples): a draw is a pure function of
    them, so sizing and the report's curves share one draw instead of repeating it."""

    def __post_init__(self) -> None:
        _finite("theta_tokens (θ, mean slot load)", self.theta_tokens, positive=True)
        _finite(
            "slot_load_std_tokens (σ, std of one slot's load)",
            self.slot_load_std_tokens,
            positive=False,
        )

    @classmethod
    def from_moments(cls, theta_tokens: float, slot_load_std_tokens: float) -> Workload:
        """θ and σ alone: the barrier is Gaussian, Normal(B·θ, B·σ²).

        Examples
        --------
        >>> Workload.from_moments(1000.0, 300.0).has_load_law
        False
        """
        return cls(
            theta_tokens=_finite("theta_tokens (θ, mean slot load)", theta_tokens, positive=True),
            slot_load_std_tokens=_finite(
                "slot_load_std_tokens (σ, std of one slot's load)",
                slot_load_std_tokens,
                positive=False,
            ),
        )

    @classmethod
    def from_trace(cls, trace: Trace | str | Path | None = None) -> Workload:
        """θ, σ (delta-method CI) and the worker-load law of a trace (default: the bundled one).

        Examples
        --------
        >>> w = Workload.from_trace()
        >>> w.has_load_law and w.theta_tokens > 0
        True
        """
        if not isinstance(trace, Trace):
            trace = load_trace(bundled_trace_path() if trace is None else trace)
        est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
        return cls(
            theta_tokens=est.theta_tokens,
            slot_load_std_tokens=est.slot_load_std_tokens,
            theta_ci_tokens=est.theta_ci_tokens,
            source=trace.source,
            trace=trace,
        )

    @classmethod
    def from_fixed_lengths(cls, isl: int, osl: int) -> Workload:
        """Every request has ISL prompt and OSL decode tokens, as benchmarks state workloads.

        θ = ISL + (OSL − 1)/2 and σ² = (OSL² − 1)/12 in closed form (a slot's load cycles
        through ISL … ISL + OSL − 1); the worker-load law is that of the constant trace.

        Examples
        --------
        >>> w = Workload.from_fixed_lengths(1000, 201)
        >>> w.theta_tokens, round(w.slot_load_std_tokens, 3)
        (1100.0, 58.023)
        """
        for name, value, low in (("isl", isl, 0), ("osl", osl, 1)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputError(f"{name} must be an integer >= {low} tokens, got {value!r}")
        lengths = FixedLengths(prompt_tokens=int(isl), decode_tokens=int(osl))
        trace = Trace(
            prompt_tokens=np.array([int(isl)], dtype=np.int64),
            decode_tokens=np.array([int(osl)], dtype=np.int64),
            source=f"isl={isl},osl={osl}",
        )
        return cls(
            theta_tokens=lengths.theta_tokens,
            slot_load_std_tokens=lengths.slot_load_std_tokens,
            theta_ci_tokens=(lengths.theta_tokens, lengths.theta_tokens),
            source=trace.source,
            trace=trace,
        )

    @property
    def has_load_law(self) -> bool:
        """Whether the worker-load law is known (a trace, fixed lengths or a sampler)."""
        return self.trace is not None or self.load_sampler is not None

    def worker_loads(
        self, batch: int, *, seed: int = 0, n_samples: int = DEFAULT_WORKER_LOAD_SAMPLES
    ) -> FloatArray:
        """Draws of the stationary load of a worker with ``batch`` slots, tokens.

        Raises
        ------
        InputError
            The workload has no load law (built from moments).
        """
        if self.load_sampler is not None:
            return np.asarray(self.load_sampler(int(batch)), dtype=np.float64)
        if self.trace is None:
            raise InputError(
                "this workload was given by θ and σ only: its worker-load law is unknown "
                "(give a trace or fixed lengths for the empirical barrier)"
            )
        key = (int(batch), int(seed), int(n_samples))
        if key not in self._loads:
            loads = sample_worker_loads(
                self.trace.prompt_tokens,
                self.trace.decode_tokens,
                batch=batch,
                n_samples=n_samples,
                seed=seed,
            )
            loads.setflags(write=False)  # shared by every caller
            if len(self._loads) >= _MAX_CACHED_DRAWS:
                self._loads.pop(next(iter(self._loads)))
            self._loads[key] = loads
        return self._loads[key]
