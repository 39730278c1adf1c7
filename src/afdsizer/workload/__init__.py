"""workload stage (docs/design.md): request traces, the slot-load statistic θ, its spread σ,
and samples of the stationary worker load (:func:`sample_worker_loads`).

Names load on first use (see ``afdsizer._lazy``): reading a trace does not import the
estimators' or summaries' dependencies.
"""

from typing import TYPE_CHECKING

from afdsizer._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads lazily
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

_EXPORTS = {
    "DEFAULT_WORKER_LOAD_SAMPLES": "_worker_load",
    "DiscreteDistribution": "_families",
    "FixedLengths": "_families",
    "GeometricDecode": "_families",
    "IndependentMarginals": "_families",
    "LengthStats": "_summary",
    "SlotLoadEstimate": "_estimators",
    "Trace": "_trace",
    "TraceSummary": "_summary",
    "WindowSummary": "_summary",
    "Workload": "_workload",
    "bundled_trace_path": "_trace",
    "estimate_slot_load": "_estimators",
    "load_trace": "_trace",
    "parse_window": "_summary",
    "sample_worker_loads": "_worker_load",
    "summarize_trace": "_summary",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
