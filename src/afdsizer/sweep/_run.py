"""Driving a sweep: validate and resolve up front, skip what is done, run the rest, write chunks."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afdsizer._io import check_output_path
from afdsizer.errors import InputError
from afdsizer.sweep._cells import SweepCell, cell_sim_seed, enumerate_cells
from afdsizer.sweep._checks import check_sweep
from afdsizer.sweep._engines import iter_dask, iter_local
from afdsizer.sweep._evaluate import CellFunction, CellTask, evaluate_cell
from afdsizer.sweep._spec import SweepSpec, load_spec, resolve_data_path
from afdsizer.sweep._store import ResultStore

if TYPE_CHECKING:
    from afdsizer.cost import CostCoefficients

__all__ = ["SweepSummary", "prepare_tasks", "run_sweep"]

_FLUSH_INTERVAL_S = 30.0
"""Write a part at least this often (s) even when a chunk is not full, so a slow sweep killed
mid-way keeps what finished more than this long ago."""
_MAX_CELLS_PER_TASK_THEORY = 32
"""Theory-only cells take about a millisecond: group them so the engine overhead stays small."""
_DASK_BATCHING_WORKERS = 8
"""Dask batches are sized as for this many workers (the cluster's size is known only later);
it sets only how cells are grouped, never what they compute."""
_WORKERS_PER_CPU = 4
_MIN_WORKER_CAP = 32
"""Local workers allowed: max(32, 4 per CPU). Each is a Python process of ~150 MB."""
_MAX_CELLS_PER_TASK_SIM = 2
"""Simulated cells are long enough alone; small batches keep the interrupt loss small."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did (the ``sweep --json`` keys).

    Parameters
    ----------
    output : str
        The output directory of Parquet parts.
    engine : str
        ``"local"`` or ``"dask"``.
    workers : int or None
        Local processes (None on Dask).
    cells_total : int
        Cells in the grid.
    cells_run : int
        Cells evaluated by this call (including failed ones).
    cells_skipped : int
        Cells already recorded by an earlier run, not run again.
    cells_failed : int
        Cells of this call whose ``error`` is set (recorded; not rerun on resume).
    cells_lost : int
        Cells whose worker was lost (killed, out of memory): not recorded, so the next run
        retries them.
    lost_error : str or None
        What took the first lost batch down.
    parts_written : int
        Part files this call added.
    wall_s : float
        Wall time of the call, s.
    cells_per_s : float
        ``cells_run / wall_s``, cells/s (0 when nothing ran).
    """

    output: str
    engine: str
    workers: int | None
    cells_total: int
    cells_run: int
    cells_skipped: int
    cells_failed: int
    cells_lost: int
    lost_error: str | None
    parts_written: int
    wall_s: float
    cells_per_s: float


def _resolve_workload(path: Path) -> tuple[float, float]:
    """(θ, σ) of a trace, tokens (docs/design.md §3)."""
    from afdsizer.workload import estimate_slot_load, load_trace

    trace = load_trace(path)
    est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
    return float(est.theta_tokens), float(est.slot_load_std_tokens)


def _resolve_cost(cell: SweepCell, base_dir: Path, theta_tokens: float) -> CostCoefficients:
    """The cost case of a cell (roofline presets or a coefficient file), as ``size`` resolves it.

    θ lets the roofline charge the per-request attention work, as ``size`` does.
    """
    from afdsizer._sizing import resolve_coefficients

    if cell.coefficients is not None:
        return resolve_coefficients(
            deployment=cell.deployment(), coeffs=resolve_data_path(cell.coefficients, base_dir)
        )
    assert cell.model is not None and cell.hardware is not None  # enumerate_cells guarantees it
    return resolve_coefficients(
        deployment=cell.deployment(),
        model=_local(cell.model, base_dir),
        hardware=_local(cell.hardware, base_dir),
        slot_context_tokens=theta_tokens,
    )


def _local(entry: str, base_dir: Path) -> str:
    """A preset name stays a name; an existing relative path resolves against the spec's folder."""
    candidate = base_dir / entry
    return str(candidate) if candidate.exists() else entry


def prepare_tasks(cells: Sequence[SweepCell], base_dir: Path) -> list[CellTask]:
    """Resolve every trace (θ, σ) and cost case once, and attach them to the cells.

    This is where a bad trace, preset or coefficient file fails — before any cell runs.

    Parameters
    ----------
    cells : sequence of SweepCell
        Cells of a validated spec.
    base_dir : Path
        The spec's directory.

    Returns
    -------
    list of CellTask
        One task per cell, same order.

    Raises
    ------
    InputError, TraceError, DataFileError
        From the workload and cost stages, naming the file or preset.
    """
    workloads: dict[str, tuple[Path, float, float]] = {}
    costs: dict[tuple[object, ...], CostCoefficients] = {}
    tasks = []
    for cell in cells:
        if cell.trace not in workloads:
            path = resolve_data_path(cell.trace, base_dir)
            workloads[cell.trace] = (path, *_resolve_workload(path))
        cost_key: tuple[object, ...] = (cell.model, cell.hardware, cell.coefficients, cell.kv_dtype)
        cost_key = (*cost_key, cell.attn_gpus, cell.ffn_gpus, cell.attn_parallel, cell.ffn_parallel)
        path, theta, sigma = workloads[cell.trace]
        cost_key = (*cost_key, theta)
        if cost_key not in costs:
            costs[cost_key] = _resolve_cost(cell, base_dir, theta)
        tasks.append(
            CellTask(
                cell=cell,
                key=cell.key,
                trace_path=str(path),
                coefficients=costs[cost_key],
                theta_tokens=theta,
                slot_load_std_tokens=sigma,
                sim_seed=cell_sim_seed(cell),
                model_path=None if cell.model is None else _local(cell.model, base_dir),
                hardware_path=None if cell.hardware is None else _local(cell.hardware, base_dir),
            )
        )
    return tasks


def _batches(tasks: Sequence[CellTask], workers: int) -> Iterator[list[CellTask]]:
    """Group tasks into engine tasks: enough per task to amortise overhead, enough tasks to
    keep every worker busy (about four per worker)."""
    if not tasks:
        return
    simulated = any(t.cell.simulate for t in tasks)
    cap = _MAX_CELLS_PER_TASK_SIM if simulated else _MAX_CELLS_PER_TASK_THEORY
    size = max(1, min(cap, math.ceil(len(tasks) / (4 * workers))))
    for start in range(0, len(tasks), size):
        yield list(tasks[start : start + size])


def run_sweep(
    spec: SweepSpec | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    cell_function: CellFunction = evaluate_cell,
    max_cells: int | None = None,
    max_hours: float | None = None,
) -> SweepSummary:
    """Run (or resume) a sweep and append its rows to the Parquet directory ``output``.

    Parameters
    ----------
    spec : SweepSpec or path
        The spec, or its YAML file (validated with :func:`load_spec`).
    output : str or Path
        Directory of Parquet parts; cells already recorded there are skipped.
    base_dir : str or Path, optional
        Where relative paths of a :class:`SweepSpec` object resolve (default: the current
        directory; for a YAML file, its folder).
    scheduler : str, optional
        Dask scheduler address (``tcp://HOST:PORT``); default runs on local processes.
    workers : int, optional
        Local processes (default: the CPU count); 1 runs in this process. Not with ``scheduler``.
    progress : bool, default False
        Show a rich progress bar on stderr.
    cell_function : CellFunction, default evaluate_cell
        Evaluates one cell; replaceable for tests or custom metrics (module-level, picklable).
    max_cells : int, optional
        Refuse grids of more cells (default ``afdsizer.sweep.DEFAULT_MAX_CELLS``).
    max_hours : float, optional
        Refuse grids estimated to run longer, hours (default 24).

    Returns
    -------
    SweepSummary
        Counts of cells run, skipped and failed, and the rate.

    Raises
    ------
    InputError, DataFileError
        A bad spec, file, option, output path or scheduler address, a grid over a limit, or
        simulator options that break a rule in some cell — all before any cell runs.
    EngineError
        Local worker processes keep dying (cells finished so far are saved).

    Notes
    -----
    Rows reach disk in parts of ``spec.chunk_cells`` cells (or every 30 s); an interrupted run
    keeps every part written and flushes the cells finished before the interrupt, losing only
    those in flight. A cell's row depends only on the cell (seeds from
    :func:`afdsizer.sweep.cell_sim_seed`), so local and Dask runs agree except in ``*_wall_s``.
    """
    start = time.perf_counter()
    spec_file = None if isinstance(spec, SweepSpec) else Path(spec)
    if isinstance(spec, SweepSpec):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for entry in (*spec.traces, *spec.coefficients):
            resolve_data_path(entry, base)
    else:
        spec, base = load_spec(spec)
    check_output_path(output, option="-o", inputs={"spec": spec_file}, directory=True)
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    most = max(_MIN_WORKER_CAP, _WORKERS_PER_CPU * (os.cpu_count() or 1))
    if workers is not None and workers > most:
        raise InputError(
            f"--workers must be <= {most} on this machine ({os.cpu_count()} CPUs; cells are "
            f"CPU-bound, so more processes only cost memory), got {workers:,}"
        )
    if scheduler is not None and workers is not None:
        raise InputError("--workers is for local runs; with --scheduler the cluster has its own")
    if scheduler is not None and "://" not in scheduler:
        raise InputError(f"--scheduler must be an address like tcp://HOST:PORT, got {scheduler!r}")
    n_workers = workers or os.cpu_count() or 1
    source = "object" if spec_file is None else str(spec_file)
    check_sweep(spec, source, workers=n_workers, max_cells=max_cells, max_hours=max_hours)
    store = ResultStore(output)
    cells = enumerate_cells(spec)
    tasks = prepare_tasks(cells, base)
    done = store.done_keys()
    todo = [t for t in tasks if t.key not in done]

    if scheduler is not None:
        engine, engine_workers = "dask", None
        batches = _batches(todo, _DASK_BATCHING_WORKERS)
        rows_iter = iter_dask(batches, cell_function, scheduler=scheduler)
    else:
        engine, engine_workers = "local", n_workers
        rows_iter = iter_local(_batches(todo, n_workers), cell_function, workers=n_workers)

    buffer: list[dict[str, Any]] = []
    counts = {"run": 0, "failed": 0, "parts": 0, "lost": 0}
    lost_error: str | None = None

    def flush() -> None:
        if store.append(buffer) is not None:
            counts["parts"] += 1
        buffer.clear()

    bar = _progress_bar(len(todo)) if progress and todo else None
    last_flush = time.monotonic()
    try:
        for outcome in rows_iter:
            rows = outcome.rows
            buffer.extend(rows)
            counts["run"] += len(rows)
            counts["failed"] += sum(row.get("error") is not None for row in rows)
            counts["lost"] += outcome.lost
            lost_error = lost_error or outcome.lost_error
            if bar is not None:
                bar[0].advance(bar[1], len(rows) + outcome.lost)
            if len(buffer) >= spec.chunk_cells or time.monotonic() - last_flush > _FLUSH_INTERVAL_S:
                flush()
                last_flush = time.monotonic()
    finally:
        # Whatever finished is kept, also when interrupted: only cells in flight are lost.
        rows_iter.close()
        flush()
        if bar is not None:
            bar[0].stop()
    wall_s = time.perf_counter() - start
    return SweepSummary(
        output=str(store.path),
        engine=engine,
        workers=engine_workers,
        cells_total=len(tasks),
        cells_run=counts["run"],
        cells_skipped=len(tasks) - len(todo),
        cells_failed=counts["failed"],
        cells_lost=counts["lost"],
        lost_error=lost_error,
        parts_written=counts["parts"],
        wall_s=wall_s,
        cells_per_s=counts["run"] / wall_s if counts["run"] else 0.0,
    )


def _progress_bar(total: int) -> tuple[Any, Any]:
    """A started rich progress bar on stderr and its task id."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task("cells", total=total)
