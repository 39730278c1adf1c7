"""Checks of a whole grid before its first cell runs: size, time, and rules spanning several keys.

Pydantic checks each key of a spec on its own. What it cannot see is the grid as a whole: a
spec of three 1000-value axes is a billion cells (the driver would run out of memory listing
them), ``simulate.steps: 1000000000000`` is weeks per cell, and ``microbatches: [3]`` with
``batch: [16]`` breaks the simulator's rule that m divides B in every such cell. These checks
find all three from the axes alone, without listing the cells, and say so in one line.
"""

from __future__ import annotations

from afdsizer._limits import (
    DEFAULT_MAX_HOURS,
    MEMORY_FRACTION,
    SimSize,
    check_simulation_size,
    format_bytes,
    format_duration,
    physical_memory_bytes,
    simulation_size,
)
from afdsizer.errors import InputError
from afdsizer.sweep._cells import _sim_options
from afdsizer.sweep._spec import SweepSpec

__all__ = ["DEFAULT_MAX_CELLS", "check_sweep", "count_cells"]

DEFAULT_MAX_CELLS = 1_000_000
"""Cells a sweep may have unless ``--max-cells`` says otherwise."""
DRIVER_BYTES_PER_CELL = 4096
"""Driver memory per cell (the cell, its task, key and row), bytes; measured about 3 KB."""
THEORY_CELL_S = 2e-3
"""Time of one theory-only cell, s (about a millisecond, measured)."""
AUTO_RATIO_GUESS = 16
"""r assumed for ``ratio: auto`` in the time estimate (the theory's r is not known yet)."""


def count_cells(spec: SweepSpec) -> int:
    """Number of cells of ``spec``, from the axis lengths (as :func:`enumerate_cells` lists them).

    Examples
    --------
    >>> spec = SweepSpec(traces=["t.csv"], coefficients=["c.json"], batch=[64, 128], ratio=[2, 4])
    >>> count_cells(spec)
    4
    """
    cost_cases = len(spec.models) * len(spec.hardware) + len(spec.coefficients)
    seeds = len(spec.seeds) if spec.simulate is not None else 1
    return (
        len(spec.traces)
        * cost_cases
        * len(spec.batch)
        * len(spec.ratio)
        * seeds
        * _n_sim_options(spec)
    )


def _n_sim_options(spec: SweepSpec) -> int:
    sim = spec.simulate
    if sim is None:
        return 1
    per_pipeline = sum(len(sim.microbatches) if p == "microbatch" else 1 for p in sim.pipeline)
    return per_pipeline * len(sim.jitter_cv) * len(sim.refill)


def _ratios_for_estimate(spec: SweepSpec) -> list[int]:
    return [AUTO_RATIO_GUESS if r == "auto" else r for r in spec.ratio]


def _batches_for_estimate(spec: SweepSpec) -> list[int]:
    # `batch: auto` is refused with simulation, so only the given batches are simulated.
    return [b for b in spec.batch if b != "auto"] or [1]


def _simulation_hours(spec: SweepSpec) -> float:
    """Estimated simulation time of the whole grid on one worker, hours."""
    if spec.simulate is None:
        return 0.0
    steps = spec.simulate.steps
    per_bundle = sum(
        simulation_size(r, b, steps).seconds
        for r in _ratios_for_estimate(spec)
        for b in _batches_for_estimate(spec)
    )
    others = count_cells(spec) // (len(spec.batch) * len(spec.ratio))
    return per_bundle * others / 3600


