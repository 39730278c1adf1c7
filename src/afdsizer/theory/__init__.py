"""Theory stage: the closed-form provisioning rule and its barrier-aware refinement (design §4).

Consumes :class:`afdsizer.cost.CostCoefficients` and the workload's θ and σ (floats); never
imports the simulator, which is its independent check.

- Mean field: :func:`mean_field_rule` (r_A, r_C, r_peak, r*, regime),
  :func:`step_time_mean_field_s`, :func:`throughput_mean_field` (Λ(r)).
- Barrier: :func:`expected_max_std_normal` (m_r), :func:`expected_max_above_floor`,
  :func:`expected_step_time_s` (E[τ]), :func:`throughput_barrier`,
  :func:`barrier_attention_fixed_point`, :func:`attention_idle_fraction`,
  :func:`ffn_idle_fraction`.
- Empirical barrier (worker-load samples from the trace instead of a normal):
  :func:`expected_max_empirical`, :func:`expected_step_time_empirical_s`; :func:`barrier_curve`
  gives E[τ], Λ and idle over r under either law; ``recommend`` and
  ``best_integer_ratio`` take ``worker_load_samples``.
- Sizing: :func:`best_integer_ratio`, :func:`joint_sizing`, :func:`max_batch_for_kv`,
  :func:`recommend` → :class:`Recommendation`; :func:`sensitivity_grid`.
"""

from afdsizer.theory._barrier import (
    attention_idle_fraction,
    barrier_attention_fixed_point,
    expected_max_above_floor,
    expected_max_std_normal,
    expected_step_time_s,
    ffn_idle_fraction,
    throughput_barrier,
)
from afdsizer.theory._deploy import deployment_curve, pipeline_shape, recommend
from afdsizer.theory._empirical import (
    BarrierCurve,
    BarrierModel,
    WorkerLoadSamples,
    barrier_curve,
    expected_max_empirical,
    expected_step_time_empirical_s,
)
from afdsizer.theory._joint import (
    DEFAULT_BATCH_SLOTS,
    BatchLimit,
    JointChoice,
    best_integer_ratio,
    joint_sizing,
    kv_load_quantile_tokens,
    max_batch_for_kv,
    max_batch_for_tpot,
    max_ratio_for_tpot,
)
from afdsizer.theory._meanfield import (
    MeanFieldRule,
    Regime,
    mean_field_rule,
    step_time_mean_field_s,
    throughput_mean_field,
)
from afdsizer.theory._pipeline import PipelineShape, PipelineStepModel, pipeline_mean_field_rule
from afdsizer.theory._recommend import Objective, RatioRow, Recommendation
from afdsizer.theory._sensitivity import SensitivityGrid, sensitivity_grid

__all__ = [
    "DEFAULT_BATCH_SLOTS",
    "BarrierCurve",
    "BarrierModel",
    "BatchLimit",
    "JointChoice",
    "MeanFieldRule",
    "Objective",
    "PipelineShape",
    "PipelineStepModel",
    "RatioRow",
    "Recommendation",
    "Regime",
    "SensitivityGrid",
    "WorkerLoadSamples",
    "attention_idle_fraction",
    "barrier_attention_fixed_point",
    "barrier_curve",
    "best_integer_ratio",
    "deployment_curve",
    "expected_max_above_floor",
    "expected_max_empirical",
    "expected_max_std_normal",
    "expected_step_time_empirical_s",
    "expected_step_time_s",
    "ffn_idle_fraction",
    "joint_sizing",
    "kv_load_quantile_tokens",
    "max_batch_for_kv",
    "max_batch_for_tpot",
    "max_ratio_for_tpot",
    "mean_field_rule",
    "pipeline_mean_field_rule",
    "pipeline_shape",
    "recommend",
    "sensitivity_grid",
    "step_time_mean_field_s",
    "throughput_barrier",
    "throughput_mean_field",
]
