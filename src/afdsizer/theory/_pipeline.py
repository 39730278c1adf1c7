"""Step time of deployments as engines run them: microbatches, DP workers, layers (design §9).

Each Attention instance is ``k`` barrier workers (k = g_A under DP attention, 1 under TP) of
b = B/k slots; each worker's slots split into m microbatches of b/m slots that ping-pong through
the L layers. Per microbatch (all layers, one decode step) the parts cost

    A_j = max over the n = k·r workers of α_A + β_A·L_{w,j}   (the barrier, per microbatch)
    C   = α_C + β_C·b/m + γ_C·r·B/m,     F = α_F + β_F·r·B/m,

so every microbatch pays the fixed costs again: per step t_A = m·α_A + β_A·L_w, t_C = m·C,
t_F = m·F. The step is a flow shop over m·L (layer, microbatch) stages A → C → F, the next
layer's A of a microbatch waiting for its F. With equal microbatches (stage times a, c, f; S =
a + c + f; p = max(a, c, f)) its makespan is exactly

    τ = max( S + (m·L − 1)·p,  L·S + (m − 1)·p ):

the first term is a machine kept busy from its first job to the end (the pipeline is bound by
its slowest part, after the fill), the second the round trip of one microbatch through a layer
exceeding the m stages of work a part gets (communication exposed; with m = 1 it is serial
execution, τ = L·S). With unequal A_j the machine term uses their mean Ā and the round-trip term
their maximum A_max (the slowest microbatch's round trip); the worst error of this against the
event-by-event recurrence is 0.2% at a 3% spread of the A_j (tests/theory/test_pipeline.py).
In step totals (s, all layers):

    τ = max( (Ā + C + F)/L + (m − 1/L)·max(Ā, C, F),
             (A_max + C + F) + (m − 1)/L·max(A_max, C, F) ).

The ``overlapped`` pipeline is the ideal overlap τ = m·max(Ā, C, F) (m = 1: the paper's model).

Expectations: A_max is the maximum of m·n iid worker draws, so E[A_max] and E[max(A_max, G)] are
exact under the worker-load law (Gaussian by quadrature, empirical by order statistics), as is
everything at m = 1. Ā is the mean of m iid maxima: for m >= 2 it is taken as normal with their
mean and variance/m. E[max(line₁, line₂)] is taken as the larger of the two expectations.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special

from afdsizer.cost import CostCoefficients
from afdsizer.theory._barrier import (
    _CHUNK_ROWS,
    _LOG_PHI_NODES,
    _NODES,
    _WEIGHTS,
    _expected_max_std_normal_fast,
    expected_max_above_floor,
)
from afdsizer.theory._empirical import BarrierModel, _sorted_loads, _StepModel, _weighted_max
from afdsizer.theory._meanfield import MeanFieldRule, Regime, _inverse_objective, _Line

__all__ = ["PipelineShape", "PipelineStepModel", "pipeline_lines", "pipeline_mean_field_rule"]

FloatArray = npt.NDArray[np.float64]
PipelineKind = Literal["overlapped", "microbatch"]

_P99_Z = float(special.ndtri(0.99))
_PHI_NODES = np.exp(-0.5 * _NODES**2) / math.sqrt(2.0 * math.pi)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PipelineShape:
    """How one Attention instance's batch flows: workers, microbatches, layers, pipeline.

    Attributes
    ----------
    workers_per_instance : int
        k, barrier workers per Attention instance (g_A under DP attention, else 1).
    microbatches : int
        m, microbatches per worker.
    layers : int
        L, decoder layers (the microbatch pipeline's stages per microbatch).
    kind : {"overlapped", "microbatch"}
        Ideal overlap m·max(Ā, C, F), or the m·L-stage flow shop (module notes).
    """

    workers_per_instance: int = 1
    microbatches: int = 1
    layers: int = 1
    kind: PipelineKind = "overlapped"

    @property
    def is_paper(self) -> bool:
        """One worker per instance, one microbatch, free overlap: the paper's model."""
        return (
            self.workers_per_instance == 1
            and self.microbatches == 1
            and self.kind == ("overlapped")
        )


def _std_normal_max_moments(draws: FloatArray) -> tuple[FloatArray, FloatArray]:
    """E[Z_max] and Var[Z_max] of the maximum of ``draws`` iid standard normals (quadrature).

    Rows are taken in chunks so the (rows × nodes) work array stays ~10 MB for any length.
    """
    n = np.asarray(draws, dtype=np.float64).ravel()
    mean = np.asarray(_expected_max_std_normal_fast(n), dtype=np.float64)
    second = np.empty_like(mean)
    for start in range(0, n.size, _CHUNK_ROWS):
        rows = n[start : start + _CHUNK_ROWS]
        # density of the maximum: n·φ(x)·Φ(x)^(n−1), on the Gauss–Legendre nodes of _barrier.
        density = (
            rows[:, None]
            * _PHI_NODES[None, :]
            * np.exp((rows[:, None] - 1.0) * _LOG_PHI_NODES[None, :])
        )
        second[start : start + _CHUNK_ROWS] = (density * _WEIGHTS[None, :]) @ (_NODES**2)
    return mean, np.maximum(second - mean**2, 0.0)


def _expected_excess_normal(mean: FloatArray, std: FloatArray, level: FloatArray) -> FloatArray:
    """E[(Y − level)^+] for Y ~ Normal(mean, std²); std = 0 gives (mean − level)^+."""
    gap = mean - level
    out = np.maximum(gap, 0.0)
    noisy = std > 1e-12 * np.maximum(np.abs(mean), np.abs(level))
    if np.any(noisy):
        d = gap[noisy] / std[noisy]
        out[noisy] = gap[noisy] * special.ndtr(d) + std[noisy] * np.exp(-0.5 * d * d) / math.sqrt(
            2.0 * math.pi
        )
    return np.asarray(out, dtype=np.float64)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PipelineStepModel(_StepModel):
    """E[τ(r)] of a deployment (module notes), under the Gaussian or an empirical load law.

    ``batch`` is B per Attention instance; ``mean_attn_s`` is one worker's mean Attention time
    per step, m·α_A + β_A·E[L_w].
    """

    shape: PipelineShape
    worker_batch: float
    """b = B/k, slots of one barrier worker."""
    mb_mean_s: float
    """Mean time of one microbatch on one worker, α_A + β_A·E[L_{w,j}], s."""
    mb_std_s: float
    """Its std under the Gaussian law, s (0 for the empirical law)."""
    mb_sorted_s: FloatArray | None
    """Sorted sampled microbatch times for the empirical law, s (None: Gaussian)."""
    mb_mean_field_s: float
    """α_A + β_A·(b/m)·θ, s: the microbatch time without spread (the mean-field value)."""

    @classmethod
    def build(
        cls,
        coefficients: CostCoefficients,
        *,
        batch: int,
        shape: PipelineShape,
        theta_tokens: float,
        slot_load_std_tokens: float,
        microbatch_loads_tokens: npt.ArrayLike | None = None,
    ) -> PipelineStepModel:
        """The model at B; ``microbatch_loads_tokens`` (loads of b/m slots): the empirical law."""
        c, k, m = coefficients, shape.workers_per_instance, shape.microbatches
        b = batch / k
        slots = b / m
        mean_field = float(c.attention_time_s(slots * theta_tokens))
        sorted_s: FloatArray | None = None
        name: BarrierModel = "gaussian"
        if microbatch_loads_tokens is None:
            mb_mean, mb_std = (
                mean_field,
                c.beta_attn_s_per_token * math.sqrt(slots) * (slot_load_std_tokens),
            )
        else:
            sorted_s = np.asarray(
                c.attention_time_s(_sorted_loads(microbatch_loads_tokens)), dtype=np.float64
            )
            mb_mean, mb_std, name = float(sorted_s.mean()), 0.0, "empirical"
        return cls(
            coefficients=c,
            batch=float(batch),
            mean_attn_s=m * mb_mean,
            name=name,
            shape=shape,
            worker_batch=b,
            mb_mean_s=mb_mean,
            mb_std_s=mb_std,
            mb_sorted_s=sorted_s,
            mb_mean_field_s=mean_field,
        )

    def mean_field(self, theta_tokens: float, w_attn: float, w_ffn: float) -> MeanFieldRule:
        """The exact closed form of :func:`pipeline_mean_field_rule`."""
        return pipeline_mean_field_rule(self, theta_tokens=theta_tokens, w_attn=w_attn, w_ffn=w_ffn)

    # --- the three parts, per microbatch -------------------------------------------------

    def comm_mb_s(self, ratio: FloatArray) -> FloatArray:
        """C(r) = α_C + β_C·b/m + γ_C·r·B/m, one microbatch, s."""
        c, m = self.coefficients, self.shape.microbatches
        return np.asarray(
            c.alpha_comm_s
            + c.beta_comm_s_per_token * self.worker_batch / m
            + c.gamma_comm_s_per_token * ratio * self.batch / m,
            dtype=np.float64,
        )

    def ffn_mb_s(self, ratio: FloatArray) -> FloatArray:
        """F(r) = α_F + β_F·r·B/m, one microbatch, s."""
        c, m = self.coefficients, self.shape.microbatches
        return np.asarray(c.ffn_time_s(ratio * self.batch / m), dtype=np.float64)

    def ffn_busy_s(self, ratio: FloatArray) -> FloatArray:
        """t_F = m·F(r), the FFN's busy time per step, s."""
        return self.shape.microbatches * self.ffn_mb_s(ratio)

    def comm_busy_s(self, ratio: FloatArray) -> FloatArray:
        """t_C = m·C(r), s."""
        return self.shape.microbatches * self.comm_mb_s(ratio)

    def floor_s(self, ratio: FloatArray) -> FloatArray:
        """max(t_C, t_F), s."""
        return np.maximum(self.comm_busy_s(ratio), self.ffn_busy_s(ratio))

    # --- the barrier: maxima over workers ------------------------------------------------

    def _draws(self, ratio: FloatArray) -> FloatArray:
        return np.asarray(ratio, dtype=np.float64) * self.shape.workers_per_instance

    def _max_mean_var(self, draws: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of the maximum of ``draws`` microbatch times, s and s²."""
        if self.mb_sorted_s is None:
            z_mean, z_var = _std_normal_max_moments(draws)
            return self.mb_mean_s + self.mb_std_s * z_mean, self.mb_std_s**2 * z_var
        x = self.mb_sorted_s
        no_floor = np.full(draws.shape, -np.inf)
        mean = _weighted_max(x, draws, no_floor)
        second = _weighted_max(x * x, draws, no_floor) if x[0] >= 0 else mean**2
        return mean, np.maximum(second - mean**2, 0.0)

    def _max_above(self, draws: FloatArray, floor: FloatArray) -> FloatArray:
        """E[max(floor, max of ``draws`` microbatch times)], exactly under the law, s."""
        if self.mb_sorted_s is None:
            return expected_max_above_floor(floor, self.mb_mean_s, self.mb_std_s, draws)
        return _weighted_max(self.mb_sorted_s, draws, floor)

    def _mean_above(self, ratio: FloatArray, floor: FloatArray) -> FloatArray:
        """E[max(floor, Ā)], Ā the mean of the m microbatch maxima (normal for m >= 2), s."""
        draws = self._draws(ratio)
        m = self.shape.microbatches
        if m == 1:
            return self._max_above(draws, floor)
        mean, var = self._max_mean_var(draws)
        return floor + _expected_excess_normal(mean, np.sqrt(var / m), floor)

    # --- the step --------------------------------------------------------------------------

    def step_time_s(self, ratio: FloatArray) -> FloatArray:
        r = np.asarray(ratio, dtype=np.float64)
        m, L = self.shape.microbatches, self.shape.layers
        comm, ffn = self.comm_mb_s(r), self.ffn_mb_s(r)
        floor = np.maximum(comm, ffn)
        above_mean = self._mean_above(r, floor)  # E[max(Ā, C, F)]
        if self.shape.kind == "overlapped":
            return np.asarray(m * above_mean, dtype=np.float64)
        draws = self._draws(r)
        mean_of_max, _ = self._max_mean_var(draws)
        machine = (self.mb_mean_s_at(r) + comm + ffn) / L + (m - 1.0 / L) * above_mean
        if m == 1:
            return np.asarray(np.maximum(machine, mean_of_max + comm + ffn), dtype=np.float64)
        slowest = self._max_above(m * draws, floor)  # E[max(A_max, C, F)]
        mean_slowest, _ = self._max_mean_var(m * draws)
        round_trip = mean_slowest + comm + ffn + (m - 1.0) / L * slowest
        return np.asarray(np.maximum(machine, round_trip), dtype=np.float64)

    def mb_mean_s_at(self, ratio: FloatArray) -> FloatArray:
        """E[Ā](r): the expected microbatch maximum over the n = k·r workers, s."""
        return self._max_mean_var(self._draws(ratio))[0]

    def slowest_attn_s(self, ratio: FloatArray) -> FloatArray:
        """E[Σ_j A_j] = m·E[Ā], what the barrier makes the Attention side take per step, s."""
        return self.shape.microbatches * self.mb_mean_s_at(ratio)

    def _deterministic_step_s(self, ratio: FloatArray, mb_attn_s: FloatArray) -> FloatArray:
        """τ with every microbatch's Attention time equal to ``mb_attn_s`` (module notes), s."""
        m, L = self.shape.microbatches, self.shape.layers
        comm, ffn = self.comm_mb_s(ratio), self.ffn_mb_s(ratio)
        top = np.maximum(np.maximum(mb_attn_s, comm), ffn)
        if self.shape.kind == "overlapped":
            return np.asarray(m * top, dtype=np.float64)
        total = mb_attn_s + comm + ffn
        machine = total / L + (m - 1.0 / L) * top
        round_trip = total + (m - 1.0) / L * top
        return np.asarray(np.maximum(machine, round_trip), dtype=np.float64)

    def step_time_lower_s(self, ratio: FloatArray) -> FloatArray:
        """τ at E[Ā] (Jensen: <= E[τ]), non-decreasing in r, s."""
        r = np.asarray(ratio, dtype=np.float64)
        return self._deterministic_step_s(r, self.mb_mean_s_at(r))

    def step_time_mean_field_s(self, ratio: FloatArray) -> FloatArray:
        """τ with no spread, every microbatch at α_A + β_A·(b/m)·E[load] (<= E[τ]), s."""
        r = np.asarray(ratio, dtype=np.float64)
        return self._deterministic_step_s(r, np.full(r.shape, self.mb_mean_s))

    def step_time_p99_s(self, ratio: FloatArray) -> FloatArray:
        """99th percentile of τ: τ is non-decreasing in the microbatch maxima, s.

        m = 1: the maximum's own quantile, F^{-1}(0.99^(1/n)); m >= 2: the normal quantile of Ā
        and the quantile of A_max, each in its term.
        """
        r = np.asarray(ratio, dtype=np.float64)
        draws = self._draws(r)
        m = self.shape.microbatches
        q_max = self._max_quantile(draws * m, 0.99)
        if m == 1:
            q_mean = q_max
        else:
            mean, var = self._max_mean_var(draws)
            q_mean = mean + _P99_Z * np.sqrt(var / m)
        if self.shape.kind == "overlapped":
            return self._deterministic_step_s(r, q_mean)
        # the round-trip term follows A_max, the machine term Ā
        L = self.shape.layers
        comm, ffn = self.comm_mb_s(r), self.ffn_mb_s(r)
        top_max = np.maximum(np.maximum(q_max, comm), ffn)
        round_trip = q_max + comm + ffn + (m - 1.0) / L * top_max
        top_mean = np.maximum(np.maximum(q_mean, comm), ffn)
        machine = (q_mean + comm + ffn) / L + (m - 1.0 / L) * top_mean
        return np.asarray(np.maximum(machine, round_trip), dtype=np.float64)

    def _max_quantile(self, draws: FloatArray, q: float) -> FloatArray:
        """The q quantile of the maximum of ``draws`` microbatch times, s."""
        level = q ** (1.0 / draws)
        if self.mb_sorted_s is None:
            return np.asarray(self.mb_mean_s + self.mb_std_s * special.ndtri(level))
        x = self.mb_sorted_s
        idx = np.clip(np.ceil(level * x.size).astype(np.int64) - 1, 0, x.size - 1)
        return np.asarray(x[idx], dtype=np.float64)


_REGIME_ORDER = {"attention": 0, "communication": 1, "ffn": 2}


def pipeline_lines(model: PipelineStepModel, mb_attn_s: float) -> list[_Line]:
    """τ(r) = max over these lines a + b·r (s) with every microbatch's Attention at ``mb_attn_s``.

    Overlapped: m·A, m·C(r), m·F(r). Microbatch flow shop: the machine terms S/L + (m − 1/L)·X
    and the round-trip terms S + (m − 1)/L·X for X in (A, C, F), S = A + C + F (module notes);
    a round trip that binds exposes communication, so those lines are named for it (m = 1:
    serial execution, named for the FFN whose slope it carries).
    """
    m, L = model.shape.microbatches, model.shape.layers
    one = np.array([1.0])
    zero = np.array([0.0])
    c0, c1 = float(model.comm_mb_s(zero)[0]), float(model.comm_mb_s(one)[0])
    f0, f1 = float(model.ffn_mb_s(zero)[0]), float(model.ffn_mb_s(one)[0])
    parts: list[tuple[float, float, Regime]] = [
        (mb_attn_s, 0.0, "attention"),
        (c0, c1 - c0, "communication"),
        (f0, f1 - f0, "ffn"),
    ]
    if model.shape.kind == "overlapped":
        return [_Line(m * a, m * b, name) for a, b, name in parts]
    s_a = sum(a for a, _, _ in parts)
    s_b = sum(b for _, b, _ in parts)
    lines = [
        _Line(s_a / L + (m - 1.0 / L) * a, s_b / L + (m - 1.0 / L) * b, n) for a, b, n in parts
    ]
    trip: Regime = "communication" if m >= 2 else "ffn"
    lines += [_Line(s_a + (m - 1.0) / L * a, s_b + (m - 1.0) / L * b, trip) for a, b, _ in parts]
    return lines


def _envelope_optimum(lines: list[_Line], w_attn: float, w_ffn: float) -> float:
    """argmin over r > 0 of (w_A + w_F/r)·max(lines), a convex function (``_meanfield`` notes)."""
    candidates = [
        math.sqrt(w_ffn * line.a_s / (w_attn * line.b_s))
        for line in lines
        if line.b_s > 0 and line.a_s > 0
    ]
    for i, first in enumerate(lines):
        for second in lines[i + 1 :]:
            if first.b_s != second.b_s:
                r_cross = (first.a_s - second.a_s) / (second.b_s - first.b_s)
                if r_cross > 0:
                    candidates.append(r_cross)
    if not candidates:
        return math.inf
    return min(candidates, key=lambda r: (_inverse_objective(r, lines, w_attn, w_ffn), r))


def _binding(lines: list[_Line], r: float) -> Regime:
    """The line binding just below r (ties: Attention, then communication, then FFN)."""
    probe = r * (1.0 - 1e-9) if math.isfinite(r) else 1e12
    top = max(line.a_s + line.b_s * probe for line in lines)
    binding = [line for line in lines if line.a_s + line.b_s * probe >= top * (1.0 - 1e-12)]
    return min(binding, key=lambda line: _REGIME_ORDER[line.name]).name


def pipeline_mean_field_rule(
    model: PipelineStepModel, *, theta_tokens: float, w_attn: float, w_ffn: float
) -> MeanFieldRule:
    """The closed-form rule for a deployment: r_A, r_C, r_peak and the exact mean-field r*.

    τ(r) is a maximum of lines in r (:func:`pipeline_lines`), so (w_A + w_F/r)·τ(r) is convex
    and its minimiser is a line's own optimum sqrt(w_F·a/(w_A·b)) or a crossing (``_meanfield``
    notes). With one line per part this is the paper's rule with m·α for α; with g_A ≠ g_F the
    weights move r_peak to sqrt(g_F·m·α_F/(g_A·β_F·B)).
    """
    lines = pipeline_lines(model, model.mb_mean_field_s)
    r_star = _envelope_optimum(lines, w_attn, w_ffn)
    attention = max((ln for ln in lines if ln.name == "attention"), key=lambda ln: ln.a_s)
    others = [ln for ln in lines if ln.name != "attention"]
    crossings = [
        (attention.a_s - ln.a_s) / (ln.b_s - attention.b_s)
        for ln in others
        if ln.b_s > attention.b_s
    ]
    r_attention = min(crossings) if crossings else math.inf
    ffn = [ln for ln in lines if ln.name == "ffn"]
    comm = [ln for ln in lines if ln.name == "communication"]
    comm_cross = [
        (c.a_s - f.a_s) / (f.b_s - c.b_s) if f.b_s > c.b_s else math.inf for c in comm for f in ffn
    ]
    r_communication = max(comm_cross) if comm_cross else -math.inf
    growing = [ln for ln in others if ln.b_s > 0]
    r_peak = _envelope_optimum(growing, w_attn, w_ffn) if growing else math.inf
    m = model.shape.microbatches
    return MeanFieldRule(
        batch=int(model.batch),
        theta_tokens=float(theta_tokens),
        t_attn_s=m * model.mb_mean_field_s,
        t_comm_fixed_s=float(model.comm_busy_s(np.array([0.0]))[0]),
        r_attention=r_attention,
        r_communication=r_communication,
        r_peak=r_peak,
        r_star=r_star,
        regime=_binding(lines, r_star),
    )
