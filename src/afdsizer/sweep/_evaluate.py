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
    from afdsizer._sizing import SizingInputs
    from afdsizer.cost import CostCoefficients
    from afdsizer.deployment import Deployment
    from afdsizer.sim import SimConfig
    from afdsizer.workload import Workload

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
    model_path, hardware_path : str or None
        The roofline case's model and hardware as the driver resolved them (a preset name, or
        a path relative to the spec made absolute); None for a coefficient file. With them the
        theory re-linearises t_F at its operating point, as ``afdsizer size --model`` does.
    """

    cell: SweepCell
    key: str
    trace_path: str
    coefficients: CostCoefficients
    theta_tokens: float
    slot_load_std_tokens: float
    sim_seed: int
    model_path: str | None = None
    hardware_path: str | None = None


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
        batch_auto=cell.batch is None,
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


def _cell_trace_path(task: CellTask) -> str:
    if task.cell.trace.startswith(BUNDLED_PREFIX):
        # Resolved here, not on the driver: a Dask worker's package may live elsewhere.
        return str(resolve_data_path(task.cell.trace, Path.cwd()))
    return task.trace_path


@functools.lru_cache(maxsize=8)
def _workload(path: str) -> Workload:
    """The trace's :class:`~afdsizer.workload.Workload` (θ, σ, worker-load law), once per worker."""
    from afdsizer.workload import Workload

    return Workload.from_trace(path)


def _sizing_inputs(task: CellTask) -> SizingInputs:
    """What ``afdsizer size`` would size the cell with: the trace's Workload, the cell's
    Deployment (L for the microbatch pipeline, when not given, from the coefficients or the
    model, so the theory and the simulation read one L) and coefficients, re-linearisable at
    the operating point for a roofline case."""
    from afdsizer._sizing import SizingInputs, _model_layers, roofline_relineariser

    deployment = task.cell.deployment()
    needs_layers = deployment.resolved_pipeline == "microbatch" and deployment.layers is None
    if needs_layers:
        layers = task.coefficients.layers
        if layers is None and task.model_path is not None:
            layers = _model_layers(task.model_path, None)
        if layers is not None:
            deployment = deployment.replace(layers=layers)
    relinearise = None
    workload = _workload(_cell_trace_path(task))
    if task.model_path is not None:
        relinearise = roofline_relineariser(
            deployment, task.model_path, task.hardware_path, None, None, workload.theta_tokens
        )
    return SizingInputs(
        workload=workload,
        coefficients=task.coefficients,
        deployment=deployment,
        relinearise=relinearise,
    )


def _theory_columns(task: CellTask) -> tuple[dict[str, Any], CostCoefficients, Deployment]:
    """The sizing ``afdsizer size`` does for the cell's workload and deployment
    (:func:`afdsizer._sizing.recommend_at_operating_point`: ``recommend`` with the same barrier
    law and seeded worker-load draw, t_F re-linearised at the operating point for a roofline
    case), and the same step model's Λ, E[τ], idle and tokens/s per GPU at the cell's r
    (docs/design.md §7). Also returns the coefficients and the deployment (layers resolved) it
    used."""
    from afdsizer._sizing import recommend_at_operating_point
    from afdsizer.theory import deployment_curve

    cell = task.cell
    inputs = _sizing_inputs(task)
    rec, coefficients = recommend_at_operating_point(inputs)
    workload, deployment = inputs.workload, inputs.deployment
    ratio = rec.r_int if cell.ratio is None else cell.ratio
    B = rec.batch
    curve = deployment_curve(coefficients, workload, deployment, batch=B, ratio=[ratio])
    tau = float(curve.step_time_s[0])
    gpus = deployment.gpus_per_bundle(ratio)
    columns = {
        "batch": B,
        "ratio": ratio,
        "r_star": rec.r_star,
        "r_star_mean_field": rec.r_star_mean_field,
        "r_int": rec.r_int,
        "r_int_mean_field": rec.r_int_mean_field,
        "regime": str(rec.regime),
        "barrier_model": str(rec.barrier_model),
        "r_attention": rec.r_attention,
        "r_attention_barrier": rec.r_attention_barrier,
        "r_communication": rec.r_communication,
        "r_peak": rec.r_peak,
        "gpus_per_bundle": gpus,
        "theory_throughput_per_gpu": ratio * B / (gpus * tau),
        "theory_throughput_per_instance": float(curve.throughput_per_instance[0]),
        "theory_throughput_per_instance_mean_field": ratio
        * B
        / ((ratio + 1) * float(curve.step_time_mean_field_s[0])),
        "theory_step_time_s": tau,
        "theory_attention_idle": float(curve.attention_idle[0]),
        "theory_ffn_idle": float(curve.ffn_idle[0]),
        "theory_alpha_ffn_s": coefficients.alpha_ffn_s,
        "theory_beta_ffn_s_per_token": coefficients.beta_ffn_s_per_token,
    }
    return columns, coefficients, deployment


