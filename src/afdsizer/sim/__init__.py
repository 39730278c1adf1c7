"""sim stage (docs/design.md §6, §7): the step-level simulator of one rA–1F bundle.

:func:`simulate` runs one configuration (:class:`SimConfig`) and returns :class:`SimResult`;
:func:`sweep_ratios` runs several r with common random numbers. The compiled kernel lives in
``sim/_kernel.py``; :mod:`afdsizer.sim.reference` is its plain-Python twin.
"""

from afdsizer.sim._config import DEFAULT_LAYERS, DEFAULT_WARMUP_FRAC, SimConfig
from afdsizer.sim._engine import CHUNK_STEPS, simulate, sweep_ratios
from afdsizer.sim._result import RatioSweep, SimResult, StepSeries

__all__ = [
    "CHUNK_STEPS",
    "DEFAULT_LAYERS",
    "DEFAULT_WARMUP_FRAC",
    "RatioSweep",
    "SimConfig",
    "SimResult",
    "StepSeries",
    "simulate",
    "sweep_ratios",
]
