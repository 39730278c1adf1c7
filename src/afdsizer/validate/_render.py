"""Rows, markdown and JSON-ready records of validation results (the CLI and docs/validation.md)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from afdsizer.validate._run import GOAL_REL_ERROR, GOAL_THROUGHPUT_LOSS, CaseResult

__all__ = [
    "BASELINE_COLUMNS",
    "GOAL_LEGEND",
    "STEP_TIME_COLUMNS",
    "TABLE_COLUMNS",
    "baseline_rows",
    "result_rows",
    "results_markdown",
    "step_time_rows",
    "to_records",
]

TABLE_COLUMNS = (
    "trace",
    "case",
    "regime",
    "B",
    "barrier",
    "r* [int]",
    "r* [int] Gaussian",
    "r* [int] mean field",
    "r sim [tied]",
    "rel. error",
    "rel. error Gaussian",
    "loss % [CI]",
    "loss % Gaussian [CI]",
    "loss % mean field",
    "knee sim / theory",
    "flat",
    "goal",
    "goal Gaussian",
)
"""Column headers of the summary table.

``barrier``, ``r* [int]``, ``rel. error``, ``loss % [CI]`` and ``goal`` judge the rule
``afdsizer size --trace`` deploys (the empirical barrier, unless ``--barrier gaussian``); the
``Gaussian`` and ``mean field`` columns judge those rules on the same simulated curve.
"""

GOAL_LEGEND = (
    "goal: loss ≤ 2% and (rel. error ≤ 10% or the deployed integer r is statistically tied with "
    "r sim, i.e. inside [tied]); `met (tied)` = met only through the tie (rel. error > 10% in a "
    "flat case, where it is decided by noise, docs/design.md §8); `MISSED` otherwise."
)
"""Legend of the goal columns (printed under the summary table)."""


def _goal(met: bool, rel_error: float, loss: float) -> str:
    if not met:
        return "MISSED"
    return "met" if rel_error <= GOAL_REL_ERROR and loss <= GOAL_THROUGHPUT_LOSS else "met (tied)"


BASELINE_COLUMNS = (
    "trace",
    "case",
    "rule",
    "r",
    "loss % [CI]",
    "Attention idle %",
    "FFN idle %",
    "idle paid %",
)
"""Column headers of the idle-time table (theory's r first, then the baselines)."""


def _pct(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.{digits}f}"


def _ci(lo: float, hi: float) -> str:
    return f"[{_pct(lo)}, {_pct(hi)}]"


def result_rows(results: Sequence[CaseResult]) -> list[tuple[str, ...]]:
    """One row of strings per result, in :data:`TABLE_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in results:
        tied = f"{min(r.r_sim_tied)}–{max(r.r_sim_tied)}"
        knee = "none" if r.knee is None else f"{r.knee:.1f}" + ("*" if r.knee_at_edge else "")
        rows.append(
            (
                r.trace,
                r.case,
                r.regime,
                str(r.batch),
                r.barrier_model,
                f"{r.r_theory:.2f} [{r.r_theory_int}]",
                f"{r.r_theory_gaussian:.2f} [{r.r_theory_int_gaussian}]",
                f"{r.r_theory_mean_field:.2f} [{r.r_theory_int_mean_field}]",
                f"{r.r_sim} [{tied}]",
                f"{_pct(r.rel_error, 1)}%",
                f"{_pct(r.rel_error_gaussian, 1)}%",
                f"{_pct(r.throughput_loss)} {_ci(*r.throughput_loss_ci)}",
                f"{_pct(r.throughput_loss_gaussian)} {_ci(*r.throughput_loss_gaussian_ci)}",
                _pct(r.throughput_loss_mean_field),
                f"{knee} / {r.knee_theory_barrier:.1f}",
                "yes" if r.flat else "no",
                _goal(r.meets_goal, r.rel_error, r.throughput_loss),
                _goal(r.meets_goal_gaussian, r.rel_error_gaussian, r.throughput_loss_gaussian),
            )
        )
    return rows


def baseline_rows(results: Sequence[CaseResult]) -> list[tuple[str, ...]]:
    """Idle time at the theory's integer r and at each baseline, :data:`BASELINE_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in results:
        loss_ci = _ci(*r.throughput_loss_ci)
        rows.append(
            (
                r.trace,
                r.case,
                f"theory ({r.barrier_model})",
                str(r.r_theory_int),
                f"{_pct(r.throughput_loss)} {loss_ci}",
                _pct(r.attention_idle_theory, 1),
                _pct(r.ffn_idle_theory, 1),
                _pct(r.idle_paid_frac_theory, 1),
            )
        )
        for b in r.baselines:
            rows.append(
                (
                    r.trace,
                    r.case,
                    b.name,
                    str(b.ratio),
                    f"{_pct(b.throughput_loss)} {_ci(*b.throughput_loss_ci)}",
                    _pct(b.attention_idle, 1),
                    _pct(b.ffn_idle, 1),
                    _pct(b.idle_paid_frac, 1),
                )
            )
    return rows


STEP_TIME_COLUMNS = (
    "trace",
    "case",
    "r",
    "E[τ] sim ms [CI]",
    "Gaussian ms (err %)",
    "empirical ms (err %)",
)
"""Column headers of the E[τ] check (why a ratio misses)."""


def step_time_rows(results: Sequence[CaseResult]) -> list[tuple[str, ...]]:
    """E[τ] simulated vs Gaussian vs empirical barrier, :data:`STEP_TIME_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in results:
        for c in r.step_time_checks:
            lo, hi = c.sim_ci_s
            rows.append(
                (
                    r.trace,
                    r.case,
                    str(c.ratio),
                    f"{1e3 * c.sim_s:.3f} [{1e3 * lo:.3f}, {1e3 * hi:.3f}]",
                    f"{1e3 * c.gaussian_s:.3f} ({100 * (c.gaussian_s / c.sim_s - 1):+.2f})",
                    f"{1e3 * c.empirical_s:.3f} ({100 * (c.empirical_s / c.sim_s - 1):+.2f})",
                )
            )
    return rows


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def results_markdown(results: Sequence[CaseResult]) -> str:
    """The three tables (summary + goal legend, idle time vs baselines, E[τ]) as GitHub markdown."""
    return (
        _md_table(TABLE_COLUMNS, result_rows(results))
        + "\n\n"
        + GOAL_LEGEND
        + "\n\n"
        + _md_table(BASELINE_COLUMNS, baseline_rows(results))
        + "\n\n"
        + _md_table(STEP_TIME_COLUMNS, step_time_rows(results))
        + "\n"
    )


def to_records(results: Sequence[CaseResult]) -> list[dict[str, Any]]:
    """Plain dicts (``validate --json``): every CaseResult field, baselines as a list of dicts."""
    out = []
    for r in results:
        record = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
        record["baselines"] = [dataclasses.asdict(b) for b in r.baselines]
        record["step_time_checks"] = [dataclasses.asdict(c) for c in r.step_time_checks]
        out.append(record)
    return out
