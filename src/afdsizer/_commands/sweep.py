"""`afdsizer sweep SPEC.yaml -o results.parquet`: grids of cells, locally or on a Dask cluster."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from afdsizer._commands._common import JsonOpt, MaxHoursOpt, emit_json


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill PID``, a batch scheduler's stop) like Ctrl-C: stop the workers,
    keep the finished cells. Only the main thread may set handlers; elsewhere, do nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Register the command(s) of this module on ``app``."""
    app.command("sweep")(sweep)


def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (YAML); see docs/sweep.md.")],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Output: a directory of Parquet parts (polars.read_parquet reads it). "
            "Running again resumes: recorded cells are skipped.",
        ),
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            # The backslash keeps rich markup from eating "[dask]".
            help="Dask scheduler address tcp://HOST:PORT (needs afdsizer\\[dask]); "
            "default: local processes.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Local worker processes (default: CPU count; 1: inline)."),
    ] = None,
    max_cells: Annotated[
        int | None,
        typer.Option("--max-cells", help="Refuse grids of more cells (default 1,000,000)."),
    ] = None,
    max_hours: MaxHoursOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a grid of theory (and simulation) cells and append the rows to Parquet."""
    from afdsizer.sweep import run_sweep

    with _sigterm_as_interrupt():
        summary = run_sweep(
            spec,
            output,
            scheduler=scheduler,
            workers=workers,
            progress=sys.stderr.isatty(),
            max_cells=max_cells,
            max_hours=max_hours,
        )
    if json_out:
        emit_json(summary)
        return
    rate = f"{summary.cells_per_s:.1f} cells/s" if summary.cells_run else "nothing to run"
    typer.echo(
        f"sweep → {summary.output}: {summary.cells_run} run ({summary.cells_failed} failed), "
        f"{summary.cells_skipped} skipped of {summary.cells_total}; {rate}"
    )
    if summary.cells_lost:
        typer.echo(
            f"{summary.cells_lost} cells lost with their worker ({summary.lost_error}); "
            "run the same command again to retry them",
            err=True,
        )
