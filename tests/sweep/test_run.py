"""Running sweeps: engines agree, runs resume, interrupts lose only cells in flight, failures are
recorded. These tests use a stand-in cell function (tests/sweep/_standin.py); test_evaluate.py runs
the real theory and simulator."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from afdsizer.errors import DataFileError, InputError
from afdsizer.sweep import EngineError, read_results, run_sweep

from ._standin import (
    CRASH_BATCH,
    FAILING_BATCH,
    InterruptAfter,
    always_crashing_cell,
    crashing_cell,
    slow_cell,
    standin_cell,
    very_slow_cell,
)


def _comparable(path: Path) -> pl.DataFrame:
    """The results without the timing columns, which alone may differ between runs."""
    table = read_results(path)
    return table.select([c for c in table.columns if not c.endswith("_wall_s")])


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """Address of a 2-worker in-process Dask cluster, shared by this module's tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        # Free ports chosen by the OS: a busy 8787/8786 must not fail the suite.
        scheduler_port=0,
        dashboard_address=":0",
    ) as cluster:
        yield cluster.scheduler_address


def test_local_inline_pool_and_dask_give_the_same_table(
    write_spec: Callable[..., Path], tmp_path: Path, dask_scheduler: str
) -> None:
    """Inline, 2-process pool and 2-worker Dask runs of one spec agree except in *_wall_s."""
    spec = write_spec(
        coefficients=["coeffs.json", "coeffs_slow.yaml"],
        ratio=["auto", 1, 3],
        seeds=[0, 1],
        simulate={"steps": 10, "warmup_steps": 2, "jitter_cv": [0.0, 0.2]},
    )
    inline = run_sweep(spec, tmp_path / "inline", workers=1, cell_function=standin_cell)
    pool = run_sweep(spec, tmp_path / "pool", workers=2, cell_function=standin_cell)
    dask = run_sweep(spec, tmp_path / "dask", scheduler=dask_scheduler, cell_function=standin_cell)
    n = 1 * 2 * 2 * 3 * 2 * 2
    for summary in (inline, pool, dask):
        assert (summary.cells_total, summary.cells_run, summary.cells_skipped) == (n, n, 0)
        assert summary.cells_failed == 0
    assert (pool.engine, dask.engine, dask.workers) == ("local", "dask", None)
    reference = _comparable(tmp_path / "inline")
    assert reference.height == n
    assert_frame_equal(_comparable(tmp_path / "pool"), reference)
    assert_frame_equal(_comparable(tmp_path / "dask"), reference)
    # The timing columns are there, and do differ: the comparison above is not vacuous.
    walls = read_results(tmp_path / "pool")["theory_wall_s"]
    assert not walls.equals(read_results(tmp_path / "inline")["theory_wall_s"])


