"""What runs on a worker: one cell's theory and simulation, and batches of cells.

Everything here is a pure function of a frozen :class:`CellTask`, so a cell gives the same row
whichever process, machine or engine runs it (only the ``*_wall_s`` timings differ).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afdsizer.sweep._cells import SweepCell
from afdsizer.sweep._spec import BUNDLED_PREFIX, resolve_data_path
from afdsizer.sweep._store import RESULT_COLUMNS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from afdsizer.cost import CostCoefficients

__all__ = ["CellFunction", "CellTask", "evaluate_cell", "run_batch"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CellTask:
    """A cell with everything resolved that a worker needs to evaluate it.

    Parameters
    ----------
    cell : SweepCell
        The grid point.
    key : str
        ``cell.key``, computed once by the driver.
    trace_path : str
        Absolute path of the cell's trace on the driver. Workers read it for the simulator, so
        on a Dask cluster it must exist at the same path on every worker (bundled traces are
        resolved on the worker itself).
    coefficients : CostCoefficients
        The cell's resolved cost case.
    theta_tokens : float
        θ, mean slot load of the trace, tokens.
    slot_load_std_tokens : float
        σ, stationary std of one slot's load, tokens.
    sim_seed : int
        Simulator seed (:func:`afdsizer.sweep.cell_sim_seed`).
    """

    cell: SweepCell
    key: str
    trace_path: str
    coefficients: CostCoefficients
    theta_tokens: float
    slot_load_std_tokens: float
    sim_seed: int


CellFunction = Callable[[CellTask], Mapping[str, Any]]
"""Evaluates one cell; returns values for some of :data:`RESULT_COLUMNS`. May raise: the sweep
records ``"Type: message"`` in the cell's ``error`` column and goes on."""


def _base_row(task: CellTask) -> dict[str, Any]:
    """The columns that describe the cell and its resolved inputs."""
    cell = task.cell
    row: dict[str, Any] = dataclasses.asdict(cell)
    row.update(
        cell_key=task.key,
        ratio_auto=cell.ratio is None,
        sim_seed=task.sim_seed if cell.simulate else None,
        theta_tokens=task.theta_tokens,
        slot_load_std_tokens=task.slot_load_std_tokens,
        **{k: v for k, v in task.coefficients.to_dict().items() if k != "source"},
    )
    return row


