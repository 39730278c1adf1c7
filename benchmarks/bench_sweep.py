"""Benchmark: sweep throughput (cells/s) inline, on a local process pool and on a Dask cluster.

Two grids over the bundled Azure traces and roofline presets:

- ``theory``: theory-only cells (``recommend`` + barrier-aware Λ, E[τ], idle fractions at r);
- ``sim``: the same theory plus one simulation per cell (``--sim-steps`` decode steps).

Each grid runs on four engines, each into a fresh output directory: inline (``--workers 1``: the
baseline of the same run), a local pool of ``--workers`` processes, and a Dask ``LocalCluster``
of 2 worker processes (1 thread each), reached through its ``tcp://`` address exactly as
``--scheduler`` would. Wall times include engine start-up (pool fork server, cluster workers
importing afdsizer); a warm-up sweep first fills numba's on-disk cache so no engine pays a
compile the others do not. Every engine's table is checked to equal the inline one (except
``*_wall_s``).

Run: ``python benchmarks/bench_sweep.py [--workers N] [--sim-steps S] [--repeats K]``; writes
``benchmarks/results/sweep.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from afdsizer._io import atomic_write_text
from afdsizer.sweep import read_results, run_sweep

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.json"

_BASE_GRID: dict[str, Any] = {
    "traces": ["bundled:azure_conv_2023", "bundled:azure_code_2023"],
    "models": ["llama-3.1-8b", "llama-3.1-70b"],
    "hardware": ["h100-sxm", "h200"],
    "batch": [8, 16, 24, 32],
    "chunk_cells": 256,
}


def _grids(sim_steps: int) -> dict[str, dict[str, Any]]:
    theory = {**_BASE_GRID, "ratio": ["auto", *range(1, 32)]}  # 2·4·4·32 = 1024 cells
    sim = {
        **_BASE_GRID,
        "ratio": ["auto", 1, 2, 4],
        "seeds": [0, 1],
        "simulate": {"steps": sim_steps, "warmup_steps": sim_steps // 10},
    }  # 2·4·4·4·2 = 256 cells
    return {"theory": theory, "sim": sim}


def _comparable(path: Path) -> pl.DataFrame:
    table = read_results(path)
    return table.select([c for c in table.columns if not c.endswith("_wall_s")])


def _timed(spec: Path, out: Path, **engine: Any) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = run_sweep(spec, out, **engine)
    wall = time.perf_counter() - t0
    return {
        "cells": summary.cells_run,
        "cells_failed": summary.cells_failed,
        "wall_s": wall,
        "cells_per_s": summary.cells_run / wall,
        "cell_sim_wall_s_sum": float(read_results(out)["sim_wall_s"].fill_null(0).sum()),
        "cell_theory_wall_s_sum": float(read_results(out)["theory_wall_s"].fill_null(0).sum()),
    }


def main() -> None:
    """Time every grid on every engine; write ``benchmarks/results/sweep.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--sim-steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from distributed import LocalCluster

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="afdsizer-bench-sweep-") as tmp_name:
        tmp = Path(tmp_name)
        specs = {}
        for name, grid in _grids(args.sim_steps).items():
            specs[name] = tmp / f"{name}.yaml"
            specs[name].write_text(yaml.safe_dump(grid))
        # Warm-up: compiles (or loads) the simulator kernel into numba's on-disk cache.
        run_sweep(specs["sim"], tmp / "warmup", workers=1)
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            engines: dict[str, dict[str, Any]] = {
                "inline": {"workers": 1},
                f"pool_{args.workers}": {"workers": args.workers},
                "dask_localcluster_2": {"scheduler": cluster.scheduler_address},
            }
            for grid in specs:
                results[grid] = {}
                reference = None
                for engine, options in engines.items():
                    runs = [
                        _timed(specs[grid], tmp / f"{grid}-{engine}", **options)
                        for _ in range(args.repeats)
                    ]
                    best = min(runs, key=lambda r: r["wall_s"])
                    table = _comparable(tmp / f"{grid}-{engine}")
                    if reference is None:
                        reference = table
                    best["same_table_as_inline"] = table.equals(reference)
                    results[grid][engine] = best
                    print(
                        f"{grid:7s} {engine:22s} {best['cells']:5d} cells "
                        f"{best['wall_s']:7.2f} s {best['cells_per_s']:8.1f} cells/s "
                        f"same={best['same_table_as_inline']}"
                    )
    payload = {
        "benchmark": "sweep: cells per second by engine",
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "sim_steps": args.sim_steps,
        "workers": args.workers,
        "grids": _grids(args.sim_steps),
        "results": results,
        "speedup_vs_inline": {
            grid: {
                engine: r["cells_per_s"] / by_engine["inline"]["cells_per_s"]
                for engine, r in by_engine.items()
            }
            for grid, by_engine in results.items()
        },
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
