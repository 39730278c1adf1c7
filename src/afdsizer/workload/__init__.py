"""workload stage (DESIGN.md §3, §7): request traces, the slot-load statistic θ, its spread σ,
and samples of the stationary worker load (:func:`sample_worker_loads`)."""

from afdsizer.workload._estimators import SlotLoadEstimate, estimate_slot_load
from afdsizer.workload._families import (
    DiscreteDistribution,
    FixedLengths,
    GeometricDecode,
    IndependentMarginals,
)
from afdsizer.workload._summary import (
    LengthStats,
    TraceSummary,
    WindowSummary,
    parse_window,
    summarize_trace,
)
from afdsizer.workload._trace import Trace, bundled_trace_path, load_trace
from afdsizer.workload._worker_load import DEFAULT_WORKER_LOAD_SAMPLES, sample_worker_loads
from afdsizer.workload._workload import Workload

__all__ = [
    "DEFAULT_WORKER_LOAD_SAMPLES",
    "DiscreteDistribution",
    "FixedLengths",
    "GeometricDecode",
    "IndependentMarginals",
    "LengthStats",
    "SlotLoadEstimate",
    "Trace",
    "TraceSummary",
    "WindowSummary",
    "Workload",
    "bundled_trace_path",
    "estimate_slot_load",
    "load_trace",
    "parse_window",
    "sample_worker_loads",
    "summarize_trace",
]
