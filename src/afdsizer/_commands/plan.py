"""`afdsizer plan`: from a trace, a model and GPUs to a layout, a fleet and a launch command.

Searches layouts (GPUs per Attention and FFN instance, DP/TP attention, EP/TP FFN,
microbatches, KV dtype, B, r) under per-GPU memory, TPOT targets and a GPU budget, ranks them by
tokens/s per GPU (per dollar with prices; of the fleet serving ``--rate`` when there is one),
and optionally verifies the best in the open-loop simulator, plans per time window, writes a
Pareto report and emits the launch configuration of vLLM's afd-plugin, SGLang or aiconfigurator.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from afdsizer._commands._common import (
    DEFAULT_HARDWARE,
    DEFAULT_MODEL,
    DropInvalidOpt,
    HardwareOpt,
    JsonOpt,
    ModelOpt,
    ProfileOpt,
    SlotLoadStdOpt,
    ThetaOpt,
    TpotMsOpt,
    TraceOpt,
    check_workload_options,
    emit_json,
    jsonable,
    tpot_target_s,
)
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.deployment import Deployment
    from afdsizer.plan import Candidate, Plan
    from afdsizer.plan._drift import DriftReport
    from afdsizer.plan._verify import Verification
    from afdsizer.workload import Workload

__all__ = ["register"]

_MS_PER_S = 1e3
_VERIFY_TOP = 3
"""How many of the best candidates --verify simulates."""

RateOpt = Annotated[
    float | None,
    typer.Option("--rate", help="λ, requests/s to serve (default: the trace's own rate)."),
]
BudgetOpt = Annotated[int | None, typer.Option("--gpu-budget", help="Most GPUs the fleet may use.")]
TopOpt = Annotated[int, typer.Option("--top", help="How many candidates to print.")]
P99Opt = Annotated[
    float | None,
    typer.Option("--tpot-p99-ms", help="TPOT target: 99th percentile of the step at most ms."),
]
IslOpt = Annotated[
    int | None, typer.Option("--isl", help="Fixed prompt length, tokens (with --osl).")
]
OslOpt = Annotated[
    int | None, typer.Option("--osl", help="Fixed decode length, tokens (with --isl).")
]
KvDtypesOpt = Annotated[
    str, typer.Option("--kv-dtypes", help="KV dtypes the search may use, e.g. bf16,fp8.")
]
AttnListOpt = Annotated[
    str, typer.Option("--attn-gpus", help="GPUs per Attention instance to try.")
]
FfnListOpt = Annotated[str, typer.Option("--ffn-gpus", help="GPUs per FFN instance to try.")]
MbOpt = Annotated[str, typer.Option("--microbatches", help="Microbatch counts m to try.")]
MaxRatioOpt = Annotated[int, typer.Option("--max-ratio", help="Largest r to try.")]
PipelineOpt = Annotated[
    str,
    typer.Option(
        "--pipeline",
        help="microbatch (the m·L flow shop engines run; m = 1 is serial) or overlapped "
        "(the paper's free overlap).",
    ),
]
PriceOpt = Annotated[
    float | None,
    typer.Option("--price-attn-gpu", help="Price of one Attention GPU per hour (per dollar)."),
]
PriceFfnOpt = Annotated[
    float | None,
    typer.Option("--price-ffn-gpu", help="Price of one FFN GPU per hour (with --price-attn-gpu)."),
]
EmitOpt = Annotated[
    str | None,
    typer.Option("--emit", help="Print the launch config: vllm, sglang, dynamo, aiconfigurator."),
]
VerifyOpt = Annotated[
    bool, typer.Option("--verify", help="Simulate the top candidates open loop at the rate.")
]
ArrivalsOpt = Annotated[
    str, typer.Option("--arrivals", help="--verify arrivals: poisson or trace.")
]
WindowOpt = Annotated[
    str | None,
    typer.Option("--window", help="Plan every window of the trace, e.g. 10min (drift)."),
]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write an HTML report with the Pareto plot.")
]
RefineOpt = Annotated[
    int,
    typer.Option("--refine", help="How many of the best layouts recommend sizes (0: screen)."),
]
ServeOpt = Annotated[
    str | None,
    typer.Option("--serve-model", help="Model path/id in launch commands (default: the HF id)."),
]


def register(app: typer.Typer) -> None:
    """Register ``afdsizer plan`` on ``app``."""
    app.command("plan")(plan)


def _int_list(name: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(
            f"{name} must be a comma-separated list of integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise InputError(f"{name} must list integers >= 1, got {text!r}")
    return values


def _workload(
    trace: Path | None,
    drop_invalid: bool,
    theta: float | None,
    slot_load_std: float | None,
    isl: int | None,
    osl: int | None,
) -> Workload:
    from afdsizer.workload import Workload, bundled_trace_path, load_trace

    check_workload_options(trace, theta, slot_load_std)
    if (isl is None) != (osl is None):
        raise InputError("--isl and --osl go together (tokens)")
    if isl is not None and osl is not None:
        if trace is not None or theta is not None:
            raise InputError("--isl/--osl exclude --trace and --theta/--slot-load-std")
        return Workload.from_fixed_lengths(isl, osl)
    if theta is not None and slot_load_std is not None:
        return Workload.from_moments(theta, slot_load_std)
    path = trace if trace is not None else bundled_trace_path()
    return Workload.from_trace(load_trace(path, drop_invalid=drop_invalid))


def _trace_rate(workload: Workload) -> float | None:
    import numpy as np

    t = None if workload.trace is None else workload.trace.arrival_s
    if t is None or len(t) < 2 or float(np.ptp(t)) <= 0:
        return None
    return len(t) / float(np.ptp(t))


def _model_identity(model: str) -> tuple[str, str | None]:
    """(what to serve, architectures[0]) from a preset's source URL or a config.json."""
    from afdsizer.cost import MODEL_PRESETS

    path = Path(model)
    if path.is_file():
        arch = (json.loads(path.read_text()).get("architectures") or [None])[0]
        return str(path.parent), arch
    if model in MODEL_PRESETS:
        preset = Path(__file__).parents[1] / "cost" / "presets" / "models" / f"{model}.json"
        data = json.loads(preset.read_text())
        source = str(data.get("_source", ""))
        hf_id = source.split("huggingface.co/")[-1].split("/blob/")[0] if source else model
        return hf_id, (data.get("architectures") or [None])[0]
    return model, None


