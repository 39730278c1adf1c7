"""Theory against the simulator across traces and cost cases (docs/design.md §8, issue 6).

- :func:`validate_case` / :func:`validate_cases`: the r ``afdsizer size --trace`` deploys
  (empirical barrier; Gaussian and mean field beside it), the simulation-optimal r from a
  common-random-numbers sweep, rel_error, throughput_loss with CIs, the goal verdict
  (:func:`meets_goal`), the knee of the simulated FFN idle curve, and idle time against baselines.
- :func:`search_best_ratio`, :func:`sweep_ratios`: the generic sweep driver over r.
- :func:`find_knee`: hinge fit of an idle-fraction curve.
- The theory is ``afdsizer.theory.recommend(coefficients, workload, deployment)``, the call
  ``afdsizer size`` makes: the trace's :class:`~afdsizer.workload.Workload` (its empirical
  worker-load law, seed 0) on the paper's deployment (Λ per instance, the quantity simulated).
- :func:`default_cases`: cost-model coefficients for a model × deployment grid spanning the
  three regimes;
  :func:`synthetic_long_context`: a heavy-tailed long-context workload that stresses the barrier.
"""

from afdsizer.validate._cases import (
    VALIDATION_HARDWARE,
    CostCase,
    default_cases,
    roofline_case,
)
from afdsizer.validate._knee import Knee, find_knee
from afdsizer.validate._render import (
    BASELINE_COLUMNS,
    GOAL_LEGEND,
    STEP_TIME_COLUMNS,
    TABLE_COLUMNS,
    baseline_rows,
    result_rows,
    results_markdown,
    step_time_rows,
    to_records,
)
from afdsizer.validate._run import (
    BARRIER_MODELS,
    GOAL_REL_ERROR,
    GOAL_THROUGHPUT_LOSS,
    QUICK_SETTINGS,
    BaselineResult,
    CaseResult,
    StepTimeCheck,
    ValidationSettings,
    meets_goal,
    validate_case,
    validate_cases,
)
from afdsizer.validate._sweep import (
    RatioPoint,
    RatioSweep,
    paired_relative_loss,
    search_best_ratio,
    sweep_ratios,
)
from afdsizer.validate._workloads import STRESS_TRACE_NAME, synthetic_long_context

__all__ = [
    "BARRIER_MODELS",
    "BASELINE_COLUMNS",
    "GOAL_LEGEND",
    "GOAL_REL_ERROR",
    "GOAL_THROUGHPUT_LOSS",
    "QUICK_SETTINGS",
    "STEP_TIME_COLUMNS",
    "STRESS_TRACE_NAME",
    "TABLE_COLUMNS",
    "VALIDATION_HARDWARE",
    "BaselineResult",
    "CaseResult",
    "CostCase",
    "Knee",
    "RatioPoint",
    "RatioSweep",
    "StepTimeCheck",
    "ValidationSettings",
    "baseline_rows",
    "default_cases",
    "find_knee",
    "meets_goal",
    "paired_relative_loss",
    "result_rows",
    "results_markdown",
    "roofline_case",
    "search_best_ratio",
    "step_time_rows",
    "sweep_ratios",
    "synthetic_long_context",
    "to_records",
    "validate_case",
    "validate_cases",
]
