"""`afdsizer size`: the main job — how many Attention instances per FFN instance, at what batch.

With no arguments it runs on the embedded defaults: the bundled Azure conversation trace for θ and
σ, and the roofline of the default model and GPU presets for the cost coefficients. It prints the
recommendation (r, B, regime, throughput, per-step times, idle fractions, barrier cost and the
Λ(r) table near the optimum) with rich, or the :class:`afdsizer.theory.Recommendation` fields as
JSON with ``--json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from afdsizer._commands._common import (
    DEFAULT_ATTN_GPUS,
    DEFAULT_FFN_GPUS,
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
    jsonable,
    tpot_target_s,
)
from afdsizer.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from afdsizer.cost import CostCoefficients
    from afdsizer.theory import Recommendation
    from afdsizer.workload import Trace

__all__ = ["SizeInputs", "register", "resolve_size_inputs"]

BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch", help="B, slots per Attention instance (default: chosen jointly with r)."
    ),
]
KvQuantileOpt = Annotated[
    float,
    typer.Option(
        "--kv-quantile", help="Quantile of a worker's KV load that must fit in memory (0.5–1)."
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
_BARRIER_MODELS = ("gaussian", "empirical")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SizeInputs:
    """The resolved inputs of ``afdsizer size`` (θ and σ in tokens, where they came from)."""

    theta_tokens: float
    slot_load_std_tokens: float
    workload_source: str
    coefficients: CostCoefficients
    trace: Trace | None = None
    """The loaded trace, when the workload came from one (None with --theta)."""


def resolve_size_inputs(
    *,
    trace: Path | None,
    drop_invalid: bool,
    theta: float | None,
    slot_load_std: float | None,
    model: str | None,
    hardware: str | None,
    profile: Path | None,
    coeffs: Path | None,
    kv_dtype: str,
    attn_gpus: int,
    ffn_gpus: int,
) -> SizeInputs:
    """Turn the workload and cost options into θ, σ and coefficients (shared with --report)."""
    check_workload_options(trace, theta, slot_load_std)
    if theta is not None and slot_load_std is not None:
        theta_tokens, sigma_tokens = float(theta), float(slot_load_std)
        source = "--theta/--slot-load-std"
        loaded = None
    else:
        from afdsizer.workload import bundled_trace_path, estimate_slot_load, load_trace

        path = trace if trace is not None else bundled_trace_path()
        loaded = load_trace(path, drop_invalid=drop_invalid)
        estimate = estimate_slot_load(loaded.prompt_tokens, loaded.decode_tokens)
        theta_tokens = estimate.theta_tokens
        sigma_tokens = estimate.slot_load_std_tokens
        source = f"{path.name} ({estimate.n_requests:,} requests)"
    coefficients = coefficients_from_options(
        model=model,
        hardware=hardware,
        profile=profile,
        coeffs=coeffs,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
    )
    return SizeInputs(
        theta_tokens=theta_tokens,
        slot_load_std_tokens=sigma_tokens,
        workload_source=source,
        coefficients=coefficients,
        trace=loaded,
    )


def _worker_load_sampler(
    inputs: SizeInputs, barrier: str | None
) -> Callable[[int], npt.NDArray[np.float64]] | None:
    """B → stationary worker loads from the trace (empirical barrier), or None (Gaussian)."""
    if barrier is not None and barrier not in _BARRIER_MODELS:
        raise InputError(f"--barrier must be one of {', '.join(_BARRIER_MODELS)}, got {barrier!r}")
    trace = inputs.trace
    if trace is None:
        if barrier == "empirical":
            raise InputError(
                "--barrier empirical needs a trace (the worker-load law is sampled from its P, D);"
                " with --theta/--slot-load-std only --barrier gaussian is possible"
            )
        return None
    if barrier == "gaussian":
        return None
    from afdsizer.workload import sample_worker_loads

    def sampler(batch: int) -> npt.NDArray[np.float64]:
        return sample_worker_loads(trace.prompt_tokens, trace.decode_tokens, batch=batch, seed=0)

    return sampler


def register(app: typer.Typer) -> None:
    """Register ``afdsizer size`` on ``app``."""
    app.command("size")(size)


def size(
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
    batch: BatchOpt = None,
    kv_quantile: KvQuantileOpt = 0.999,
    tpot_ms: TpotMsOpt = None,
    price_attn: PriceAttnOpt = None,
    price_ffn: PriceFfnOpt = None,
    report: ReportOpt = None,
    barrier: BarrierOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recommend r (Attention instances per FFN instance) and B (slots per Attention instance)."""
    from afdsizer.theory import recommend

    inputs = resolve_size_inputs(
        trace=trace,
        drop_invalid=drop_invalid,
        theta=theta,
        slot_load_std=slot_load_std,
        model=model,
        hardware=hardware,
        profile=profile,
        coeffs=coeffs,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
    )
    tpot_s = tpot_target_s(tpot_ms)
    worker_loads = _worker_load_sampler(inputs, barrier)
    rec = recommend(
        inputs.coefficients,
        theta_tokens=inputs.theta_tokens,
        slot_load_std_tokens=inputs.slot_load_std_tokens,
        batch=batch,
        kv_quantile=kv_quantile,
        tpot_target_s=tpot_s,
        price_attn_per_h=price_attn,
        price_ffn_per_h=price_ffn,
        worker_load_samples=worker_loads,
    )
    if json_out:
        payload: dict[str, Any] = jsonable(rec)
        payload["workload_source"] = inputs.workload_source
        payload["coefficients"] = inputs.coefficients.to_dict()
        emit_json(payload)
    else:
        print_recommendation(rec, inputs)
    if report is not None:
        from afdsizer.report import make_report

        written, _ = make_report(
            report,
            inputs.coefficients,
            trace=inputs.trace,
            theta_tokens=None if inputs.trace is not None else inputs.theta_tokens,
            slot_load_std_tokens=None if inputs.trace is not None else inputs.slot_load_std_tokens,
            batch=batch,
            kv_quantile=kv_quantile,
            tpot_target_s=tpot_s,
            price_attn_per_h=price_attn,
            price_ffn_per_h=price_ffn,
            barrier_model=barrier,
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


def print_recommendation(rec: Recommendation, inputs: SizeInputs) -> None:
    """Print a recommendation readably (rich): summary, step times, and the Λ(r) table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(
        title=f"afdsizer size — deploy {rec.r_int}A–1F bundles, B = {rec.batch}",
        show_header=False,
    )
    summary.add_column("quantity")
    summary.add_column("value")
    cap = "unlimited" if rec.kv_capacity_tokens is None else f"{rec.kv_capacity_tokens:,.0f}"
    rows = [
        ("workload", inputs.workload_source),
        ("θ, σ (tokens)", f"{rec.theta:,.1f}, {rec.slot_load_std:,.1f}"),
        ("cost model", inputs.coefficients.source or "coefficients"),
        ("r, Attention instances per FFN instance", f"[bold]{rec.r_int}[/bold]"),
        (
            "B, slots per Attention instance",
            f"[bold]{rec.batch}[/bold] ({_LIMIT_TEXT[rec.batch_limit]})",
        ),
        (
            f"KV load at q={rec.kv_quantile:g} / capacity (tokens)",
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
        (
            "throughput per instance (tokens/s)",
            f"{rec.throughput_per_instance:,.0f} (mean field {rec.throughput_mean_field:,.0f}); "
            f"bundle {rec.bundle_tokens_per_s:,.0f}",
        ),
    ]
    if rec.tokens_per_dollar is not None:
        rows.append(("tokens per unit of price", f"{rec.tokens_per_dollar:,.0f}"))
    rows += [
        (
            "step E[τ] = TPOT (ms)",
            _ms(rec.step_time_s)
            + ("" if rec.tpot_target_s is None else f" (target {_ms(rec.tpot_target_s)})"),
        ),
        (
            "Attention mean / slowest of r (ms)",
            f"{_ms(rec.t_attn_s)} / {_ms(rec.t_attn_slowest_s)}",
        ),
        ("communication, FFN (ms)", f"{_ms(rec.t_comm_s)}, {_ms(rec.t_ffn_s)}"),
        ("idle: Attention, FFN", f"{_pct(rec.attention_idle)}, {_pct(rec.ffn_idle)}"),
        (
            "barrier: workers wait / throughput lost",
            f"{_pct(rec.barrier_overhead)} / {_pct(rec.barrier_throughput_loss)}",
        ),
    ]
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)

    table = Table(title=f"Λ(r) near the optimum, B = {rec.batch}")
    columns = ["r", "tokens/s/inst", "mean field", "E[τ] ms", "A idle", "F idle"]
    if rec.tokens_per_dollar is not None:
        columns.append("tokens/price")
    if rec.tpot_target_s is not None:
        columns.append("meets TPOT")
    for col in columns:
        table.add_column(col, justify="right")
    for row in rec.ratio_table:
        cells = [
            f"{row.ratio}",
            f"{row.throughput_per_instance:,.0f}",
            f"{row.throughput_mean_field:,.0f}",
            _ms(row.step_time_s),
            _pct(row.attention_idle),
            _pct(row.ffn_idle),
        ]
        if row.tokens_per_dollar is not None:
            cells.append(f"{row.tokens_per_dollar:,.0f}")
        if row.meets_tpot is not None:
            cells.append("yes" if row.meets_tpot else "no")
        table.add_row(*cells, style="bold" if row.ratio == rec.r_int else None)
    console.print(table)
