"""`afdsizer validate`: the theory's ratio against the simulator, per trace and cost case (§8)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from afdsizer._commands._common import (
    DropInvalidOpt,
    JsonOpt,
    MaxHoursOpt,
    emit_json,
    unsigned_zero,
)
from afdsizer._io import check_output_path
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.validate import CaseResult, CostCase, ValidationSettings

__all__ = ["register"]

DEFAULT_TRACES = ("azure_conv_2023", "azure_code_2023")
"""Bundled traces validated when no --trace is given."""

TracesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--trace", help="Request trace (repeatable). Default: the bundled Azure conv and code."
    ),
]
StepsOpt = Annotated[
    int | None,
    typer.Option(
        "--steps", help="Simulated steps per run (10% warm-up). Default 40000; quick 1500."
    ),
]
SeedsOpt = Annotated[
    int | None,
    typer.Option("--seeds", help="Seeds per ratio (0 … K−1, shared by all r). Default 4; quick 2."),
]
QuickOpt = Annotated[
    bool, typer.Option("--quick", help="Few steps and seeds: a smoke run in seconds.")
]
CaseOpt = Annotated[
    list[str] | None,
    typer.Option("--case", help="Only these cost cases (repeatable; names as in the table)."),
]
StressOpt = Annotated[
    bool,
    typer.Option(
        "--stress", help="Add a synthetic long-context heavy-tailed workload (barrier stress)."
    ),
]
BarrierOpt = Annotated[
    str,
    typer.Option(
        "--barrier",
        help="Rule the headline columns judge: 'empirical' (what `afdsizer size --trace` deploys;"
        " default) or 'gaussian' (Normal(B·θ, B·σ²) barrier). Both are always shown.",
    ),
]
MarkdownOpt = Annotated[
    Path | None,
    typer.Option("--markdown", help="Also write the tables as markdown to this file."),
]


def register(app: typer.Typer) -> None:
    """Register ``afdsizer validate`` on ``app``."""
    app.command("validate")(validate)


def _trace_label(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name


def validate(
    trace: TracesOpt = None,
    steps: StepsOpt = None,
    seeds: SeedsOpt = None,
    quick: QuickOpt = False,
    case: CaseOpt = None,
    stress: StressOpt = False,
    markdown: MarkdownOpt = None,
    barrier: BarrierOpt = "empirical",
    drop_invalid: DropInvalidOpt = False,
    json_out: JsonOpt = False,
    max_hours: MaxHoursOpt = None,
) -> None:
    """Compare the theory's r* with the simulation-optimal r on each trace × cost case.

    The headline columns judge what `afdsizer size --trace` deploys (empirical barrier; see
    --barrier), next to the Gaussian-barrier and mean-field rules: r*, the simulated best r with
    the ratios statistically tied with it, rel_error, the throughput lost by deploying the integer
    r (with CI), the goal (loss <= 2% and rel_error <= 10% or tied), the knee of the simulated FFN
    idle curve, and idle time against baselines.
    """
    from afdsizer._io import atomic_write_text
    from afdsizer.validate import (
        BARRIER_MODELS,
        QUICK_SETTINGS,
        STRESS_TRACE_NAME,
        ValidationSettings,
        default_cases,
        results_markdown,
        synthetic_long_context,
        to_records,
        validate_case,
    )
    from afdsizer.workload import bundled_trace_path, load_trace

    if barrier not in BARRIER_MODELS:
        raise InputError(f"--barrier must be one of {', '.join(BARRIER_MODELS)}, got {barrier!r}")
    settings = QUICK_SETTINGS if quick else ValidationSettings()
    settings = dataclasses.replace(settings, barrier_model=barrier)
    if steps is not None:
        if steps < 20:
            raise InputError(f"--steps must be >= 20, got {steps}")
        _check_steps(steps)
        settings = dataclasses.replace(
            settings,
            steps=steps,
            warmup_steps=steps // 10,
            batches=min(settings.batches, steps // 2),
        )
    if seeds is not None:
        if seeds < 1:
            raise InputError(f"--seeds must be >= 1, got {seeds}")
        settings = dataclasses.replace(settings, seeds=tuple(range(seeds)))

    if markdown is not None:
        check_output_path(
            markdown, option="--markdown", inputs={f"--trace {t}": t for t in trace or ()}
        )
    cases = default_cases()
    if case:
        known = {c.name for c in cases}
        unknown = [c for c in case if c not in known]
        if unknown:
            raise InputError(
                f"--case must be one of {', '.join(sorted(known))}, got {', '.join(unknown)}"
            )
        cases = tuple(c for c in cases if c.name in case)

    paths = list(trace) if trace else [bundled_trace_path(name) for name in DEFAULT_TRACES]
    _check_time(settings, cases, n_workloads=len(paths) + int(stress), max_hours=max_hours)
    workloads = []
    for path in paths:
        loaded = load_trace(path, drop_invalid=drop_invalid)
        workloads.append((_trace_label(Path(path)), loaded.prompt_tokens, loaded.decode_tokens))
    if stress:
        workloads.append((STRESS_TRACE_NAME, *synthetic_long_context()))
    results = []
    for label, prompt, decode in workloads:
        for c in cases:
            print(f"validate: {label} × {c.name} …", file=sys.stderr, flush=True)
            results.append(validate_case(label, prompt, decode, c, settings=settings))

    if markdown is not None:
        atomic_write_text(markdown, unsigned_zero(results_markdown(results)))
    if json_out:
        emit_json(to_records(results))
    else:
        _print_tables(results)


_RATIO_GUESS = 16
"""r assumed per simulated point in the time estimate (the search's ratios are found as it runs)."""
_EXTRA_POINTS = 7
"""Simulated ratios per seed besides the search grid: the theory's r and six baselines."""


def _check_time(
    settings: ValidationSettings,
    cases: Sequence[CostCase],
    *,
    n_workloads: int,
    max_hours: float | None,
) -> None:
    """Refuse, before the first case, a validation estimated to run longer than --max-hours."""
    from afdsizer._limits import SimSize, check_simulation_size, simulation_size

    points = settings.coarse_points + 2 * settings.refine_points + _EXTRA_POINTS
    runs = points * len(settings.seeds) * n_workloads
    seconds = sum(
        runs * simulation_size(_RATIO_GUESS, c.batch, settings.steps).seconds for c in cases
    )
    what = (
        f"{len(cases)} case(s) × {n_workloads} workload(s) × {len(settings.seeds)} seed(s) "
        f"× --steps {settings.steps:,}"
    )
    check_simulation_size(
        SimSize(memory_bytes=0.0, seconds=seconds),
        what=what,
        max_memory_gb=None,
        max_hours=max_hours,
    )


def _check_steps(steps: int) -> None:
    """Refuse a --steps whose step arrays alone would not fit (before any case runs)."""
    from afdsizer._limits import check_simulation_size, simulation_size

    check_simulation_size(
        simulation_size(1, 1, steps),
        what=f"--steps {steps:,}",
        max_memory_gb=None,
        max_hours=None,
        hint="lower --steps",
    )


def _print_tables(results: Sequence[CaseResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    from afdsizer.validate import (
        BASELINE_COLUMNS,
        GOAL_LEGEND,
        STEP_TIME_COLUMNS,
        TABLE_COLUMNS,
        baseline_rows,
        result_rows,
        step_time_rows,
    )

    console = Console()
    summary = Table(title="Theory vs simulation (loss = 1 − Λ_sim(r_theory)/Λ_sim(r_sim))")
    for col in TABLE_COLUMNS:
        summary.add_column(col)
    for row in result_rows(results):
        summary.add_row(*(unsigned_zero(cell) for cell in row))
    console.print(summary)
    console.print(GOAL_LEGEND, markup=False)
    idle = Table(title="Idle time at the theory's r and at baselines")
    for col in BASELINE_COLUMNS:
        idle.add_column(col)
    for row in baseline_rows(results):
        idle.add_row(*(unsigned_zero(cell) for cell in row))
    console.print(idle)
    check = Table(title="E[τ]: simulated vs Gaussian barrier vs empirical barrier")
    for col in STEP_TIME_COLUMNS:
        check.add_column(col)
    for row in step_time_rows(results):
        check.add_row(*(unsigned_zero(cell) for cell in row))
    console.print(check)
