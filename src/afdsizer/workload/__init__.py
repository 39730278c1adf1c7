"""workload stage (DESIGN.md §3, §7): request traces, the slot-load statistic θ and its spread σ."""

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

__all__ = [
    "DiscreteDistribution",
    "FixedLengths",
    "GeometricDecode",
    "IndependentMarginals",
    "LengthStats",
    "SlotLoadEstimate",
    "Trace",
    "TraceSummary",
    "WindowSummary",
    "bundled_trace_path",
    "estimate_slot_load",
    "load_trace",
    "parse_window",
    "summarize_trace",
]
