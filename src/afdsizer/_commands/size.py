"""`afdsizer size`: the main job — how many Attention instances per FFN instance, at what batch.

With no arguments it runs on the embedded defaults: the bundled Azure conversation trace for θ and
σ, the roofline of the default model and GPU presets for the cost coefficients, and the default
:class:`afdsizer.deployment.Deployment`. It parses the options, calls the one sizing path
(:func:`afdsizer._sizing.resolve_inputs`, :func:`afdsizer.theory.recommend`) and prints the
recommendation with rich, or the :class:`afdsizer.theory.Recommendation` fields as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from afdsizer._commands._common import (
    MAX_BATCH,
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
    jsonable,
    tpot_target_s,
    unsigned_zero,
)

if TYPE_CHECKING:
    from afdsizer._sizing import SizingInputs
    from afdsizer.theory import Recommendation

__all__ = ["print_recommendation", "register", "sizing_inputs_from_cli"]

BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch",
        min=1,
        max=MAX_BATCH,
        help="B, slots per Attention instance (default: chosen jointly with r).",
    ),
]
KvQuantileOpt = Annotated[
    float | None,
    typer.Option(
        "--kv-quantile",
        help="Quantile of a worker's KV load that must fit in memory (0.5–1; default 0.999).",
    ),
]
PriceAttnOpt = Annotated[
    float | None,
    typer.Option(
        "--price-attn", help="Price of one Attention instance per hour (with --price-ffn)."
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", help="Also write the self-contained HTML report to this file."),
]
PriceFfnOpt = Annotated[
    float | None,
    typer.Option("--price-ffn", help="Price of one FFN instance per hour (with --price-attn)."),
]

BarrierOpt = Annotated[
    str | None,
    typer.Option(
        "--barrier",
        help="Law of a worker's load at the barrier: 'empirical' (exact order statistics of "
        "worker loads sampled from the trace; the default with a trace) or 'gaussian' "
        "(Normal(B·θ, B·σ²); the only one with --theta/--slot-load-std).",
    ),
]

_MS_PER_S = 1e3


def register(app: typer.Typer) -> None:
    """Register ``afdsizer size`` on ``app``."""
    app.command("size")(size)


def sizing_inputs_from_cli(
    *,
    tpot_ms: float | None,
    tpot_p99_ms: float | None,
    price_attn: float | None,
    price_ffn: float | None,
    **options: Any,
) -> SizingInputs:
    """The sizing options of ``size`` and ``report`` (CLI names, units) → :class:`SizingInputs`."""
    from afdsizer._sizing import resolve_inputs

    return resolve_inputs(
        tpot_target_s=tpot_target_s(tpot_ms),
        tpot_p99_target_s=tpot_target_s(tpot_p99_ms, option="--tpot-p99-ms"),
        price_attn_per_h=price_attn,
        price_ffn_per_h=price_ffn,
        **options,
    )


def size(
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
    report: ReportOpt = None,
    barrier: BarrierOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recommend r (Attention instances per FFN instance) and B (slots per Attention instance)."""
    options = dict(locals())
    import dataclasses

    from afdsizer._io import check_output_path
    from afdsizer._sizing import recommend_at_operating_point

    json_out, report = options.pop("json_out"), options.pop("report")
    if report is not None:  # refused before any work, like every output path
        sources = {"--trace": trace, "--coeffs": coeffs, "--profile": profile}
        check_output_path(
            report, option="--report", inputs={**sources, "--model": model, "--hardware": hardware}
        )
    inputs = sizing_inputs_from_cli(**options)
    rec, coefficients = recommend_at_operating_point(inputs)
    inputs = dataclasses.replace(inputs, coefficients=coefficients)
    for warning in rec.warnings:
        typer.echo(f"afdsizer: warning: {warning}", err=True)
    if json_out:
        payload: dict[str, Any] = jsonable(rec)
        payload["coefficients"] = coefficients.to_dict()
        emit_json(payload)
    else:
        print_recommendation(rec, inputs)
    if report is not None:
        from afdsizer.report import write_deployment_report

        written, _ = write_deployment_report(
            report,
            inputs.coefficients,
            inputs.workload,
            inputs.deployment,
            recommendation=rec,
            profile=inputs.profile,
        )
        if not json_out:
            typer.echo(f"report written to {written}", err=True)


_REGIME_TEXT = {
    "attention": "Attention-bound: the FFN waits for Attention until r reaches r_A",
    "communication": "communication-bound: the FFN waits for transfers until r reaches r_C",
    "ffn": "FFN-bound: past r_peak the FFN's batch time outgrows the gain of one more worker",
}
_LIMIT_TEXT = {
    "given": "given by --batch",
    "kv_capacity": "largest that fits the KV capacity",
    "tpot": "largest that meets the TPOT target",
    "objective": "best within the limits",
    "default": "default: nothing bounds B (no KV capacity, TPOT target or --batch)",
}


def _pct(frac: float) -> str:
    return f"{100.0 * frac:.1f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * _MS_PER_S:.3f}"


def _deployment_text(rec: Recommendation) -> str:
    attn = f"{rec.attn_gpus} GPU{'s' if rec.attn_gpus > 1 else ''} ({rec.attn_parallel.upper()})"
    ffn_par = "EP for MoE, else TP" if rec.ffn_parallel == "auto" else rec.ffn_parallel.upper()
    ffn = f"{rec.ffn_gpus} GPU{'s' if rec.ffn_gpus > 1 else ''} ({ffn_par})"
    pipe = (
        "free overlap (the paper's model)"
        if rec.pipeline == "overlapped" and rec.microbatches == 1
        else f"{rec.microbatches} microbatch{'es' if rec.microbatches > 1 else ''}, "
        + ("ideal overlap" if rec.pipeline == "overlapped" else f"{rec.layers}-layer pipeline")
    )
    return f"Attention {attn}, FFN {ffn}; {pipe}; KV {rec.kv_dtype}"


