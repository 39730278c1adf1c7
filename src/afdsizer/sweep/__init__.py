"""Sweeps: grids of sizing cells run on local processes or a Dask cluster (docs/design.md §7).

A YAML spec names the axes (traces × cost cases × B × r × seeds × simulator options); every cell
gets the theory, and the simulation where the spec asks. Rows are appended to a directory of
Parquet parts in chunks, and running the same spec again resumes where it stopped.

Examples
--------
>>> from afdsizer.sweep import SweepSpec, enumerate_cells
>>> spec = SweepSpec(traces=["bundled:azure_conv_2023"], models=["llama-3.1-70b"],
...                  hardware=["h100-sxm"], batch=[64, 128], ratio=["auto", 8])
>>> len(enumerate_cells(spec))
4
"""

from afdsizer.sweep._cells import SweepCell, cell_sim_seed, enumerate_cells
from afdsizer.sweep._checks import DEFAULT_MAX_CELLS, check_sweep, count_cells
from afdsizer.sweep._engines import EngineError
from afdsizer.sweep._evaluate import CellFunction, CellTask, evaluate_cell, run_batch
from afdsizer.sweep._run import SweepSummary, prepare_tasks, run_sweep
from afdsizer.sweep._spec import BUNDLED_PREFIX, SimulateSpec, SweepSpec, load_spec
from afdsizer.sweep._store import RESULT_COLUMNS, SCHEMA, ResultStore, read_results

__all__ = [
    "BUNDLED_PREFIX",
    "DEFAULT_MAX_CELLS",
    "RESULT_COLUMNS",
    "SCHEMA",
    "CellFunction",
    "CellTask",
    "EngineError",
    "ResultStore",
    "SimulateSpec",
    "SweepCell",
    "SweepSpec",
    "SweepSummary",
    "cell_sim_seed",
    "check_sweep",
    "count_cells",
    "enumerate_cells",
    "evaluate_cell",
    "load_spec",
    "prepare_tasks",
    "read_results",
    "run_batch",
    "run_sweep",
]
