"""Resource estimates made before work starts, and the limits they are held to.

A simulation of r·B slots over n steps, or a sweep of many cells, can ask for more memory than
the machine has or run for days. Such a size is almost always a typo (``--ratio 1000000000``,
``steps: 1000000000000``), so commands estimate memory and time first and refuse, in one line
with the estimate and the option that raises the limit, instead of failing hours later or being
killed by the kernel.

The constants are measured on the simulator (``sim/_engine.py``): about 200 bytes of state per
slot, 8 bytes per step for the step times (twice while they are joined at the end), 56 more per
step with a recorded series; 2 to 35 ns per slot-step on a 2020s x86 core, depending on how
much of the state fits in cache. The time estimate uses a middle figure: it separates "seconds"
from "days", which is all a limit needs.
"""

from __future__ import annotations

import dataclasses
import os

from afdsizer.errors import InputError

__all__ = [
    "DEFAULT_MAX_HOURS",
    "SimSize",
    "check_simulation_size",
    "format_bytes",
    "format_duration",
    "physical_memory_bytes",
    "simulation_size",
]

SIM_SLOT_BYTES = 256
"""Simulator state per slot, bytes (slot arrays, calendar links, completion buffer)."""
SIM_STEP_BYTES = 16
"""Per simulated step, bytes: the step time, held twice while the chunks are joined."""
SIM_SERIES_STEP_BYTES = 120
"""Per step with a recorded series (seven columns, copied once into the result), bytes."""
SIM_STEP_S = 1e-7
"""Fixed cost of one simulated step, s."""
SIM_SLOT_STEP_S = 1.5e-8
"""Cost of one slot in one step, s (2–35 ns measured; a middle figure)."""
SIM_STAGE_S = 5e-9
"""Microbatch pipeline: cost of one (layer, microbatch, worker) stage per step, s (1.6–7 ns)."""
DEFAULT_MAX_HOURS = 24.0
"""Estimated wall time above which a command refuses unless told otherwise, hours."""
MEMORY_FRACTION = 0.8
"""Share of the machine's physical memory one command may plan to use by default."""


def physical_memory_bytes() -> float:
    """The machine's physical memory, bytes (infinite where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not POSIX: no memory limit
        return float("inf")


def format_bytes(n_bytes: float) -> str:
    """``1.5e12`` → ``"1.4 TiB"``: binary units, three significant figures.

    Examples
    --------
    >>> format_bytes(3 * 2**30)
    '3.0 GiB'
    """
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``90000`` → ``"25.0 h"``: seconds, minutes, hours, days or years.

    Examples
    --------
    >>> format_duration(90_000)
    '25.0 h'
    """
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size if unit in ("years", "days") else seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


@dataclasses.dataclass(frozen=True, slots=True)
class SimSize:
    """Estimated peak memory (bytes) and wall time (s) of one simulation run."""

    memory_bytes: float
    seconds: float


def simulation_size(
    ratio: int, batch: int, steps: int, *, record_series: bool = False, pipeline_stages: int = 0
) -> SimSize:
    """Estimate one simulation of ``ratio`` × ``batch`` slots over ``steps`` steps.

    ``pipeline_stages`` is m·L for the microbatch pipeline (each step walks m·L stages per
    worker), 0 otherwise.

    Examples
    --------
    >>> size = simulation_size(16, 256, 100_000)
    >>> round(size.memory_bytes / 2**20, 1), round(size.seconds, 1)
    (2.5, 6.2)
    """
    slots = float(ratio) * float(batch)
    per_step = SIM_STEP_BYTES + (SIM_SERIES_STEP_BYTES if record_series else 0)
    memory = slots * SIM_SLOT_BYTES + float(steps) * per_step
    stages = float(pipeline_stages) * float(ratio)
    seconds = float(steps) * (SIM_STEP_S + slots * SIM_SLOT_STEP_S + stages * SIM_STAGE_S)
    return SimSize(memory_bytes=memory, seconds=seconds)


def check_simulation_size(
    size: SimSize,
    *,
    what: str,
    max_memory_gb: float | None,
    max_hours: float | None,
    memory_option: str = "--max-memory-gb",
    time_option: str = "--max-hours",
    hint: str | None = None,
) -> None:
    """Refuse a run whose estimate is over the memory or time limit.

    Parameters
    ----------
    size : SimSize
        The estimate (:func:`simulation_size`, or a sum of them).
    what : str
        What is being sized, for the message (``"--ratio 1000000000 × --batch 16"``).
    max_memory_gb : float or None
        Limit in GiB; None means :data:`MEMORY_FRACTION` of the physical memory.
    max_hours : float or None
        Limit in hours; None means :data:`DEFAULT_MAX_HOURS`.
    memory_option, time_option : str
        The options that raise the limits, named in the message.
    hint : str, optional
        Said instead of naming those options, for a command that has none (``"lower
        --sim-steps"``).

    Raises
    ------
    InputError
        The estimate is over a limit; the message gives the estimate, the limit and its option.
    """
    mem_limit = (
        MEMORY_FRACTION * physical_memory_bytes()
        if max_memory_gb is None
        else max_memory_gb * 2**30
    )
    if max_memory_gb is not None and not max_memory_gb > 0:
        raise InputError(f"{memory_option} must be > 0 GiB, got {max_memory_gb}")
    if max_hours is not None and not max_hours > 0:
        raise InputError(f"{time_option} must be > 0 hours, got {max_hours}")
    hours_limit = DEFAULT_MAX_HOURS if max_hours is None else max_hours
    if size.memory_bytes > mem_limit:
        remedy = hint or f"{memory_option} raises it; is the size a typo?"
        raise InputError(
            f"{what} needs about {format_bytes(size.memory_bytes)} of memory, over the limit of "
            f"{format_bytes(mem_limit)} ({remedy})"
        )
    if size.seconds > hours_limit * 3600:
        remedy = hint or f"{time_option} raises it; is the size a typo?"
        raise InputError(
            f"{what} would run for about {format_duration(size.seconds)}, over the limit of "
            f"{hours_limit:g} h ({remedy})"
        )
