"""`afdsizer report -o report.html`: one self-contained HTML report (theory, sim, workload)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from afdsizer._commands._common import (
    AttnGpusOptional,
    AttnParallelOpt,
    BatchPerGpuOpt,
    CoeffsOpt,
    DropInvalidOpt,
    FfnGpusOptional,
    FfnParallelOpt,
    HardwareOpt,
    IslOpt,
    JsonOpt,
    KvDtypeOptional,
    LayersOpt,
    MicrobatchesOpt,
    ModelOpt,
    MoeRoutingOpt,
    ObjectiveOpt,
    OslOpt,
    PipelineOpt,
    ProfileOpt,
    SlotLoadStdOpt,
    ThetaOpt,
    TpotMsOpt,
    TpotP99MsOpt,
    TraceOpt,
    WeightDtypeOpt,
    emit_json,
    seed_option,
)
from afdsizer._commands.size import (
    BarrierOpt,
    BatchOpt,
    KvQuantileOpt,
    PriceAttnOpt,
    PriceFfnOpt,
    sizing_inputs_from_cli,
)


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
    isl: IslOpt = None,
    osl: OslOpt = None,
    theta: ThetaOpt = None,
    slot_load_std: SlotLoadStdOpt = None,
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    profile: ProfileOpt = None,
    coeffs: CoeffsOpt = None,
    kv_dtype: KvDtypeOptional = None,
    weight_dtype: WeightDtypeOpt = None,
    attn_gpus: AttnGpusOptional = None,
    ffn_gpus: FfnGpusOptional = None,
    attn_parallel: AttnParallelOpt = None,
    ffn_parallel: FfnParallelOpt = None,
    microbatches: MicrobatchesOpt = None,
    pipeline: PipelineOpt = None,
    layers: LayersOpt = None,
    batch: BatchOpt = None,
    batch_per_gpu: BatchPerGpuOpt = None,
    kv_quantile: KvQuantileOpt = None,
    tpot_ms: TpotMsOpt = None,
    tpot_p99_ms: TpotP99MsOpt = None,
    price_attn: PriceAttnOpt = None,
    price_ffn: PriceFfnOpt = None,
    objective: ObjectiveOpt = None,
    moe_routing: MoeRoutingOpt = None,
    barrier: BarrierOpt = None,
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
    """Write an HTML report: recommendation, Λ(r) with simulated points, step time, idle.

    It takes the options of ``afdsizer size`` and sizes through the same path.
    """
    options = dict(locals())
    from afdsizer._io import check_output_path
    from afdsizer._sizing import recommend_at_operating_point
    from afdsizer.report import write_deployment_report

    for key in ("output", "sim_steps", "seed", "title", "json_out"):
        options.pop(key)
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
    inputs = sizing_inputs_from_cli(**options)
    recommendation, coefficients = recommend_at_operating_point(inputs)
    for warning in recommendation.warnings:  # as `size` prints them
        typer.echo(f"afdsizer: warning: {warning}", err=True)
    path, data = write_deployment_report(
        output,
        coefficients,
        inputs.workload,
        inputs.deployment,
        recommendation=recommendation,
        sim_steps=sim_steps,
        seed=seed,
        title=title,
        profile=inputs.profile,
    )
    rec = data.recommendation
    if json_out:
        emit_json({"path": path, "recommendation": rec})
        return
    typer.echo(
        f"report → {path}: r = {rec.r_int} Attention per FFN at B = {rec.batch} "
        f"({rec.regime}-bound), {rec.throughput_per_gpu:,.1f} tokens/s per GPU "
        f"({rec.gpus_per_bundle} GPUs per bundle)"
    )