def _check_cross_fields(spec: SweepSpec, source: str) -> None:
    """Build the simulator's config for every (B, simulator options) of the grid once.

    SimConfig holds the rules spanning several values (m divides B, warm-up < steps); a cell
    breaking them would fail at run time, so the grid is refused before the first cell.
    """
    if spec.simulate is None:
        return
    from afdsizer.sim import SimConfig

    ratio = next((r for r in spec.ratio if r != "auto"), 1)
    deployment = spec.deployment()
    # L only scales the pipeline's stages; the rules checked here do not depend on it.
    deployment = deployment.replace(layers=deployment.layers or 1)
    for options in _sim_options(spec):
        for batch in spec.batch:
            if batch == "auto":
                continue  # B is the theory's, known only when the cell runs
            kwargs = {k: v for k, v in options.items() if k != "simulate" and v is not None}
            try:
                if kwargs["pipeline"] == "deployment":
                    SimConfig.from_deployment(deployment, ratio=ratio, batch=batch)
                else:
                    SimConfig(ratio=ratio, batch=batch, **kwargs)  # type: ignore[arg-type]
            except InputError as exc:
                where = f"batch {batch}, pipeline {options['pipeline']}"
                if options.get("microbatches") is not None:
                    where += f", microbatches {options['microbatches']}"
                hint = ""
                if options["pipeline"] == "deployment":
                    hint = (
                        " (simulate.pipeline: deployment simulates the cells' deployment; "
                        "name the simulator's own, e.g. simulate.pipeline: [overlapped])"
                    )
                raise InputError(f"sweep spec {source}: cells with {where}: {exc}{hint}") from None


def check_sweep(
    spec: SweepSpec,
    source: str,
    *,
    workers: int,
    max_cells: int | None = None,
    max_hours: float | None = None,
) -> None:
    """Refuse a grid that is too large, too slow, or breaks a rule spanning several keys.

    Parameters
    ----------
    spec : SweepSpec
        The validated spec.
    source : str
        The spec's file (or ``"object"``), for messages.
    workers : int
        Processes the cells share (for the time estimate).
    max_cells : int, optional
        Most cells allowed (default :data:`DEFAULT_MAX_CELLS`).
    max_hours : float, optional
        Longest estimated wall time allowed, hours (default ``afdsizer._limits.DEFAULT_MAX_HOURS``).

    Raises
    ------
    InputError
        Over a limit (with the estimate and the option that raises it), or a cell's simulator
        options break a rule (``microbatches`` must divide ``batch``, ...).
    """
    cap = DEFAULT_MAX_CELLS if max_cells is None else max_cells
    if cap < 1:
        raise InputError(f"--max-cells must be >= 1, got {cap}")
    n_cells = count_cells(spec)
    if n_cells > cap:
        driver = format_bytes(n_cells * DRIVER_BYTES_PER_CELL)
        raise InputError(
            f"sweep spec {source}: {n_cells:,} cells, over the limit of {cap:,} (listing them "
            f"alone would take about {driver} of memory; --max-cells raises the limit)"
        )
    memory_cap = MEMORY_FRACTION * physical_memory_bytes()
    if n_cells * DRIVER_BYTES_PER_CELL > memory_cap:
        raise InputError(
            f"sweep spec {source}: {n_cells:,} cells need about "
            f"{format_bytes(n_cells * DRIVER_BYTES_PER_CELL)} on the driver, over "
            f"{format_bytes(memory_cap)}; split the grid"
        )
    if spec.simulate is not None:
        biggest = simulation_size(
            max(_ratios_for_estimate(spec)), max(_batches_for_estimate(spec)), spec.simulate.steps
        )
        check_simulation_size(
            SimSize(memory_bytes=biggest.memory_bytes, seconds=0.0),
            what=f"sweep spec {source}: one cell of simulate.steps {spec.simulate.steps:,}",
            max_memory_gb=None,
            max_hours=None,
            hint="lower simulate.steps, batch or ratio",
        )
    hours_cap = DEFAULT_MAX_HOURS if max_hours is None else max_hours
    if not hours_cap > 0:
        raise InputError(f"--max-hours must be > 0 hours, got {hours_cap}")
    hours = (_simulation_hours(spec) + n_cells * THEORY_CELL_S / 3600) / max(1, workers)
    if hours > hours_cap:
        raise InputError(
            f"sweep spec {source}: {n_cells:,} cells would run for about "
            f"{format_duration(hours * 3600)} on {workers} worker(s), over the limit of "
            f"{hours_cap:g} h (--max-hours raises it)"
        )
    _check_cross_fields(spec, source)
