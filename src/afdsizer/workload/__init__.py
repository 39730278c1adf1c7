"""workload stage (DESIGN.md §3, §7): request traces, the slot-load statistic θ and its spread σ."""

from afdsizer.workload._trace import Trace, bundled_trace_path, load_trace

__all__ = ["Trace", "bundled_trace_path", "load_trace"]
