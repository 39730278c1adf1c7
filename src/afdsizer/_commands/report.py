"""`afdsizer report -o report.html`: one self-contained HTML report (theory, sim, workload)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afdsizer._commands._common import (
    AttnGpusOpt,
    CoeffsOpt,
    DropInvalidOpt,
    FfnGpusOpt,
    HardwareOpt,
    JsonOpt,
    KvDtypeOpt,
    ModelOpt,
    ProfileOpt,
    SlotLoadStdOpt,
    ThetaOpt,
    TraceOpt,
    coefficients_from_options,
    emit_json,
)
from afdsizer.errors import InputError

DEFAULT_SIM_STEPS = 20_000
"""Simulated steps per r; kept equal to afdsizer.report.DEFAULT_SIM_STEPS (a test checks)."""


def register(app: typer.Typer) -> None:
    """Register the command(s) of this module on ``app``."""
    app.command("report")(report)


def report(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="HTML file to write (self-contained).")
    ],
    trace: TraceOpt = None,
    drop_invalid: DropInvalidOpt = False,
    theta: ThetaOpt = None,
    slot_load_std: SlotLoadStdOpt = None,
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    profile: ProfileOpt = None,
    coeffs: CoeffsOpt = None,
    kv_dtype: KvDtypeOpt = "bf16",
    attn_gpus: AttnGpusOpt = 1,
    ffn_gpus: FfnGpusOpt = 1,
    batch: Annotated[
        int | None,
        typer.Option("--batch", help="B, slots per Attention instance (default: sized jointly)."),
    ] = None,
    sim_steps: Annotated[
        int,
        typer.Option(
            "--sim-steps", help="Simulated steps per r near the optimum (0: no simulation)."
        ),
    ] = DEFAULT_SIM_STEPS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every simulation.")] = 0,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write an HTML report: recommendation, Λ(r) with simulated points, step time, idle."""
    from afdsizer.report import make_report
    from afdsizer.workload import bundled_trace_path, load_trace

    if slot_load_std is not None and theta is None:
        raise InputError("--slot-load-std needs --theta (σ and θ in tokens go together)")
    if theta is not None and trace is not None:
        raise InputError("--theta excludes --trace; give the workload one way")
    coefficients = coefficients_from_options(
        model=model,
        hardware=hardware,
        profile=profile,
        coeffs=coeffs,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
    )
    loaded = None
    if theta is None:
        loaded = load_trace(trace or bundled_trace_path(), drop_invalid=drop_invalid)
    path, data = make_report(
        output,
        coefficients,
        trace=loaded,
        theta_tokens=theta,
        slot_load_std_tokens=slot_load_std,
        batch=batch,
        sim_steps=sim_steps,
        seed=seed,
        title=title,
    )
    rec = data.recommendation
    if json_out:
        emit_json({"path": path, "recommendation": rec})
        return
    typer.echo(
        f"report → {path}: r = {rec.r_int} Attention per FFN at B = {rec.batch} "
        f"({rec.regime}-bound), {rec.throughput_per_instance:,.1f} tokens/s per instance"
    )