def _error_text(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_batch(tasks: Sequence[CellTask], cell_function: CellFunction) -> list[dict[str, Any]]:
    """Evaluate cells one after another; a failing cell gets its ``error`` and the batch goes on.

    Parameters
    ----------
    tasks : sequence of CellTask
        The cells of one engine task.
    cell_function : CellFunction
        Evaluates one cell (:func:`evaluate_cell` unless a test substitutes one).

    Returns
    -------
    list of dict
        One row per task, keys from :data:`afdsizer.sweep.SCHEMA`.
    """
    rows = []
    for task in tasks:
        row = _base_row(task)
        try:
            out = dict(cell_function(task))
            unknown = sorted(set(out) - RESULT_COLUMNS.keys())
            if unknown:
                raise KeyError(f"cell function returned unknown column(s) {', '.join(unknown)}")
            row.update(out)
        except Exception as exc:  # a failing cell is recorded, not fatal (issue 7)
            row["error"] = _error_text(exc)
        rows.append(row)
    return rows


@functools.lru_cache(maxsize=8)
def _trace_arrays(path: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(P, D) of a trace, loaded once per worker process."""
    from afdsizer.workload import load_trace

    trace = load_trace(path)
    return trace.prompt_tokens, trace.decode_tokens


def _theory_columns(task: CellTask) -> dict[str, Any]:
    """Theory for the cell: r*, regime at B, and Λ, E[τ], idle fractions at the cell's r (§4)."""
    from afdsizer import theory

    cell = task.cell
    stats: dict[str, Any] = {
        "theta_tokens": task.theta_tokens,
        "slot_load_std_tokens": task.slot_load_std_tokens,
        "batch": cell.batch,
    }
    rec = theory.recommend(task.coefficients, **stats)
    ratio = rec.r_int if cell.ratio is None else cell.ratio
    at_r = {**stats, "ratio": ratio}
    coefficients = task.coefficients
    return {
        "ratio": ratio,
        "r_star": rec.r_star,
        "r_star_mean_field": rec.r_star_mean_field,
        "r_int": rec.r_int,
        "r_int_mean_field": rec.r_int_mean_field,
        "regime": str(rec.regime),
        "r_attention": rec.r_attention,
        "r_attention_barrier": rec.r_attention_barrier,
        "r_communication": rec.r_communication,
        "r_peak": rec.r_peak,
        "theory_throughput_per_instance": float(theory.throughput_barrier(coefficients, **at_r)),
        "theory_throughput_per_instance_mean_field": float(
            theory.throughput_mean_field(
                coefficients, theta_tokens=task.theta_tokens, batch=cell.batch, ratio=ratio
            )
        ),
        "theory_step_time_s": float(theory.expected_step_time_s(coefficients, **at_r)),
        "theory_attention_idle": float(theory.attention_idle_fraction(coefficients, **at_r)),
        "theory_ffn_idle": float(theory.ffn_idle_fraction(coefficients, **at_r)),
    }


def _sim_columns(task: CellTask, ratio: int) -> dict[str, Any]:
    """One simulation of the cell's bundle at r = ``ratio`` (docs/design.md §6)."""
    from afdsizer.sim import SimConfig, simulate

    cell = task.cell
    trace_path = task.trace_path
    if cell.trace.startswith(BUNDLED_PREFIX):
        # Resolved here, not on the driver: a Dask worker's package may live elsewhere.
        trace_path = str(resolve_data_path(cell.trace, Path.cwd()))
    prompt_tokens, decode_tokens = _trace_arrays(trace_path)
    options: dict[str, Any] = {
        "ratio": ratio,
        "batch": cell.batch,
        "steps": cell.steps,
        "warmup_steps": cell.warmup_steps,
        "seed": task.sim_seed,
        "pipeline": cell.pipeline,
        "jitter_cv": cell.jitter_cv,
        "refill": cell.refill,
    }
    if cell.microbatches is not None:
        options["microbatches"] = cell.microbatches
    result = simulate(prompt_tokens, decode_tokens, task.coefficients, SimConfig(**options))
    return {
        "sim_throughput_per_instance": result.throughput_per_instance,
        "sim_throughput_stderr": result.throughput_stderr,
        "sim_tokens_per_s": result.tokens_per_s,
        "sim_step_time_mean_s": result.step_time_mean_s,
        "sim_step_time_p99_s": result.step_time_p99_s,
        "sim_attention_idle": result.attention_idle,
        "sim_ffn_idle": result.ffn_idle,
        "sim_barrier_idle": result.barrier_idle,
        "sim_mean_slot_load_tokens": result.mean_slot_load,
        "sim_tpot_p50_s": result.tpot_p50_s,
        "sim_tpot_p99_s": result.tpot_p99_s,
        "sim_completed_requests": result.completed_requests,
    }


def evaluate_cell(task: CellTask) -> dict[str, Any]:
    """The default cell function: theory for every cell, simulation where the cell asks.

    Parameters
    ----------
    task : CellTask
        The resolved cell.

    Returns
    -------
    dict
        Values for :data:`afdsizer.sweep.RESULT_COLUMNS`.
    """
    start = time.perf_counter()
    out = _theory_columns(task)
    out["theory_wall_s"] = time.perf_counter() - start
    if task.cell.simulate:
        start = time.perf_counter()
        out.update(_sim_columns(task, int(out["ratio"])))
        out["sim_wall_s"] = time.perf_counter() - start
    return out
