"""Stand-in cell functions for the sweep tests (module-level, so processes can pickle them).

They compute a closed-form mean-field Λ(r) (docs/design.md §4) and, for simulated cells, a draw
from the cell's own seed, so a row is a deterministic function of the cell — what the engines must
preserve.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from afdsizer.sweep import CellTask

FAILING_BATCH = 13
"""A cell with this B raises inside the stand-in: the sweep must record it and go on."""


def standin_cell(task: CellTask) -> dict[str, Any]:
    """Mean-field τ and Λ at the cell's r (4 for ``auto``), plus a seeded noisy 'simulation'."""
    cell = task.cell
    if cell.batch == FAILING_BATCH:
        raise ValueError(f"stand-in refuses B={cell.batch}\nsecond line")
    c = task.coefficients
    r = cell.ratio if cell.ratio is not None else 4
    B = cell.batch
    t_a = c.attention_time_s(B * task.theta_tokens)
    tau = max(t_a, c.comm_time_s(B, r), c.ffn_time_s(r * B))
    out: dict[str, Any] = {
        "ratio": r,
        "theory_step_time_s": tau,
        "theory_throughput_per_instance": r * B / ((r + 1) * tau),
        "theory_wall_s": time.perf_counter(),
    }
    if cell.simulate:
        rng = np.random.default_rng(task.sim_seed)
        out["sim_throughput_per_instance"] = out["theory_throughput_per_instance"] * (
            1.0 + 0.01 * rng.standard_normal()
        )
        out["sim_wall_s"] = time.perf_counter()
    return out


def slow_cell(task: CellTask) -> dict[str, Any]:
    """:func:`standin_cell` after a short sleep, so a run can be killed half-way."""
    time.sleep(0.04)
    return standin_cell(task)


def very_slow_cell(task: CellTask) -> dict[str, Any]:
    """:func:`standin_cell` after 0.5 s, so cells are still running when a run is stopped."""
    time.sleep(0.5)
    return standin_cell(task)


class InterruptAfter:
    """Calls :func:`standin_cell`, then raises KeyboardInterrupt at call number ``n + 1``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, task: CellTask) -> dict[str, Any]:
        self.calls += 1
        if self.calls > self.n:
            raise KeyboardInterrupt
        return standin_cell(task)


CRASH_BATCH = 29
"""A cell with this B kills its worker process (as an out-of-memory kill would)."""


def crashing_cell(task: CellTask) -> dict[str, Any]:
    """:func:`standin_cell`, except that B = ``CRASH_BATCH`` ends the process at once.

    Only for process pools: run inline it would end the test run.
    """
    if task.cell.batch == CRASH_BATCH:
        os._exit(3)
    return standin_cell(task)


def always_crashing_cell(task: CellTask) -> dict[str, Any]:
    """Ends its worker process for every cell (a broken setup, not a bad cell)."""
    os._exit(3)
