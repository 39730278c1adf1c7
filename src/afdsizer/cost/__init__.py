"""Cost model: per-step Attention, communication and FFN latency (DESIGN.md §2, §5)."""

from afdsizer.cost._coefficients import COEFFICIENT_KEYS, CostCoefficients

__all__ = ["COEFFICIENT_KEYS", "CostCoefficients"]