def plan(
    trace: TraceOpt = None,
    drop_invalid: DropInvalidOpt = False,
    theta: ThetaOpt = None,
    slot_load_std: SlotLoadStdOpt = None,
    isl: IslOpt = None,
    osl: OslOpt = None,
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    profile: ProfileOpt = None,
    gpu_budget: BudgetOpt = None,
    tpot_ms: TpotMsOpt = None,
    tpot_p99_ms: P99Opt = None,
    rate: RateOpt = None,
    top: TopOpt = 10,
    kv_dtypes: KvDtypesOpt = "bf16",
    attn_gpus: AttnListOpt = "1,2,4,8",
    ffn_gpus: FfnListOpt = "1,2,4,8,16",
    microbatches: MbOpt = "1,2,3",
    max_ratio: MaxRatioOpt = 48,
    pipeline: PipelineOpt = "microbatch",
    price_attn_gpu: PriceOpt = None,
    price_ffn_gpu: PriceFfnOpt = None,
    emit: EmitOpt = None,
    serve_model: ServeOpt = None,
    verify: VerifyOpt = False,
    arrivals: ArrivalsOpt = "poisson",
    window: WindowOpt = None,
    report: ReportOpt = None,
    refine: RefineOpt = 3,
    json_out: JsonOpt = False,
) -> None:
    """Search layouts for a workload: the best (g_A, g_F, parallelism, m, B, r) and its fleet."""
    from afdsizer.deployment import Deployment
    from afdsizer.plan import PlanSpace, check_target, plan_layouts
    from afdsizer.plan._drift import parse_window_s

    # Cheap checks first: a typo should not cost a search.
    if top < 1:
        raise InputError(f"--top must be >= 1, got {top}")
    if refine < 0:
        raise InputError(f"--refine must be >= 0, got {refine}")
    if emit is not None:
        check_target(emit)
    if window is not None:
        parse_window_s(window)
    if arrivals not in ("poisson", "trace"):
        raise InputError(f"--arrivals must be poisson or trace, got {arrivals!r}")
    workload = _workload(trace, drop_invalid, theta, slot_load_std, isl, osl)
    model_name, hw = model or DEFAULT_MODEL, hardware or DEFAULT_HARDWARE
    space = PlanSpace(
        attn_gpus=_int_list("--attn-gpus", attn_gpus),
        ffn_gpus=_int_list("--ffn-gpus", ffn_gpus),
        microbatches=_int_list("--microbatches", microbatches),
        kv_dtypes=tuple(v.strip() for v in kv_dtypes.split(",") if v.strip()),
        max_ratio=max_ratio,
        pipeline=pipeline,  # type: ignore[arg-type]
    )
    if (price_attn_gpu is None) != (price_ffn_gpu is None):
        raise InputError("--price-attn-gpu and --price-ffn-gpu go together")
    base = Deployment(
        tpot_target_s=tpot_target_s(tpot_ms),
        tpot_p99_target_s=None if tpot_p99_ms is None else _p99_s(tpot_p99_ms),
        objective="dollar" if price_attn_gpu is not None else None,
        price_attn_per_h=price_attn_gpu,
        price_ffn_per_h=price_ffn_gpu,
    )
    rate_per_s = rate if rate is not None else _trace_rate(workload)
    result = plan_layouts(
        workload, model=model_name, hardware=hw, base=base, space=space, profile=profile,
        gpu_budget=gpu_budget, rate_per_s=rate_per_s, refine=refine,
    )  # fmt: skip
    verifications = []
    if verify:
        verifications = _verify(result, workload, model_name, hw, base, rate_per_s, profile,
                                arrivals)  # fmt: skip
    drift = None
    if window is not None:
        # Every window is a plan of its own: recommend sizes only each one's best layout.
        drift = _drift(workload, window, model_name, hw, base, space, profile, gpu_budget,
                       rate, min(refine, 1))  # fmt: skip
    launch = None
    if emit is not None:
        launch = _first_expressible(emit, result, workload, model_name, hw, serve_model)
    if json_out:
        emit_json(_payload(result, top, rate_per_s, verifications, drift, launch, emit))
    else:
        _print(result, top, rate_per_s, verifications, drift)
        if launch is not None:
            typer.echo(launch, nl=False)
    if report is not None:
        written = _write_report(report, result, base, verifications, drift, launch)
        if not json_out:
            typer.echo(f"report written to {written}", err=True)