def test_second_run_skips_everything_and_extension_runs_only_new_cells(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """Rerunning resumes by cell key: nothing twice, only the cells a widened spec adds."""
    out = tmp_path / "out"
    first = run_sweep(write_spec(), out, workers=1, cell_function=standin_cell)
    assert (first.cells_run, first.cells_skipped) == (4, 0)
    again = run_sweep(write_spec(), out, workers=1, cell_function=standin_cell)
    assert (again.cells_run, again.cells_skipped, again.parts_written) == (0, 4, 0)
    wider = run_sweep(write_spec(batch=[64, 16, 32]), out, workers=1, cell_function=standin_cell)
    assert (wider.cells_run, wider.cells_skipped) == (2, 4)
    table = read_results(out)
    assert table.height == 6
    assert table["cell_key"].n_unique() == 6


def test_chunks_bound_the_part_size(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    """Rows reach disk in parts of at most ``chunk_cells`` cells."""
    spec = write_spec(batch=[1, 2, 3, 4, 5], ratio=[1, 2, 3], chunk_cells=4)
    summary = run_sweep(spec, tmp_path / "o", workers=1, cell_function=standin_cell)
    heights = [pl.read_parquet(p).height for p in sorted((tmp_path / "o").glob("*.parquet"))]
    assert summary.parts_written == len(heights)
    assert sum(heights) == 15
    assert max(heights) <= 4 + 3  # one engine task (3 cells here) may overshoot a chunk


def test_injected_interrupt_keeps_finished_cells_and_resumes_to_same_table(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """Ctrl-C mid-run flushes every finished cell; the rerun completes to the full table."""
    spec = write_spec(batch=[1, 2, 3, 4, 5, 6], ratio=[1, 2, 3, 4], chunk_cells=5)
    run_sweep(spec, tmp_path / "full", workers=1, cell_function=standin_cell)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "cut", workers=1, cell_function=InterruptAfter(11))
    # Inline, the only cells lost are those of the batch in flight when the interrupt came.
    kept = read_results(tmp_path / "cut").height
    assert 11 - 6 <= kept <= 11
    resumed = run_sweep(spec, tmp_path / "cut", workers=1, cell_function=standin_cell)
    assert (resumed.cells_skipped, resumed.cells_run) == (kept, 24 - kept)
    assert_frame_equal(_comparable(tmp_path / "cut"), _comparable(tmp_path / "full"))


def test_killed_process_resumes_to_same_table(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """A sweep process killed with SIGKILL after some chunks resumes to the uninterrupted table."""
    spec = write_spec(batch=list(range(1, 11)), ratio=[1, 2, 3, 4], chunk_cells=4)
    out = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from afdsizer.sweep import run_sweep
        from sweep._standin import slow_cell
        run_sweep({str(spec)!r}, {str(out)!r}, workers=1, cell_function=slow_cell)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while len(list(out.glob("*.parquet"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = read_results(out).height
    assert 8 <= kept < 40
    resumed = run_sweep(spec, out, workers=1, cell_function=slow_cell)
    assert (resumed.cells_skipped, resumed.cells_run) == (kept, 40 - kept)
    run_sweep(spec, tmp_path / "full", workers=1, cell_function=standin_cell)
    assert_frame_equal(_comparable(out), _comparable(tmp_path / "full"))


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_cell_records_its_error_and_the_sweep_goes_on(
    write_spec: Callable[..., Path], tmp_path: Path, workers: int
) -> None:
    """A cell that raises gets ``error`` = 'Type: message' on one line; the others succeed."""
    spec = write_spec(batch=[8, FAILING_BATCH, 32])
    summary = run_sweep(spec, tmp_path / "o", workers=workers, cell_function=standin_cell)
    assert (summary.cells_run, summary.cells_failed) == (6, 2)
    table = read_results(tmp_path / "o")
    failed = table.filter(pl.col("error").is_not_null())
    assert failed["batch"].to_list() == [FAILING_BATCH] * 2
    assert set(failed["error"]) == {f"ValueError: stand-in refuses B={FAILING_BATCH} second line"}
    assert failed["theory_throughput_per_instance"].null_count() == 2
    ok = table.filter(pl.col("error").is_null())
    assert ok["theory_throughput_per_instance"].null_count() == 0
    # Failed cells count as done: a rerun does not repeat them.
    again = run_sweep(spec, tmp_path / "o", workers=workers, cell_function=standin_cell)
    assert again.cells_run == 0


def test_cell_function_with_unknown_column_is_a_recorded_failure(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """Returning a column outside the schema is caught per cell, naming the column."""
    summary = run_sweep(
        write_spec(batch=[8]), tmp_path / "o", workers=1, cell_function=_unknown_column
    )
    assert summary.cells_failed == 2
    errors = set(read_results(tmp_path / "o")["error"])
    assert errors == {"KeyError: 'cell function returned unknown column(s) bogus'"}


def _unknown_column(task: object) -> dict[str, float]:
    return {"bogus": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"workers": 0}, "--workers must be >= 1, got 0"),
        ({"scheduler": "localhost:8786"}, "--scheduler must be an address like tcp://HOST:PORT"),
        ({"scheduler": "tcp://h:1", "workers": 2}, "--workers is for local runs"),
    ],
)
def test_bad_engine_options(
    write_spec: Callable[..., Path], tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    """Bad engine options fail before anything runs or is written."""
    with pytest.raises(InputError, match=fragment):
        run_sweep(write_spec(), tmp_path / "o", cell_function=standin_cell, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "o").exists()


def test_unreachable_scheduler_is_one_clear_error(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler nobody listens on gives an InputError naming the address."""
    pytest.importorskip("distributed")
    monkeypatch.setattr("afdsizer.sweep._engines._CONNECT_TIMEOUT_S", 1)
    with pytest.raises(InputError, match=r"--scheduler tcp://127\.0\.0\.1:9: cannot connect"):
        run_sweep(write_spec(), tmp_path / "o", scheduler="tcp://127.0.0.1:9")


def test_lost_worker_loses_only_its_batches_and_the_rerun_retries_them(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """A worker killed mid-cell: its batches are not recorded (not the cells' fault), the sweep
    finishes the rest on a fresh pool, and the next run completes the table."""
    spec = write_spec(batch=[8, CRASH_BATCH, 32], ratio=[2, 8])
    first = run_sweep(spec, tmp_path / "o", workers=2, cell_function=crashing_cell)
    assert first.cells_lost >= 2
    assert first.cells_run + first.cells_lost == 6
    assert first.cells_failed == 0
    assert first.lost_error is not None and "BrokenProcessPool" in first.lost_error
    assert CRASH_BATCH not in read_results(tmp_path / "o")["batch"].to_list()
    second = run_sweep(spec, tmp_path / "o", workers=2, cell_function=standin_cell)
    assert (second.cells_skipped, second.cells_run) == (first.cells_run, first.cells_lost)
    run_sweep(spec, tmp_path / "ref", workers=1, cell_function=standin_cell)
    assert_frame_equal(_comparable(tmp_path / "o"), _comparable(tmp_path / "ref"))


def test_pool_that_keeps_breaking_stops_with_engine_error(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """When every worker dies, the sweep stops after a few fresh pools with one clear error."""
    spec = write_spec(batch=[1, 2, 3, 4], ratio=[1, 2, 3, 4])
    with pytest.raises(EngineError, match="local worker processes died 2 times in a row"):
        run_sweep(spec, tmp_path / "o", workers=2, cell_function=always_crashing_cell)


def test_spec_object_with_base_dir_and_progress_bar(spec_dir: Path, tmp_path: Path) -> None:
    """A SweepSpec built in Python resolves its paths against ``base_dir``; the progress bar
    does not change the rows."""
    from afdsizer.sweep import SweepSpec

    spec = SweepSpec(traces=["trace.csv"], coefficients=["coeffs.json"], batch=[8], ratio=[1, 2])
    with pytest.raises(DataFileError, match=r"file 'trace\.csv' not found"):
        run_sweep(spec, tmp_path / "o", base_dir=tmp_path / "elsewhere")
    summary = run_sweep(
        spec,
        tmp_path / "o",
        base_dir=spec_dir,
        workers=1,
        progress=True,
        cell_function=standin_cell,
    )
    assert summary.cells_run == 2
    yaml_path = spec_dir / "same.yaml"
    yaml_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    run_sweep(yaml_path, tmp_path / "y", workers=1, cell_function=standin_cell)
    assert_frame_equal(_comparable(tmp_path / "o"), _comparable(tmp_path / "y"))


def _pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]


def test_local_pool_leaves_no_manager_thread_when_finished_or_interrupted(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """The pool's manager thread has ended when run_sweep returns or raises: CPython's exit
    hook otherwise races it and prints "Bad file descriptor" after the last line (a flaky CI)."""
    spec = write_spec(batch=[1, 2, 3, 4, 5, 6], ratio=[1, 2, 3, 4])
    run_sweep(spec, tmp_path / "full", workers=2, cell_function=standin_cell)
    assert _pool_threads() == []
    timer = threading.Timer(1.0, _thread.interrupt_main)  # what Ctrl-C does to the main thread
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, tmp_path / "cut", workers=2, cell_function=very_slow_cell)
    finally:
        timer.cancel()
    assert _pool_threads() == []
