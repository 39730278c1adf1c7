"""Engines that run batches of cells: this process, a local process pool, or a Dask cluster.

Each engine is a generator of finished batches (lists of rows) in completion order. It keeps at
most ``max_in_flight`` batches submitted, so an interrupted run loses only those, and memory stays
bounded however large the grid. A batch whose task fails as a whole (a worker lost, say) comes back
as rows with ``error`` set rather than stopping the sweep.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from afdsizer.errors import InputError
from afdsizer.sweep._evaluate import CellFunction, CellTask, _base_row, _error_text, run_batch

__all__ = ["iter_dask", "iter_local"]

Batch = Sequence[CellTask]
Rows = list[dict[str, Any]]


def _failed_rows(batch: Batch, exc: BaseException) -> Rows:
    """Rows recording that a whole batch failed outside the cell function."""
    rows = []
    for task in batch:
        row = _base_row(task)
        row["error"] = _error_text(exc)
        rows.append(row)
    return rows


def iter_local(
    batches: Iterable[Batch], cell_function: CellFunction, *, workers: int
) -> Generator[Rows, None, None]:
    """Run batches here (``workers == 1``) or on a pool of ``workers`` local processes.

    Worker processes are started with ``forkserver`` where the platform has it (``spawn``
    elsewhere): forking a parent that runs a progress-bar thread can deadlock.

    Parameters
    ----------
    batches : iterable of sequences of CellTask
        The work, in submission order.
    cell_function : CellFunction
        Evaluates one cell; must be picklable (a module-level function) when ``workers > 1``.
    workers : int
        Number of processes; 1 runs everything in the calling process.

    Yields
    ------
    list of dict
        The rows of one finished batch.
    """
    if workers == 1:
        for batch in batches:
            yield run_batch(batch, cell_function)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    max_in_flight = 2 * workers
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    generation = 0  # bumped when a broken pool is replaced
    pending: dict[Future[Rows], tuple[Batch, int]] = {}
    todo = iter(batches)
    try:
        while True:
            while len(pending) < max_in_flight and (batch := next(todo, ())):
                pending[pool.submit(run_batch, batch, cell_function)] = (batch, generation)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch, born = pending.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool) and born == generation:
                    # A worker died (killed, out of memory, crashed in native code): the batches
                    # it took down are recorded as failed and a fresh pool runs the rest.
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
                    generation += 1
                yield future.result() if exc is None else _failed_rows(batch, exc)
    finally:
        # Cells not yet started are dropped; the next run resumes them.
        pool.shutdown(wait=False, cancel_futures=True)


def iter_dask(
    batches: Iterable[Batch], cell_function: CellFunction, *, scheduler: str
) -> Generator[Rows, None, None]:
    """Run batches on the Dask distributed cluster at ``scheduler``.

    Parameters
    ----------
    batches : iterable of sequences of CellTask
        The work, in submission order.
    cell_function : CellFunction
        Evaluates one cell; shipped to the workers with cloudpickle.
    scheduler : str
        Scheduler address, e.g. ``tcp://10.0.0.5:8786``.

    Yields
    ------
    list of dict
        The rows of one finished batch.

    Raises
    ------
    InputError
        dask.distributed is not installed, or the scheduler cannot be reached.
    """
    try:
        # Typed as Any: distributed ships no annotations for its public calls.
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise InputError(
            f"--scheduler {scheduler}: needs dask.distributed; install afdsizer[dask]"
        ) from None
    try:
        client = distributed.Client(scheduler, timeout=_CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"--scheduler {scheduler}: cannot connect within {_CONNECT_TIMEOUT_S} s ({exc})"
        ) from None
    try:
        max_in_flight = 2 * max(1, sum(client.nthreads().values()))
        pending: dict[str, Batch] = {}
        finished = distributed.as_completed(loop=client.loop)
        todo = iter(batches)

        def submit_next() -> bool:
            batch = next(todo, ())
            if not batch:
                return False
            # Keys name the batch by its first cell: stable, and unique within a sweep.
            key = f"afdsizer-sweep-{batch[0].key}-{len(batch)}"
            future = client.submit(run_batch, batch, cell_function, key=key, pure=False)
            pending[future.key] = batch
            finished.add(future)
            return True

        for _ in range(max_in_flight):
            if not submit_next():
                break
        for future in finished:
            batch = pending.pop(future.key)
            try:
                rows: Rows = future.result()
            except Exception as exc:  # a lost worker or a pickling failure: record, go on
                rows = _failed_rows(batch, exc)
            future.release()
            yield rows
            submit_next()
    finally:
        client.close()


_CONNECT_TIMEOUT_S = 10
"""How long to wait for a Dask scheduler before giving up, s."""