def _p99_s(ms: float) -> float:
    if not ms > 0:
        raise InputError(f"--tpot-p99-ms must be > 0 ms, got {ms!r}")
    return ms / _MS_PER_S


def _verify(
    result: Plan,
    workload: Workload,
    model: str,
    hardware: str,
    base: Deployment,
    rate_per_s: float | None,
    profile: Path | None,
    arrivals: str,
) -> list[tuple[Candidate, int, Verification]]:
    from afdsizer.plan import fleet_for
    from afdsizer.plan._verify import verify_candidate

    if rate_per_s is None or workload.trace is None:
        raise InputError("--verify needs a rate: give --rate or a trace with timestamps")
    decode = float(workload.trace.decode_tokens.mean())
    out = []
    for cand in result.candidates[:_VERIFY_TOP]:
        fleet = fleet_for(cand.tokens_per_s, cand.gpus, rate_per_s, decode)
        v = verify_candidate(cand, workload, model=model, hardware=hardware, base=base,
                             rate_per_s=rate_per_s, bundles=fleet.bundles, profile=profile,
                             arrivals=arrivals)  # fmt: skip
        out.append((cand, fleet.bundles, v))
    return out


def _drift(
    workload: Workload,
    window: str,
    model: str,
    hardware: str,
    base: Deployment,
    space: Any,
    profile: Path | None,
    gpu_budget: int | None,
    rate: float | None,
    refine: int,
) -> DriftReport:
    from afdsizer.plan._drift import parse_window_s, plan_drift

    if workload.trace is None or workload.trace.arrival_s is None:
        raise InputError("--window needs a trace with arrival timestamps")
    own = _trace_rate(workload)
    scale = 1.0 if rate is None or own is None else rate / own
    return plan_drift(workload.trace, window_s=parse_window_s(window), model=model,
                      hardware=hardware, base=base, space=space, profile=profile,
                      gpu_budget=gpu_budget, rate_scale=scale, refine=refine,
                      workload=workload)  # fmt: skip


def _first_expressible(
    target: str,
    result: Plan,
    workload: Workload,
    model: str,
    hardware: str,
    serve_model: str | None,
) -> str:
    """Launch lines of the best candidate ``target`` can express (refusals say why not)."""
    from afdsizer.deployment import Deployment
    from afdsizer.plan import LaunchSpec, emit_launch

    common = _launch_context(workload, model, hardware, serve_model)  # once, not per candidate
    first: InputError | None = None
    for rank, cand in enumerate(result.candidates):
        spec = LaunchSpec(
            deployment=cand.deployment(Deployment()), ratio=cand.ratio, batch=cand.batch, **common
        )
        try:
            text = emit_launch(target, spec)
        except InputError as exc:
            if target == "dynamo":
                raise
            first = first or exc
            continue
        if rank == 0:
            return text
        return f"# candidate #{rank + 1}: #1 cannot be launched: {first}\n" + text
    assert first is not None
    raise first


