"""The values a report is drawn from: one frozen :class:`ReportData` assembled from stage values.

Every panel is a plain frozen record of numpy arrays and floats, so the renderer never calls
theory or the simulator itself, and tests can build a report from hand-made values.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError

__all__ = [
    "REGIMES",
    "CalibrationPart",
    "CalibrationSummary",
    "RatioCurves",
    "RecommendationSummary",
    "RegimeMap",
    "ReportData",
    "SimPoints",
    "ThetaWindows",
    "WorkloadSummary",
]

REGIMES = ("attention", "communication", "ffn")
"""Regime names, in the order of the regime map's colour codes (docs/design.md §4)."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _float_array(name: str, values: Any, *, ndim: int = 1) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise InputError(f"{name} must be a {ndim}-d array, got shape {array.shape}")
    array.setflags(write=False)
    return array


def _same_length(owner: str, **arrays: npt.NDArray[Any]) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{owner} arrays must have equal lengths, got {lengths}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RecommendationSummary:
    """The numbers shown on top of the report; field names are the ``size --json`` keys.

    Parameters
    ----------
    r_int : int
        Integer Attention-per-FFN ratio to deploy (r).
    r_star : float
        Barrier-aware continuous optimum r*.
    r_star_mean_field : float
        Mean-field r* = max{r_A, r_C, r_peak}.
    regime : str
        ``"attention"``, ``"communication"`` or ``"ffn"``: the binding term of r*.
    batch : int
        B, request slots per Attention instance.
    throughput_per_instance : float
        Λ(r_int), tokens/s per instance (Attention and FFN instances counted).
    step_time_s : float
        E[τ] at r_int, s.
    attention_idle : float
        Attention idle fraction at r_int (0–1).
    ffn_idle : float
        FFN idle fraction at r_int (0–1).
    barrier_overhead : float
        Barrier cost at r_int: fraction of the step the faster Attention workers wait (0–1).
    barrier_throughput_loss : float
        Throughput lost to the barrier against the mean-field Λ at r_int (0–1).
    rounding_loss : float
        Throughput lost by deploying the integer r instead of the continuous optimum (0–1).
    theta : float
        θ, mean slot load used, tokens.
    batch_limit : str
        What set B: ``given``, ``default``, ``kv_capacity``, ``tpot``, ``objective``.
    throughput_per_gpu : float
        Tokens/s per GPU of the bundle at r_int, r·B/((r·g_A + g_F)·E[τ]).
    gpus_per_bundle : int
        r·g_A + g_F, GPUs of one rA–1F bundle.
    tpot_p99_s : float
        99th percentile of the step time at r_int under the barrier law, s.
    objective : str
        What (B, r) maximises: ``throughput_per_gpu``, ``throughput_per_instance`` or
        ``tokens_per_dollar``.
    barrier_model : str
        Law of a worker's load behind the barrier: ``empirical`` or ``gaussian``.
    attn_gpus, ffn_gpus : int
        g_A, g_F: GPUs per Attention / FFN instance.
    attn_parallel, ffn_parallel : str
        How each instance's GPUs share its work (``tp``/``dp``; ``ep``/``tp``, ``auto``).
    microbatches : int
        m, microbatches per worker.
    pipeline : str
        The step-time model: ``overlapped`` (the paper's) or ``microbatch``.
    kv_dtype : str
        KV-cache dtype.
    """

    r_int: int
    r_star: float
    r_star_mean_field: float
    regime: str
    batch: int
    throughput_per_instance: float
    step_time_s: float
    attention_idle: float
    ffn_idle: float
    barrier_overhead: float
    barrier_throughput_loss: float
    rounding_loss: float
    theta: float
    batch_limit: str
    throughput_per_gpu: float
    gpus_per_bundle: int
    tpot_p99_s: float
    objective: str
    barrier_model: str
    attn_gpus: int
    ffn_gpus: int
    attn_parallel: str
    ffn_parallel: str
    microbatches: int
    pipeline: str
    kv_dtype: str

    def __post_init__(self) -> None:
        if self.r_int < 1:
            raise InputError(f"r_int must be >= 1, got {self.r_int}")
        if self.batch < 1:
            raise InputError(f"batch must be >= 1 slot, got {self.batch}")

    @classmethod
    def from_recommendation(cls, recommendation: Any) -> RecommendationSummary:
        """Copy the shown fields from a :class:`afdsizer.theory.Recommendation`-like value."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            # Each field is converted to its declared type (numpy scalars to Python ones).
            convert = {"int": int, "float": float, "str": str}[str(f.type)]
            kwargs[f.name] = convert(getattr(recommendation, f.name))
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ThetaWindows:
    """θ estimated on consecutive time windows of a timestamped trace.

    Parameters
    ----------
    start_s, end_s : ndarray of shape (n_windows,)
        Window bounds, s since the first request.
    theta_tokens : ndarray of shape (n_windows,)
        θ per window, tokens (NaN where a window holds too few requests).
    ci_low_tokens, ci_high_tokens : ndarray of shape (n_windows,)
        Confidence interval of θ per window, tokens.
    n_requests : ndarray of shape (n_windows,)
        Requests arriving in each window.
    """

    start_s: FloatArray
    end_s: FloatArray
    theta_tokens: FloatArray
    ci_low_tokens: FloatArray
    ci_high_tokens: FloatArray
    n_requests: IntArray

    def __post_init__(self) -> None:
        for f in ("start_s", "end_s", "theta_tokens", "ci_low_tokens", "ci_high_tokens"):
            object.__setattr__(self, f, _float_array(f, getattr(self, f)))
        object.__setattr__(self, "n_requests", np.asarray(self.n_requests, dtype=np.int64))
        _same_length(
            "ThetaWindows",
            start_s=self.start_s,
            end_s=self.end_s,
            theta_tokens=self.theta_tokens,
            ci_low_tokens=self.ci_low_tokens,
            ci_high_tokens=self.ci_high_tokens,
            n_requests=self.n_requests,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSummary:
    """The workload panel: the request lengths and the slot-load statistics drawn from them.

    Parameters
    ----------
    prompt_tokens, decode_tokens : ndarray of shape (n_requests,)
        P and D per request, tokens.
    theta_tokens : float
        θ, mean slot load, tokens.
    theta_ci_tokens : tuple of float
        (low, high) confidence interval of θ, tokens.
    slot_load_std_tokens : float
        σ, stationary std of one slot's load, tokens.
    confidence : float
        Confidence level of the interval (e.g. 0.95).
    source : str
        Trace file or description shown in the report.
    windows : ThetaWindows or None
        θ over time windows; None when the trace has no timestamps.
    """

    prompt_tokens: IntArray
    decode_tokens: IntArray
    theta_tokens: float
    theta_ci_tokens: tuple[float, float]
    slot_load_std_tokens: float
    confidence: float
    source: str
    windows: ThetaWindows | None = None

    def __post_init__(self) -> None:
        prompt = np.asarray(self.prompt_tokens, dtype=np.int64)
        decode = np.asarray(self.decode_tokens, dtype=np.int64)
        if prompt.ndim != 1 or prompt.shape != decode.shape or prompt.size == 0:
            raise InputError(
                "prompt_tokens and decode_tokens must be non-empty 1-d arrays of equal length, "
                f"got shapes {prompt.shape} and {decode.shape}"
            )
        object.__setattr__(self, "prompt_tokens", prompt)
        object.__setattr__(self, "decode_tokens", decode)
        low, high = (float(v) for v in self.theta_ci_tokens)
        object.__setattr__(self, "theta_ci_tokens", (low, high))

    @property
    def n_requests(self) -> int:
        """Number of requests in the trace."""
        return int(self.prompt_tokens.size)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioCurves:
    """Theory against the ratio r at fixed B: Λ(r), step-time parts and idle fractions.

    Parameters
    ----------
    ratios : ndarray of shape (n,)
        r values (Attention instances per FFN instance).
    throughput_mean_field, throughput_barrier : ndarray of shape (n,)
        Λ(r) = r·B / ((r+1)·τ), tokens/s per instance, mean field and barrier-aware.
    attention_time_s : ndarray of shape (n,)
        Mean-field t_A = α_A + β_A·B·θ, s.
    attention_time_barrier_s : ndarray of shape (n,)
        E[max_w t_A,w] of the slowest of r workers (Gaussian barrier), s.
    comm_time_s, ffn_time_s : ndarray of shape (n,)
        t_C(r) and t_F(r) = α_F + β_F·r·B, s.
    step_time_s : ndarray of shape (n,)
        Barrier-aware E[τ(r)], s.
    attention_idle, ffn_idle : ndarray of shape (n,)
        Idle fractions 1 − E[t_A,w]/E[τ] and 1 − t_F/E[τ] (0–1).
    """

    ratios: FloatArray
    throughput_mean_field: FloatArray
    throughput_barrier: FloatArray
    attention_time_s: FloatArray
    attention_time_barrier_s: FloatArray
    comm_time_s: FloatArray
    ffn_time_s: FloatArray
    step_time_s: FloatArray
    attention_idle: FloatArray
    ffn_idle: FloatArray

    def __post_init__(self) -> None:
        arrays = {}
        for f in dataclasses.fields(self):
            arrays[f.name] = _float_array(f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, arrays[f.name])
        _same_length("RatioCurves", **arrays)
        if arrays["ratios"].size == 0:
            raise InputError("RatioCurves needs at least one ratio, got 0")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimPoints:
    """Simulated points over r (common random numbers: one seed for every r).

    Parameters
    ----------
    ratios : ndarray of shape (n,)
        Integer r values simulated.
    throughput_per_instance, throughput_stderr : ndarray of shape (n,)
        Simulated Λ(r) and its standard error, tokens/s per instance.
    attention_idle, ffn_idle, barrier_idle : ndarray of shape (n,)
        Simulated idle fractions (0–1).
    step_time_mean_s : ndarray of shape (n,)
        Mean simulated step time, s.
    steps : int
        Simulated steps per run (warm-up included).
    seed : int
        Seed shared by every run.
    """

    ratios: IntArray
    throughput_per_instance: FloatArray
    throughput_stderr: FloatArray
    attention_idle: FloatArray
    ffn_idle: FloatArray
    barrier_idle: FloatArray
    step_time_mean_s: FloatArray
    steps: int
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratios", np.asarray(self.ratios, dtype=np.int64))
        arrays: dict[str, npt.NDArray[Any]] = {"ratios": self.ratios}
        for name in (
            "throughput_per_instance",
            "throughput_stderr",
            "attention_idle",
            "ffn_idle",
            "barrier_idle",
            "step_time_mean_s",
        ):
            arrays[name] = _float_array(name, getattr(self, name))
            object.__setattr__(self, name, arrays[name])
        _same_length("SimPoints", **arrays)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RegimeMap:
    """The recommended r and the regime over a grid of θ × B (σ/θ held at the workload's value).

    Parameters
    ----------
    theta_tokens : ndarray of shape (n_theta,)
        θ grid, tokens.
    batches : ndarray of shape (n_batch,)
        B grid, slots per Attention instance.
    r_int : ndarray of shape (n_batch, n_theta)
        Barrier-aware integer r at each cell.
    r_star_mean_field : ndarray of shape (n_batch, n_theta)
        Mean-field r* = max{r_A, r_C, r_peak} at each cell.
    regime_codes : ndarray of shape (n_batch, n_theta)
        Index into :data:`REGIMES` of each cell's regime.
    """

    theta_tokens: FloatArray
    batches: IntArray
    r_int: IntArray
    r_star_mean_field: FloatArray
    regime_codes: IntArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "theta_tokens", _float_array("theta_tokens", self.theta_tokens))
        object.__setattr__(self, "batches", np.asarray(self.batches, dtype=np.int64))
        object.__setattr__(self, "r_int", np.asarray(self.r_int, dtype=np.int64))
        object.__setattr__(
            self,
            "r_star_mean_field",
            _float_array("r_star_mean_field", self.r_star_mean_field, ndim=2),
        )
        object.__setattr__(self, "regime_codes", np.asarray(self.regime_codes, dtype=np.int64))
        shape = (self.batches.size, self.theta_tokens.size)
        grids = {
            "r_int": self.r_int,
            "r_star_mean_field": self.r_star_mean_field,
            "regime_codes": self.regime_codes,
        }
        bad = {name: g.shape for name, g in grids.items() if g.shape != shape}
        if bad:
            raise InputError(
                f"RegimeMap grids must have shape (n_batch, n_theta) = {shape}, got {bad}"
            )
        codes = self.regime_codes
        if codes.size and (codes.min() < 0 or codes.max() >= len(REGIMES)):
            raise InputError(
                f"regime_codes must index REGIMES (0 to {len(REGIMES) - 1}), "
                f"got values {int(codes.min())} to {int(codes.max())}"
            )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationPart:
    """One fitted part of a calibration profile: its points, its fit, where it operates.

    Parameters
    ----------
    part : str
        ``attention``, ``attn_gemm``, ``moe``, ``ffn_gemm``, ``ffn`` or ``comm``.
    kernel_source, dtype : str or None
        The measured rows it was fitted on.
    x_name : str
        The work variable: ``kv_tokens``, ``batch`` or ``ffn_tokens``.
    per : {"step", "call"}
        Times per decode step (all layers) or per kernel call (the curve parts).
    x, measured_s, fitted_s : array of float
        The points fitted, in increasing x: measured and fitted time, s.
    curve_range : (float, float) or None
        For ``ffn`` with a fitted FFN curve: the rows that curve covers. ``size`` linearises
        the curve at the operating point, so the curve's range is the one that must hold it.
    operating_x : float or None
        x at the recommended (B, r) (:meth:`Recommendation.work_per_pass`), if known.
    median_rel_error, max_rel_error : float or None
        |fit − measured| / measured over the points.
    ratio_to_roofline : mapping of str to float
        Each fitted coefficient over the roofline's.
    warnings : tuple of str
        The part's own warnings (kernel choice, roofline cross-check).
    """

    part: str
    kernel_source: str | None
    dtype: str | None
    x_name: str
    per: str
    x: FloatArray
    measured_s: FloatArray
    fitted_s: FloatArray
    curve_range: tuple[float, float] | None = None
    operating_x: float | None = None
    median_rel_error: float | None = None
    max_rel_error: float | None = None
    ratio_to_roofline: dict[str, float] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("x", "measured_s", "fitted_s"):
            object.__setattr__(self, name, _float_array(f"{self.part} {name}", getattr(self, name)))
        _same_length(f"CalibrationPart {self.part}", x=self.x, measured_s=self.measured_s,
                     fitted_s=self.fitted_s)  # fmt: skip
        if self.x.size < 2 or not np.all(self.x > 0) or not np.all(np.diff(self.x) >= 0):
            raise InputError(f"{self.part} points must be >= 2 positive x in increasing order")

    @property
    def fitted_range(self) -> tuple[float, float]:
        """Smallest and largest x fitted."""
        return float(self.x[0]), float(self.x[-1])

    @property
    def inside_range(self) -> bool | None:
        """Whether the operating point lies in the fitted range (None: no operating point)."""
        if self.operating_x is None:
            return None
        low, high = self.curve_range or self.fitted_range
        return low <= self.operating_x <= high


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationSummary:
    """The calibration profile behind the coefficients, for the report's calibration section.

    Parameters
    ----------
    source : str
        What was measured: model, device and the tables or CSV.
    parts : tuple of CalibrationPart
        One per fitted part that recorded its points.
    ffn_curve_x, ffn_curve_s : array of float or None
        The profile's FFN curve t_F(N) (the curve ``size`` re-linearises), s per step.
    ffn_line_used : (float, float) or None
        (α_F, β_F) the recommendation was computed with: the line at the operating point.
    warnings : tuple of str
        The profile's own warnings (row selection, roofline cross-check).
    """

    source: str
    parts: tuple[CalibrationPart, ...]
    ffn_curve_x: FloatArray | None = None
    ffn_curve_s: FloatArray | None = None
    ffn_line_used: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything one report shows.

    Parameters
    ----------
    title : str
        Page title.
    coefficients : CostCoefficients
        The cost coefficients every number was computed with.
    recommendation : RecommendationSummary
        The recommendation shown on top.
    curves : RatioCurves
        Theory curves over r.
    workload : WorkloadSummary or None
        The trace panel; None when θ and σ were given directly.
    sim : SimPoints or None
        Simulated points; None when the simulation was skipped.
    regime_map : RegimeMap or None
        r* over θ × B; None when skipped.
    notes : tuple of str
        Free-text remarks shown under the recommendation (e.g. what was skipped).
    warnings : tuple of str
        The recommendation's warnings (a profile's, an operating point outside its ranges),
        shown on top as ``size`` prints them.
    calibration : CalibrationSummary or None
        The calibration profile the coefficients came from; None for a roofline or a file.
    """

    title: str
    coefficients: CostCoefficients
    recommendation: RecommendationSummary
    curves: RatioCurves
    workload: WorkloadSummary | None = None
    sim: SimPoints | None = None
    regime_map: RegimeMap | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    calibration: CalibrationSummary | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.recommendation.theta):
            raise InputError(
                f"recommendation theta must be finite, got {self.recommendation.theta}"
            )
