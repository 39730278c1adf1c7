"""What a recommendation is: the :class:`Recommendation` value and its ratio-table rows (§4, §9).

:func:`afdsizer.theory.recommend` (``_deploy``) builds them; the continuous optimum near the
deployed integer is found here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from scipy import optimize

from afdsizer.deployment import Deployment
from afdsizer.theory._empirical import (
    BarrierModel,
    _StepModel,
)
from afdsizer.theory._joint import (
    BatchLimit,
)
from afdsizer.theory._meanfield import MeanFieldRule, Regime

__all__ = ["Objective", "RatioRow", "Recommendation"]

Objective = Literal["throughput_per_gpu", "throughput_per_instance", "tokens_per_dollar"]
"""What the (B, r) choice maximises."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioRow:
    """One row of the Λ(r) table near the optimum, at the recommended batch B.

    Attributes
    ----------
    ratio : int
        r.
    throughput_per_instance : float
        Barrier-aware r·B/((r + 1)·E[τ]), tokens/s per instance.
    throughput_mean_field : float
        Mean-field Λ(r), tokens/s per instance.
    step_time_s : float
        E[τ], s.
    attention_idle : float
        1 − E[t_A,w]/E[τ].
    ffn_idle : float
        1 − t_F(r)/E[τ].
    tokens_per_dollar : float or None
        r·B·3600/((r·p_A + p_F)·E[τ]) when prices are given.
    meets_tpot : bool or None
        E[τ] <= the TPOT target, when one is given.
    throughput_per_gpu : float
        r·B/((r·g_A + g_F)·E[τ]), tokens/s per GPU.
    gpus : int
        r·g_A + g_F, GPUs of the bundle.
    step_time_p99_s : float
        99th percentile of τ under the barrier law, s.
    """

    ratio: int
    throughput_per_instance: float
    throughput_mean_field: float
    step_time_s: float
    attention_idle: float
    ffn_idle: float
    tokens_per_dollar: float | None
    meets_tpot: bool | None
    throughput_per_gpu: float = math.nan
    gpus: int = 0
    step_time_p99_s: float = math.nan


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """What ``afdsizer size`` prints; the field names are the ``size --json`` keys.

    Attributes
    ----------
    r_star : float
        Barrier-aware optimum over real r >= 1 (maximiser of r·B/((r + 1)·E[τ]), or of tokens
        per dollar with prices), within the TPOT limit, under ``barrier_model``.
    r_star_mean_field : float
        Mean-field closed form r* = max{r_A, r_C, r_peak}.
    r_star_gaussian : float
        The same optimum under the Gaussian barrier (equals ``r_star`` when that is the model).
    r_int : int
        The integer r to deploy: the best integer under the barrier model.
    r_int_mean_field : int
        The better of ⌊r*⌋, ⌈r*⌉ (>= 1) under the mean-field Λ.
    r_int_gaussian : int
        The best integer under the Gaussian barrier.
    barrier_model : {"gaussian", "empirical"}
        The law of a worker's load behind the barrier: Normal(B·θ, B·σ²), or the empirical law
        of sampled worker loads (exact order statistics).
    regime : {"attention", "communication", "ffn"}
        The mean-field regime at B.
    r_attention, r_communication, r_peak : float
        r_A, r_C, r_peak of the mean-field rule (see :class:`MeanFieldRule`).
    r_attention_barrier : float
        The barrier-aware fixed point r = (E[max_w t_A,w](r) − α_F)/(β_F·B); Gaussian:
        E[max_w t_A,w] = μ_A + σ_A·m_r.
    batch : int
        B, slots per Attention instance.
    batch_limit : {"given", "kv_capacity", "tpot", "objective", "default"}
        What set B.
    kv_max_batch, tpot_max_batch : int or None
        Largest B allowed by the KV capacity and by the TPOT target (None: no such limit).
    objective : {"throughput_per_instance", "tokens_per_dollar"}
        What (B, r) maximises.
    throughput_per_instance : float
        Barrier-aware tokens/s per instance at (B, r_int).
    throughput_mean_field : float
        Mean-field Λ(r_int), tokens/s per instance.
    tokens_per_dollar : float or None
        Tokens per currency unit at (B, r_int), with prices.
    bundle_tokens_per_s : float
        r_int·B/E[τ], tokens/s of one rA–1F bundle.
    step_time_s : float
        E[τ] at (B, r_int), s: the expected time per output token (TPOT).
    t_attn_s : float
        E[t_A,w] = α_A + β_A·E[L_w], mean Attention time of one worker, s (E[L_w] = B·θ, or the
        samples' mean).
    t_attn_slowest_s : float
        E[max_w t_A,w] at r_int (Gaussian: μ_A + σ_A·m_r), the slowest worker's expected time, s.
    t_comm_s, t_ffn_s : float
        t_C(r_int) and t_F(r_int), s.
    attention_idle, ffn_idle : float
        Idle fractions at (B, r_int): 1 − E[t_A,w]/E[τ] and 1 − t_F/E[τ].
    barrier_overhead : float
        1 − E[t_A,w]/E[max_w t_A,w]: the share of the slowest worker's time the average worker
        waits at the barrier.
    barrier_throughput_loss : float
        1 − (best barrier-aware integer throughput)/(best mean-field integer throughput).
    rounding_loss : float
        1 − J(r_int)/J(r_star): what deploying an integer costs.
    theta : float
        θ, mean slot load, tokens.
    slot_load_std : float
        σ, std of one slot's load, tokens.
    kv_quantile : float
        Quantile of a worker's load that must fit in memory.
    kv_load_quantile_tokens : float
        That quantile at B, tokens.
    kv_capacity_tokens : float or None
        Per Attention instance, from the coefficients.
    tpot_target_s, price_attn_per_h, price_ffn_per_h : float or None
        The limits and prices used.
    ratio_table : tuple of RatioRow
        Λ(r) near r_int.
    throughput_per_gpu : float
        r_int·B/((r_int·g_A + g_F)·E[τ]), tokens/s per GPU; times ``gpus_per_bundle`` it is
        r_int·B/E[τ].
    gpus_per_bundle : int
        r_int·g_A + g_F.
    tpot_p99_s : float
        99th percentile of the step time under the barrier law at (B, r_int), s.
    tpot_p99_target_s : float or None
        The bound on it, when given.
    attn_gpus, ffn_gpus, attn_parallel, ffn_parallel, microbatches, pipeline, layers,
    workers_per_instance, kv_dtype : the deployment sized (:class:`afdsizer.deployment.Deployment`).
    workload_source : str
        Where θ and σ came from.
    warnings : tuple of str
        What the caller should know (e.g. an operating point outside a calibration's range).
    deployment : Deployment or None
        The deployment sized, whole (a nested object in JSON).
    mean_field : MeanFieldRule or None
        The closed-form rule at B (nested): r_A, r_C, r_peak, r*, regime.
    """

    r_star: float
    r_star_mean_field: float
    r_star_gaussian: float
    r_int: int
    r_int_mean_field: int
    r_int_gaussian: int
    barrier_model: BarrierModel
    regime: Regime
    r_attention: float
    r_communication: float
    r_peak: float
    r_attention_barrier: float
    batch: int
    batch_limit: BatchLimit
    kv_max_batch: int | None
    tpot_max_batch: int | None
    objective: Objective
    throughput_per_instance: float
    throughput_mean_field: float
    tokens_per_dollar: float | None
    bundle_tokens_per_s: float
    step_time_s: float
    t_attn_s: float
    t_attn_slowest_s: float
    t_comm_s: float
    t_ffn_s: float
    attention_idle: float
    ffn_idle: float
    barrier_overhead: float
    barrier_throughput_loss: float
    rounding_loss: float
    theta: float
    slot_load_std: float
    kv_quantile: float
    kv_load_quantile_tokens: float
    kv_capacity_tokens: float | None
    tpot_target_s: float | None
    price_attn_per_h: float | None
    price_ffn_per_h: float | None
    ratio_table: tuple[RatioRow, ...]
    throughput_per_gpu: float = math.nan
    gpus_per_bundle: int = 0
    tpot_p99_s: float = math.nan
    tpot_p99_target_s: float | None = None
    attn_gpus: int = 1
    ffn_gpus: int = 1
    attn_parallel: str = "tp"
    ffn_parallel: str = "auto"
    microbatches: int = 1
    pipeline: str = "overlapped"
    layers: int | None = None
    workers_per_instance: int = 1
    kv_dtype: str | None = None
    workload_source: str = ""
    warnings: tuple[str, ...] = ()
    deployment: Deployment | None = None
    mean_field: MeanFieldRule | None = None

    def work_per_pass(self) -> dict[str, float]:
        """What each part processes in one pass at (B, r_int), in a calibration's variables.

        A pass is one microbatch: B/(w·m) slots on each of the w workers of an Attention
        instance (each worker sends its own slots' tokens to the FFN and back), r·B/m tokens
        through the FFN. These are the points a profile's fitted ranges must cover.

        Returns
        -------
        dict of str to float
            ``kv_tokens`` (B·θ/(w·m), KV tokens one worker attends), ``batch_per_worker``
            (B/(w·m): the attention-side GEMMs' rows and the tokens of one worker's transfer,
            what β_C multiplies) and ``ffn_tokens`` (r·B/m).
        """
        m = self.microbatches
        per_worker = self.batch / (self.workers_per_instance * m)
        return {
            "kv_tokens": per_worker * self.theta,
            "batch_per_worker": per_worker,
            "ffn_tokens": self.r_int * self.batch / m,
        }


def _objective_at(model: _StepModel, ratio: float, weights: tuple[float, float]) -> float:
    return ratio * model.batch / ((weights[0] * ratio + weights[1]) * model.at(ratio))


def _continuous_optimum(
    model: _StepModel, r_int: int, r_upper: float, weights: tuple[float, float]
) -> float:
    """Real r in [max(1, r_int − 1), min(r_int + 1, r_upper)] maximising the objective."""
    lo, hi = max(1.0, r_int - 1.0), min(r_int + 1.0, r_upper)
    if hi <= lo:
        return float(r_int)
    res = optimize.minimize_scalar(
        lambda r: -_objective_at(model, r, weights),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-9},
    )
    r_best = float(res.x)
    # Bounded Brent is local; never report a point worse than the integer it refines.
    if _objective_at(model, r_best, weights) < _objective_at(model, r_int, weights):
        return float(r_int)
    return r_best