def _workload_text(inputs: SizingInputs) -> str:
    trace = inputs.workload.trace
    if trace is None or trace.trace_format == "arrays":
        return inputs.workload.source
    return f"{Path(trace.source).name} ({trace.n_requests:,} requests)"


def _summary_rows(rec: Recommendation, inputs: SizingInputs) -> list[tuple[str, str]]:
    cap = "unlimited" if rec.kv_capacity_tokens is None else f"{rec.kv_capacity_tokens:,.0f}"
    worker = "GPU" if rec.workers_per_instance > 1 else "Attention instance"
    rows = [
        ("workload", _workload_text(inputs)),
        ("θ, σ (tokens)", f"{rec.theta:,.1f}, {rec.slot_load_std:,.1f}"),
        ("cost model", inputs.coefficients.source or "coefficients"),
        ("deployment", _deployment_text(rec)),
        ("r, Attention instances per FFN instance", f"[bold]{rec.r_int}[/bold]"),
        ("GPUs per bundle", f"{rec.gpus_per_bundle} (r·g_A + g_F)"),
        (
            "B, slots per Attention instance",
            f"[bold]{rec.batch}[/bold] ({_LIMIT_TEXT[rec.batch_limit]})",
        ),
        (
            f"KV load per {worker} at q={rec.kv_quantile:g} / capacity (tokens)",
            f"{rec.kv_load_quantile_tokens:,.0f} / {cap}",
        ),
        ("regime", _REGIME_TEXT[rec.regime]),
        (
            "r_A, r_C, r_peak (mean field)",
            f"{rec.r_attention:.2f}, {rec.r_communication:.2f}, {rec.r_peak:.2f}",
        ),
        (
            f"r* {rec.barrier_model} / Gaussian / mean field",
            f"{rec.r_star:.2f} / {rec.r_star_gaussian:.2f} / {rec.r_star_mean_field:.2f} "
            f"(barrier fixed point r_A = {rec.r_attention_barrier:.2f})",
        ),
        ("rounding to an integer costs", _pct(rec.rounding_loss)),
        ("[bold]tokens/s per GPU[/bold]", f"[bold]{rec.throughput_per_gpu:,.0f}[/bold]"),
        (
            "tokens/s per instance; bundle",
            f"{rec.throughput_per_instance:,.0f} (mean field {rec.throughput_mean_field:,.0f}); "
            f"{rec.bundle_tokens_per_s:,.0f}",
        ),
    ]
    if rec.tokens_per_dollar is not None:
        rows.append(("tokens per unit of price", f"{rec.tokens_per_dollar:,.0f}"))
    targets = [f"target {_ms(t)}" for t in (rec.tpot_target_s,) if t is not None]
    rows += [
        ("step E[τ] = TPOT (ms)", _ms(rec.step_time_s) + (f" ({targets[0]})" if targets else "")),
        (
            "step p99 (ms)",
            _ms(rec.tpot_p99_s)
            + ("" if rec.tpot_p99_target_s is None else f" (target {_ms(rec.tpot_p99_target_s)})"),
        ),
        (
            "Attention mean / slowest of r (ms)",
            f"{_ms(rec.t_attn_s)} / {_ms(rec.t_attn_slowest_s)}",
        ),
        ("communication, FFN busy (ms)", f"{_ms(rec.t_comm_s)}, {_ms(rec.t_ffn_s)}"),
        ("idle: Attention, FFN", f"{_pct(rec.attention_idle)}, {_pct(rec.ffn_idle)}"),
        (
            "barrier: workers wait / throughput lost",
            f"{_pct(rec.barrier_overhead)} / {_pct(rec.barrier_throughput_loss)}",
        ),
    ]
    return rows


def print_recommendation(rec: Recommendation, inputs: SizingInputs) -> None:
    """Print a recommendation readably (rich): summary, step times, and the ratio table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(
        title=f"afdsizer size — deploy {rec.r_int}A–1F bundles, B = {rec.batch}",
        show_header=False,
    )
    summary.add_column("quantity")
    summary.add_column("value")
    for name, value in _summary_rows(rec, inputs):
        summary.add_row(name, unsigned_zero(value))
    console.print(summary)

    table = Table(title=f"tokens/s per GPU and Λ(r) near the optimum, B = {rec.batch}")
    columns = ["r", "GPUs", "tok/s/GPU", "tok/s/inst", "mean field", "E[τ] ms", "p99 ms"]
    columns += ["A idle", "F idle"]
    if rec.tokens_per_dollar is not None:
        columns.append("tokens/price")
    if rec.tpot_target_s is not None or rec.tpot_p99_target_s is not None:
        columns.append("meets TPOT")
    for col in columns:
        table.add_column(col, justify="right")
    for row in rec.ratio_table:
        cells = [
            f"{row.ratio}",
            f"{row.gpus}",
            f"{row.throughput_per_gpu:,.0f}",
            f"{row.throughput_per_instance:,.0f}",
            f"{row.throughput_mean_field:,.0f}",
            _ms(row.step_time_s),
            _ms(row.step_time_p99_s),
            _pct(row.attention_idle),
            _pct(row.ffn_idle),
        ]
        if row.tokens_per_dollar is not None:
            cells.append(f"{row.tokens_per_dollar:,.0f}")
        if row.meets_tpot is not None:
            cells.append("yes" if row.meets_tpot else "no")
        cells = [unsigned_zero(cell) for cell in cells]
        table.add_row(*cells, style="bold" if row.ratio == rec.r_int else None)
    console.print(table)
