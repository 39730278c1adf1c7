"""`afdsizer report -o report.html`: one self-contained HTML report (theory, sim, workload)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afdsizer._commands._common import (
    DEFAULT_ATTN_GPUS,
    DEFAULT_FFN_GPUS,
    MAX_BATCH,
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
    TpotMsOpt,
    TraceOpt,
    check_workload_options,
    coefficients_from_options,
    emit_json,
    seed_option,
    tpot_target_s,
)
from afdsizer._io import check_output_path


def _check_sim_steps(sim_steps: int | None, batch: int | None) -> None:
    """Refuse absurd --sim-steps before sizing (r is not known yet: the step arrays dominate)."""
    from afdsizer._limits import check_simulation_size, simulation_size

    if sim_steps is None or sim_steps <= 0:
        return  # automatic, or no simulation; the report checks the sign itself
    size = simulation_size(1, batch or 1, sim_steps)
    what = f"--sim-steps {sim_steps:,} per r"
    check_simulation_size(
        size, what=what, max_memory_gb=None, max_hours=None, hint="lower --sim-steps"
    )


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
    attn_gpus: AttnGpusOpt = DEFAULT_ATTN_GPUS,
    ffn_gpus: FfnGpusOpt = DEFAULT_FFN_GPUS,
    batch: Annotated[
        int | None,
        typer.Option(
            "--batch",
            min=1,
            max=MAX_BATCH,
            help="B, slots per Attention instance (default: sized jointly).",
        ),
    ] = None,
    kv_quantile: Annotated[
        float | None,
        typer.Option(
            "--kv-quantile", help="Quantile of a worker's KV load that must fit (as in size)."
        ),
    ] = None,
    tpot_ms: TpotMsOpt = None,
    sim_steps: Annotated[
        int | None,
        typer.Option(
            "--sim-steps",
            help="Simulated steps per r near the optimum (default: automatic, at most 20000, "
            "fewer for huge bundles; 0: no simulation).",
        ),
    ] = None,
    seed: Annotated[int, seed_option("Seed of every simulation.")] = 0,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write an HTML report: recommendation, Λ(r) with simulated points, step time, idle."""
    from afdsizer.report import make_report
    from afdsizer.workload import bundled_trace_path, load_trace

    check_workload_options(trace, theta, slot_load_std)
    tpot_s = tpot_target_s(tpot_ms)
    _check_sim_steps(sim_steps, batch)
    check_output_path(
        output,
        option="--output",
        inputs={
            "--trace": trace,
            "--coeffs": coeffs,
            "--profile": profile,
            "--model": model,
            "--hardware": hardware,
        },
    )
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
        kv_quantile=kv_quantile,
        tpot_target_s=tpot_s,
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