def _sim_config(
    cell: SweepCell, seed: int, deployment: Deployment, ratio: int, batch: int
) -> SimConfig:
    """The cell's simulator options; ``pipeline: deployment`` is the bundle its theory sized."""
    from afdsizer.sim import SimConfig

    if cell.pipeline == "deployment":
        assert cell.steps is not None  # a simulated cell always has its steps
        config = SimConfig.from_deployment(
            deployment,
            ratio=ratio,
            batch=batch,
            steps=cell.steps,
            seed=seed,
            warmup_steps=cell.warmup_steps,
        )
        noise: dict[str, Any] = {"jitter_cv": cell.jitter_cv, "refill": cell.refill}
        return dataclasses.replace(config, **{k: v for k, v in noise.items() if v is not None})
    options: dict[str, Any] = {
        "ratio": ratio,
        "batch": batch,
        "steps": cell.steps,
        "warmup_steps": cell.warmup_steps,
        "seed": seed,
        "pipeline": cell.pipeline,
        "jitter_cv": cell.jitter_cv,
        "refill": cell.refill,
    }
    if cell.microbatches is not None:
        options["microbatches"] = cell.microbatches
    return SimConfig(**options)


def _sim_columns(
    task: CellTask,
    coefficients: CostCoefficients,
    deployment: Deployment,
    ratio: int,
    batch: int,
) -> dict[str, Any]:
    """One simulation of the cell's bundle at r = ``ratio`` (docs/design.md §6)."""
    from afdsizer.sim import simulate

    cell = task.cell
    trace = _workload(_cell_trace_path(task)).trace
    assert trace is not None  # a trace-built workload keeps its trace
    config = _sim_config(cell, task.sim_seed, deployment, ratio, batch)
    if cell.pipeline == "deployment":
        # As sized (and as the report simulates): B fits the KV load's quantile with every slot
        # busy; the simulator's admission rule, reserving each request's final P+D, is stricter.
        coefficients = dataclasses.replace(coefficients, kv_capacity_tokens=None)
    result = simulate(trace.prompt_tokens, trace.decode_tokens, coefficients, config)
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

    The theory is :func:`afdsizer.theory.recommend` on the trace's
    :class:`~afdsizer.workload.Workload` and the cell's
    :class:`~afdsizer.deployment.Deployment` (``cell.deployment()``): the r of a
    ``ratio: auto`` cell is the r ``afdsizer size`` deploys on the same inputs.

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
    out, coefficients, deployment = _theory_columns(task)
    out["theory_wall_s"] = time.perf_counter() - start
    if task.cell.simulate:
        # The simulator runs on the coefficients the theory sized with (as `size --report`).
        start = time.perf_counter()
        ratio, batch = int(out["ratio"]), int(out["batch"])
        out.update(_sim_columns(task, coefficients, deployment, ratio, batch))
        out["sim_wall_s"] = time.perf_counter() - start
    return out