def _launch_context(
    workload: Workload, model: str, hardware: str, serve_model: str | None
) -> dict[str, Any]:
    """The LaunchSpec fields every candidate shares: model identity, hardware, mean lengths."""
    from afdsizer.cost import load_model_spec

    served, arch = _model_identity(model)
    isl = osl = None
    if workload.trace is not None:
        isl = round(float(workload.trace.prompt_tokens.mean()))
        osl = max(1, round(float(workload.trace.decode_tokens.mean())))
    return {
        "model": serve_model or served,
        "moe": load_model_spec(model).is_moe,
        "architecture": arch,
        "hardware": hardware,
        "isl_tokens": isl,
        "osl_tokens": osl,
    }


def _payload(
    result: Plan,
    top: int,
    rate_per_s: float | None,
    verifications: list[tuple[Candidate, int, Verification]],
    drift: DriftReport | None,
    launch: str | None,
    emit: str | None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "candidates": [jsonable(c) for c in result.candidates[:top]],
        "fleet": None if result.fleet is None else jsonable(result.fleet),
        "rate_per_s": rate_per_s,
        "n_screened": result.n_screened,
        "n_layouts": result.n_layouts,
        "elapsed_s": result.elapsed_s,
        "pareto": [{"tpot_p99_s": x, "throughput_per_gpu": y} for x, y in result.pareto],
    }
    if verifications:
        payload["verify"] = [
            {"rank": i, "bundles": n, **jsonable(v)} for i, (_, n, v) in enumerate(verifications)
        ]
    if drift is not None:
        payload["drift"] = jsonable(drift)
    if launch is not None:
        payload["launch"] = {"target": emit, "commands": launch}
    return payload


def _ms(seconds: float) -> str:
    return f"{seconds * _MS_PER_S:.1f}"


