"""Engines that run batches of cells: this process, a local process pool, or a Dask cluster.

Each engine is a generator of :class:`BatchOutcome` in completion order. It keeps at most
``max_in_flight`` batches submitted, so an interrupted run loses only those, and memory stays
bounded however large the grid. A cell that raises is recorded with its ``error`` (inside
:func:`run_batch`). A batch lost as a whole — its worker killed, out of memory, or the cluster
gone — is *not* recorded: it is counted as lost and the next run retries it, because the cause
is the machine, not the cell.
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import os
from collections.abc import Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from afdsizer.errors import AfdsizerError, InputError
from afdsizer.sweep._evaluate import CellFunction, CellTask, _error_text, run_batch
from afdsizer.sweep._lifeline import DRIVER_PID_ENV, init_worker

__all__ = ["BatchOutcome", "EngineError", "iter_dask", "iter_local"]

Batch = Sequence[CellTask]
Rows = list[dict[str, Any]]

_MAX_BREAKS_IN_A_ROW = 2
"""Pools that break this many times with no batch finishing in between mean a broken setup (the
workers cannot even start), not a bad cell: stop instead of losing every cell."""
_PRELOAD_MODULES = (
    "afdsizer.sweep._lifeline",  # first: ties the fork server to the driver (see its docstring)
    "afdsizer.sweep._evaluate",
    "afdsizer.theory",
    "afdsizer.sim",
    "afdsizer.workload",
)
"""Modules a fork server imports before forking workers (a missing one is skipped silently)."""
_JOIN_TIMEOUT_S = 5
"""How long shutdown waits for each worker process and the pool's manager thread, s."""
_CONNECT_TIMEOUT_S = 10
"""How long to wait for a Dask scheduler before giving up, s."""


class EngineError(AfdsizerError, RuntimeError):
    """Raised when the engine itself keeps failing (worker processes cannot start, say)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchOutcome:
    """One finished engine task.

    Parameters
    ----------
    rows : list of dict
        The rows of the batch (empty when the batch was lost).
    lost : int
        Cells of the batch lost with their worker (not recorded; the next run retries them).
    lost_error : str or None
        ``"Type: message"`` of what took the batch down.
    """

    rows: Rows
    lost: int = 0
    lost_error: str | None = None


def _lost(batch: Batch, exc: BaseException) -> BatchOutcome:
    return BatchOutcome(rows=[], lost=len(batch), lost_error=_error_text(exc))


def iter_local(
    batches: Iterable[Batch], cell_function: CellFunction, *, workers: int
) -> Generator[BatchOutcome, None, None]:
    """Run batches here (``workers == 1``) or on a pool of ``workers`` local processes.

    Worker processes are started with ``forkserver`` where the platform has it (``spawn``
    elsewhere): forking a parent that runs a progress-bar thread can deadlock. They die with
    this process, SIGKILL included (``afdsizer.sweep._lifeline``), and ignore SIGINT: when
    the caller stops early (Ctrl-C, an error, closing the generator) the workers are
    terminated, so a long cell does not hold the exit up.

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
    BatchOutcome
        One finished (or lost) batch.
    """
    if workers == 1:
        for batch in batches:
            yield BatchOutcome(rows=run_batch(batch, cell_function))
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # Import the heavy stages once in the fork server; each worker forks from it warm.
        context.set_forkserver_preload(list(_PRELOAD_MODULES))  # type: ignore[attr-defined]
    max_in_flight = 2 * workers
    os.environ[DRIVER_PID_ENV] = str(os.getpid())  # inherited by the fork server

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(os.getpid(),),
        )

    pool = new_pool()
    finished = False
    generation = 0  # bumped when a broken pool is replaced
    breaks_in_a_row = 0
    pending: dict[Future[Rows], tuple[Batch, int]] = {}
    todo = iter(batches)

    def replace_broken_pool(exc: BaseException) -> None:
        # A worker died (killed, out of memory, crashed in native code): the batches it took
        # down are lost, and a fresh pool runs the rest.
        nonlocal pool, generation, breaks_in_a_row
        breaks_in_a_row += 1
        if breaks_in_a_row == _MAX_BREAKS_IN_A_ROW:
            raise EngineError(
                f"local worker processes died {breaks_in_a_row} times in a row "
                f"({_error_text(exc)}); finished cells are saved; rerun to resume, "
                "or use --workers 1 to see the cause"
            )
        pool.shutdown(wait=False, cancel_futures=True)
        pool = new_pool()
        generation += 1

    try:
        while True:
            while len(pending) < max_in_flight and (batch := next(todo, ())):
                try:
                    future = pool.submit(run_batch, batch, cell_function)
                except BrokenProcessPool as broken:
                    # The pool broke after the last wait; its lost batches surface below.
                    replace_broken_pool(broken)
                    future = pool.submit(run_batch, batch, cell_function)
                pending[future] = (batch, generation)
            if not pending:
                finished = True
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                batch, born = pending.pop(future)
                exc = future.exception()
                if exc is None:
                    breaks_in_a_row = 0
                elif isinstance(exc, BrokenProcessPool) and born == generation:
                    replace_broken_pool(exc)
                yield BatchOutcome(rows=future.result()) if exc is None else _lost(batch, exc)
    finally:
        # Cells not yet started are dropped; the next run resumes them.
        _shutdown(pool, terminate=not finished)


def _shutdown(pool: ProcessPoolExecutor, *, terminate: bool) -> None:
    """Shut ``pool`` down; with ``terminate``, stop its workers now (their cells are lost
    anyway, and retried on resume) instead of letting them finish.

    Returns only once the pool's manager thread has ended: CPython 3.11's exit hook wakes a
    still-running one through a pipe that thread may be closing at that moment, and prints
    ``OSError: [Errno 9] Bad file descriptor`` after afdsizer's own last line.
    """
    # ``_processes`` (pid → Process) and ``_executor_manager_thread`` are the executor's own
    # (CPython 3.8+, no public equivalent); shutdown() drops them, so take them first.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    if terminate:
        for process in processes:
            if process.is_alive():
                process.terminate()
    for process in processes:
        process.join(timeout=_JOIN_TIMEOUT_S)
    if manager is not None:
        manager.join(timeout=_JOIN_TIMEOUT_S)


def iter_dask(
    batches: Iterable[Batch], cell_function: CellFunction, *, scheduler: str
) -> Generator[BatchOutcome, None, None]:
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
    BatchOutcome
        One finished (or lost) batch.

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
                outcome = BatchOutcome(rows=future.result())
            except Exception as exc:  # a killed worker, a pickling failure: retried next run
                outcome = _lost(batch, exc)
            future.release()
            yield outcome
            submit_next()
    finally:
        client.close()