def _print(
    result: Plan,
    top: int,
    rate_per_s: float | None,
    verifications: list[tuple[Candidate, int, Verification]],
    drift: DriftReport | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"afdsizer plan — {result.n_screened:,} candidates over {result.n_layouts} "
        f"layouts in {result.elapsed_s:.2f} s"
    )
    cols = ["#", "g_A", "attn", "g_F", "ffn", "m", "kv", "B", "r", "GPUs", "tok/s/GPU",
            "TPOT ms", "p99 ms", "regime", "by"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right")
    for i, c in enumerate(result.candidates[:top]):
        table.add_row(
            str(i + 1), str(c.attn_gpus), c.attn_parallel, str(c.ffn_gpus), c.ffn_parallel,
            str(c.microbatches), c.kv_dtype, str(c.batch), str(c.ratio), str(c.gpus),
            f"{c.throughput_per_gpu:,.0f}", _ms(c.tpot_s), _ms(c.tpot_p99_s), c.regime,
            c.source, style="bold" if i == 0 else None,
        )  # fmt: skip
    console.print(table)
    f = result.fleet
    if f is not None:
        console.print(
            f"fleet at {f.rate_per_s:.2f} req/s: [bold]{f.bundles}[/bold] bundles, {f.gpus} GPUs, "
            f"capacity {f.requests_per_s_capacity:.2f} req/s, headroom {100 * f.headroom:.1f}%"
        )
    elif rate_per_s is None:
        console.print("no fleet: give --rate (or a trace with timestamps)")
    for i, (_, n, v) in enumerate(verifications):
        console.print(
            f"verify #{i + 1} ({v.arrivals}, {n} bundles, {v.rate_per_s:.2f} req/s each): TPOT "
            f"p50 {_ms(v.tpot_p50_s)} / p99 {_ms(v.tpot_p99_s)} ms (closed form "
            f"{_ms(v.closed_form_tpot_s)} / {_ms(v.closed_form_tpot_p99_s)}), queue "
            f"{_ms(v.queue_delay_mean_s)} ms mean, {_ms(v.queue_delay_p99_s)} ms p99, "
            f"slots {100 * v.slot_occupancy:.0f}% full"
        )
    if drift is not None:
        _print_drift(console, drift)


def _print_drift(console: Any, drift: DriftReport) -> None:
    from rich.table import Table

    table = Table(title=f"drift — best layout per {drift.window_s:.0f} s window")
    for col in ("window s", "req/s", "θ", "g_A", "g_F", "m", "B", "r", "GPUs", "fixed GPUs"):
        table.add_column(col, justify="right")
    for w in drift.windows:
        b = w.best
        table.add_row(
            f"{w.start_s:.0f}–{w.end_s:.0f}", f"{w.rate_per_s:.2f}", f"{w.theta_tokens:,.0f}",
            f"{b.attn_gpus} {b.attn_parallel}", f"{b.ffn_gpus} {b.ffn_parallel}",
            str(b.microbatches), str(b.batch), str(b.ratio), str(w.best_gpus), str(w.fixed_gpus),
        )  # fmt: skip
    console.print(table)
    fx = drift.fixed
    console.print(
        f"fixed layout g_A={fx.attn_gpus} {fx.attn_parallel}, g_F={fx.ffn_gpus}, "
        f"m={fx.microbatches}, B={fx.batch}, r={fx.ratio}: {drift.gpu_hours_fixed_layout:.1f} "
        f"GPU·h rescaled per window ({100 * drift.loss_fixed_layout:.1f}% lost), "
        f"{drift.gpu_hours_fixed_fleet:.1f} GPU·h provisioned for the peak "
        f"({100 * drift.loss_fixed_fleet:.1f}% lost), against "
        f"{drift.gpu_hours_reprovisioned:.1f} GPU·h re-provisioned every window"
    )


def _write_report(
    path: Path,
    result: Plan,
    base: Deployment,
    verifications: list[tuple[Candidate, int, Verification]],
    drift: DriftReport | None,
    launch: str | None,
) -> Path:
    from afdsizer.plan._figure import pareto_figure
    from afdsizer.report import figure_to_inline_svg

    svg = figure_to_inline_svg(
        pareto_figure(result, tpot_p99_target_s=base.tpot_p99_target_s), prefix="pareto"
    )
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in _row(c)) + "</tr>"
        for c in result.candidates[:20]
    )
    head = "".join(f"<th>{h}</th>" for h in _ROW_HEAD)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>afdsizer plan</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}td,th{padding:2px 6px;"
        "text-align:right}table{border-collapse:collapse}tr:first-child td{font-weight:bold}"
        "</style></head><body><h1>afdsizer plan</h1>",
        f"<p>{result.n_screened:,} candidates over {result.n_layouts} layouts screened in "
        f"{result.elapsed_s:.2f} s; the chosen layout is the star.</p>",
        svg,
        f"<h2>Candidates</h2><table><tr>{head}</tr>{rows}</table>",
    ]
    if result.fleet is not None:
        f = result.fleet
        parts.append(
            f"<h2>Fleet</h2><p>{f.bundles} bundles, {f.gpus} GPUs at {f.rate_per_s:.2f} req/s: "
            f"capacity {f.requests_per_s_capacity:.2f} req/s, headroom {100 * f.headroom:.1f}%</p>"
        )
    for i, (_, n, v) in enumerate(verifications):
        parts.append(
            f"<p>verify #{i + 1}: {n} bundles, TPOT p50 {_ms(v.tpot_p50_s)} ms, p99 "
            f"{_ms(v.tpot_p99_s)} ms (closed form {_ms(v.closed_form_tpot_p99_s)}), queue "
            f"{_ms(v.queue_delay_mean_s)} ms mean</p>"
        )
    if drift is not None:
        sched = "".join(
            f"<tr><td>{w.start_s:.0f}–{w.end_s:.0f}</td><td>{w.rate_per_s:.2f}</td>"
            f"<td>{w.best.attn_gpus}/{w.best.ffn_gpus}</td><td>{w.best.batch}</td>"
            f"<td>{w.best.ratio}</td><td>{w.best_gpus}</td><td>{w.fixed_gpus}</td></tr>"
            for w in drift.windows
        )
        parts.append(
            "<h2>Schedule</h2><table><tr><th>window s</th><th>req/s</th><th>g_A/g_F</th>"
            f"<th>B</th><th>r</th><th>GPUs</th><th>fixed GPUs</th></tr>{sched}</table>"
            f"<p>one fixed layout loses {100 * drift.loss_fixed_layout:.1f}% of GPU·h "
            f"({100 * drift.loss_fixed_fleet:.1f}% provisioned for the peak)</p>"
        )
    if launch is not None:
        parts.append(f"<h2>Launch</h2><pre>{html.escape(launch)}</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


_ROW_HEAD = ("g_A", "attn", "g_F", "ffn", "m", "kv", "B", "r", "GPUs", "tok/s/GPU", "TPOT ms",
             "p99 ms", "regime")  # fmt: skip


def _row(c: Candidate) -> tuple[object, ...]:
    d = dataclasses.asdict(c)
    return (
        d["attn_gpus"], d["attn_parallel"], d["ffn_gpus"], d["ffn_parallel"], d["microbatches"],
        d["kv_dtype"], d["batch"], d["ratio"], d["gpus"], f"{c.throughput_per_gpu:,.0f}",
        _ms(c.tpot_s), _ms(c.tpot_p99_s), c.regime,
    )  # fmt: skip
