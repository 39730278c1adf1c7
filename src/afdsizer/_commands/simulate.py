"""`afdsizer simulate`: run the step-level simulator on one rA–1F bundle, or sweep r.

The workload is a trace (``--trace``, default the bundled Azure conversation sample) or fixed
lengths (``--isl/--osl``: every request the same, a constant trace); the cost coefficients come
from ``--coeffs``, ``--profile`` or ``--model/--hardware``, and the deployment (GPUs, DP
attention, microbatches, layers) from the same options as ``size``, through the same resolution
(:func:`afdsizer._sizing.resolve_inputs`). ``--ratio 16`` simulates one bundle; ``--ratio 1:32``
(or ``1:32:2``, or ``4,8,16``) sweeps r with common random numbers and reports the r with the
most tokens/s per GPU. ``--json`` prints :class:`afdsizer.sim.SimResult` fields plus
``kv_dtype`` (a list plus the best for a sweep).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from afdsizer._commands._common import (
    AttnGpusOptional,
    AttnParallelOpt,
    CoeffsOpt,
    DropInvalidOpt,
    FfnGpusOptional,
    HardwareOpt,
    IslOpt,
    JsonOpt,
    KvDtypeOptional,
    LayersOpt,
    MaxHoursOpt,
    MaxMemoryGbOpt,
    MicrobatchesOpt,
    ModelOpt,
    OslOpt,
    ProfileOpt,
    TraceOpt,
    emit_json,
    seed_option,
    unsigned_zero,
)
from afdsizer.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from afdsizer._sizing import SizingInputs
    from afdsizer.cost import CostCoefficients
    from afdsizer.sim import SimConfig, SimResult
    from afdsizer.workload import Trace

ProgressFn = Callable[[int, int], None]

__all__ = ["parse_ratios", "register"]

_MS_PER_S = 1e3
_FULL_OCCUPANCY = 0.999
"""Closed-loop slot occupancy below this means the KV limit held admissions back."""
PROGRESS_MIN_STEPS = 500_000
"""Show a progress bar (on a terminal) when the run(s) total at least this many steps."""

RatioOpt = Annotated[
    str,
    typer.Option(
        "--ratio",
        help="r, Attention instances per FFN instance: 16, a range 1:32 (or 1:32:STEP), "
        "or a list 4,8,16.",
    ),
]
BatchOpt = Annotated[int, typer.Option("--batch", help="B, slots per Attention instance.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="Decode steps per run (warm-up included).")]
WarmupOpt = Annotated[
    int | None, typer.Option("--warmup", help="Warm-up steps discarded (default: 10% of steps).")
]
SeedOpt = Annotated[int, seed_option("Seed of every random choice.")]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        help="overlapped (max), serial (sum) or microbatch (the m·L-stage flow shop). Default: "
        "overlapped for m = 1, microbatch for m >= 2.",
    ),
]
JitterCvOpt = Annotated[
    float, typer.Option("--jitter-cv", help="CV of per-worker per-step Attention jitter (0: none).")
]
JitterDistOpt = Annotated[str, typer.Option("--jitter-dist", help="lognormal or gamma.")]
RefillOpt = Annotated[
    str,
    typer.Option("--refill", help="resample (seeded draws from the trace) or replay (in order)."),
]
OpenLoopOpt = Annotated[
    str | None,
    typer.Option(
        "--open-loop", help="Open loop with a FIFO queue: arrivals from the trace or poisson."
    ),
]
RateOpt = Annotated[
    float | None, typer.Option("--rate", help="λ, Poisson arrival rate, requests/s.")
]
TimeScaleOpt = Annotated[
    float,
    typer.Option("--time-scale", help="Multiply trace timestamps by this (0.5: twice the rate)."),
]
KvCapacityOpt = Annotated[
    float | None,
    typer.Option(
        "--kv-capacity",
        help="KV tokens per Attention instance (default: from the cost model; 0: unlimited).",
    ),
]
StaggerOpt = Annotated[
    bool | None,
    typer.Option(
        "--stagger/--aligned",
        help="Start each slot's first request at a random step of its decode (stationary "
        "phases) or all fresh together. Default: staggered for --isl/--osl (else every slot "
        "would move in lockstep), aligned for a trace.",
    ),
]
SeriesOutOpt = Annotated[
    Path | None,
    typer.Option("--series-out", help="Write the per-step series to this Parquet file."),
]


def parse_ratios(text: str) -> list[int]:
    """Parse ``--ratio``: ``"16"``, ``"1:32"``, ``"1:32:2"`` or ``"4,8,16"`` → list of r.

    Raises
    ------
    InputError
        Not one of those forms, or an r < 1, or an empty range.

    Examples
    --------
    >>> parse_ratios("2:8:3")
    [2, 5, 8]
    >>> parse_ratios("4,8")
    [4, 8]
    """
    raw = text.strip()
    try:
        if ":" in raw:
            parts = [int(x) for x in raw.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            if step < 1:
                raise InputError(f"--ratio step must be >= 1, got {step} in {text!r}")
            ratios = list(range(parts[0], parts[1] + 1, step))
        else:
            ratios = [int(x) for x in raw.split(",")]
    except ValueError:
        raise InputError(
            f"--ratio must be an integer, a range LO:HI[:STEP] or a list A,B,..., got {text!r}"
        ) from None
    if not ratios:
        raise InputError(f"--ratio range is empty, got {text!r}")
    if min(ratios) < 1:
        raise InputError(f"--ratio values must be >= 1, got {min(ratios)} in {text!r}")
    return ratios


def register(app: typer.Typer) -> None:
    """Register ``afdsizer simulate`` on ``app``."""
    app.command("simulate")(simulate)


def simulate(
    ratio: RatioOpt,
    batch: BatchOpt,
    steps: StepsOpt = 100_000,
    warmup: WarmupOpt = None,
    seed: SeedOpt = 0,
    pipeline: PipelineOpt = None,
    microbatches: MicrobatchesOpt = None,
    layers: LayersOpt = None,
    attn_gpus: AttnGpusOptional = None,
    ffn_gpus: FfnGpusOptional = None,
    attn_parallel: AttnParallelOpt = None,
    jitter_cv: JitterCvOpt = 0.0,
    jitter_dist: JitterDistOpt = "lognormal",
    refill: RefillOpt = "resample",
    open_loop: OpenLoopOpt = None,
    rate: RateOpt = None,
    time_scale: TimeScaleOpt = 1.0,
    kv_capacity: KvCapacityOpt = None,
    stagger: StaggerOpt = None,
    series_out: SeriesOutOpt = None,
    trace: TraceOpt = None,
    isl: IslOpt = None,
    osl: OslOpt = None,
    drop_invalid: DropInvalidOpt = False,
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    profile: ProfileOpt = None,
    coeffs: CoeffsOpt = None,
    kv_dtype: KvDtypeOptional = None,
    json_out: JsonOpt = False,
    max_memory_gb: MaxMemoryGbOpt = None,
    max_hours: MaxHoursOpt = None,
) -> None:
    """Simulate an rA–1F bundle step by step: throughput, idle time, step time and TPOT."""
    from afdsizer._io import check_output_path
    from afdsizer._sizing import resolve_inputs

    ratios = parse_ratios(ratio)
    _check_loop_options(open_loop, rate, kv_capacity, series_out, ratios)
    if pipeline is not None and pipeline not in ("overlapped", "serial", "microbatch"):
        raise InputError(f"--pipeline must be overlapped, serial or microbatch, got {pipeline!r}")
    if pipeline == "serial" and microbatches not in (None, 1):
        raise InputError("--pipeline serial runs one microbatch; drop --microbatches")
    inputs = resolve_inputs(
        trace=trace, isl=isl, osl=osl, drop_invalid=drop_invalid, model=model,
        hardware=hardware, profile=profile, coeffs=coeffs, attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus, attn_parallel=attn_parallel, microbatches=microbatches,
        pipeline=None if pipeline == "serial" else pipeline, layers=layers, kv_dtype=kv_dtype,
    )  # fmt: skip
    config = _config(inputs, ratios[0], batch, steps, warmup, seed, serial=pipeline == "serial")
    config = dataclasses.replace(
        config,
        jitter_cv=jitter_cv,
        jitter_dist=_choice("--jitter-dist", jitter_dist, ("lognormal", "gamma")),
        refill=_choice("--refill", refill, ("resample", "replay")),
        arrivals=_choice("--open-loop", open_loop or "closed", ("closed", "trace", "poisson")),
        arrival_rate_per_s=rate,
        trace_time_scale=time_scale,
        kv_capacity_tokens=kv_capacity or None,
        stagger=(isl is not None and open_loop is None) if stagger is None else stagger,
        record_series=series_out is not None,
    )
    _check_size(ratios, config, max_memory_gb=max_memory_gb, max_hours=max_hours)
    if series_out is not None:
        check_output_path(
            series_out,
            option="--series-out",
            inputs={"--trace": trace, "--coeffs": coeffs, "--profile": profile, "--model": model},
        )
    requests = inputs.workload.trace
    if requests is None:  # pragma: no cover - resolve_inputs gives a trace or fixed lengths
        raise InputError("simulate needs requests: give --trace or --isl/--osl")
    source = requests.source or "trace"
    if config.arrivals == "trace" and requests.arrival_s is None:
        raise InputError(f"{source} has no timestamps; use --open-loop poisson --rate λ instead")
    arrival_s = requests.arrival_s if config.arrivals == "trace" else None
    _check_open_loop(ratios, config, inputs.coefficients, arrival_s)
    kv_dtype_used = inputs.deployment.kv_dtype

    results = []
    with _Progress(steps * len(ratios)) as progress:
        for i, r in enumerate(ratios):
            results.append(
                _run_one(inputs, dataclasses.replace(config, ratio=r), kv_capacity, requests,
                         arrival_s, progress, i * steps, steps * len(ratios))
            )  # fmt: skip
    best = max(results, key=lambda res: (res.throughput_per_gpu, -res.ratio))
    if len(ratios) == 1:
        if series_out is not None:
            _write_series(series_out, results[0])
        if json_out:
            emit_json({**results[0].summary(), "kv_dtype": kv_dtype_used})
        else:
            _print_one(results[0], config, source=source, coeffs_source=inputs.coefficients.source,
                       kv_dtype=kv_dtype_used)  # fmt: skip
    elif json_out:
        emit_json(
            {
                "results": [{**res.summary(), "kv_dtype": kv_dtype_used} for res in results],
                "best_ratio": best.ratio,
                "best": {**best.summary(), "kv_dtype": kv_dtype_used},
                "objective": "gpu",
                "kv_dtype": kv_dtype_used,
            }
        )
    else:
        _print_sweep(tuple(results), best.ratio, source=source)


def _check_loop_options(
    open_loop: str | None,
    rate: float | None,
    kv_capacity: float | None,
    series_out: Path | None,
    ratios: list[int],
) -> None:
    if open_loop is not None and open_loop not in ("trace", "poisson"):
        raise InputError(f"--open-loop must be trace or poisson, got {open_loop!r}")
    if rate is not None and open_loop != "poisson":
        raise InputError("--rate goes with --open-loop poisson")
    if kv_capacity is not None and kv_capacity < 0:
        raise InputError(f"--kv-capacity must be >= 0 tokens (0: unlimited), got {kv_capacity}")
    if series_out is not None and len(ratios) > 1:
        raise InputError("--series-out needs a single --ratio, not a sweep")


_Choice = TypeVar("_Choice", bound=str)


def _choice(option: str, value: str, allowed: tuple[_Choice, ...]) -> _Choice:
    """``value`` as one of ``allowed`` (typed), or a one-line error naming the option."""
    for name in allowed:
        if value == name:
            return name
    raise InputError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")


def _config(
    inputs: SizingInputs,
    ratio: int,
    batch: int,
    steps: int,
    warmup: int | None,
    seed: int,
    *,
    serial: bool,
) -> SimConfig:
    """The simulation of the resolved deployment (``--pipeline serial``: one batch, summed)."""
    from afdsizer.sim import DEFAULT_LAYERS, SimConfig

    deployment = inputs.deployment
    layers = deployment.layers
    if deployment.resolved_pipeline == "microbatch" and layers is None:
        if deployment.microbatches > 1:
            raise InputError(
                f"--layers is needed for the microbatch pipeline with m = "
                f"{deployment.microbatches} (the coefficients file does not give L)"
            )
        layers = DEFAULT_LAYERS  # m = 1: the flow shop is the serial sum whatever L is
    config = SimConfig.from_deployment(
        deployment, ratio=ratio, batch=batch, steps=steps, seed=seed, layers=layers,
        warmup_steps=warmup,
    )  # fmt: skip
    if serial:
        config = dataclasses.replace(config, pipeline="serial")
    return config


def _run_one(
    inputs: SizingInputs,
    config: SimConfig,
    kv_capacity: float | None,
    requests: Trace,
    arrival_s: npt.NDArray[np.float64] | None,
    progress: ProgressFn | None,
    offset: int,
    total: int,
) -> SimResult:
    """One r, with t_F linearised at the FFN batch r·B/m it runs (as ``size`` does)."""
    from afdsizer.sim import simulate

    coefficients: CostCoefficients = inputs.coefficients
    if inputs.relinearise is not None:
        coefficients = inputs.relinearise(config.ratio * config.batch / config.groups_per_worker)
    if kv_capacity == 0:  # explicit "unlimited" overrides the cost model's capacity
        coefficients = dataclasses.replace(coefficients, kv_capacity_tokens=None)

    def _progress(done: int, _steps: int) -> None:
        if progress is not None:
            progress(offset + done, total)

    return simulate(
        requests.prompt_tokens, requests.decode_tokens, coefficients, config,
        arrival_s=arrival_s, progress=_progress,
    )  # fmt: skip


def _check_size(
    ratios: list[int], config: SimConfig, *, max_memory_gb: float | None, max_hours: float | None
) -> None:
    """Refuse, before any work, runs that would not fit in memory or would run for days."""
    from afdsizer._limits import SimSize, check_simulation_size, simulation_size

    stages = config.microbatches * config.layers if config.pipeline == "microbatch" else 0
    sizes = [
        simulation_size(
            r,
            config.batch,
            config.steps,
            record_series=config.record_series,
            pipeline_stages=stages,
        )
        for r in ratios
    ]
    total = SimSize(
        memory_bytes=max(s.memory_bytes for s in sizes), seconds=sum(s.seconds for s in sizes)
    )
    what = f"--ratio {max(ratios)} × --batch {config.batch} over --steps {config.steps:,}"
    if len(ratios) > 1:
        what = f"{len(ratios)} runs up to {what}"
    check_simulation_size(total, what=what, max_memory_gb=max_memory_gb, max_hours=max_hours)


def _check_open_loop(
    ratios: list[int],
    config: SimConfig,
    coefficients: Any,
    arrival_s: Any,
) -> None:
    """Refuse an open loop that must overflow its queue, before simulating it.

    Bounds that hold whatever happens in the run: a step lasts at least the largest fixed cost
    α, so at least λ·steps·α requests arrive; each slot finishes at most one request per step,
    so at most steps·r·B leave. If the difference passes the simulator's queue limit, the run
    would only end in that error, maybe minutes later.
    """
    from afdsizer.sim._engine import MAX_QUEUED_REQUESTS

    if config.arrivals == "closed":
        return
    if config.arrivals == "poisson":
        rate = float(config.arrival_rate_per_s or 0.0)
    else:
        span = float(arrival_s[-1] - arrival_s[0]) * config.trace_time_scale
        rate = (len(arrival_s) - 1) / span if span > 0 else float("inf")
    alpha = coefficients.alpha_attn_s, coefficients.alpha_comm_s, coefficients.alpha_ffn_s
    step_floor_s = max(alpha)
    arriving = rate * config.steps * step_floor_s
    leaving = config.steps * min(ratios) * config.batch
    if arriving - leaving > MAX_QUEUED_REQUESTS:
        raise InputError(
            f"open loop overloaded from the start: λ = {rate:,.4g} req/s brings at least "
            f"{arriving:,.0f} requests in {config.steps:,} steps of at least "
            f"{step_floor_s * _MS_PER_S:.3g} ms, but {min(ratios)}×{config.batch} slots finish "
            f"at most {leaving:,.0f}; lower the rate (--rate, --time-scale) or raise r or B"
        )


class _Progress:
    """Context manager yielding a progress callback (a rich bar on a terminal, else None)."""

    def __init__(self, total_steps: int) -> None:
        self._enabled = total_steps >= PROGRESS_MIN_STEPS and sys.stderr.isatty()
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self._enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(stderr=True), transient=True)
        self._bar.start()
        task = self._bar.add_task("simulating", total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _write_series(path: Path, result: SimResult) -> None:
    import polars as pl

    from afdsizer._io import atomic_path

    assert result.series is not None
    columns = {f.name: getattr(result.series, f.name) for f in dataclasses.fields(result.series)}
    frame = pl.DataFrame(columns).with_row_index("step")
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)


def _deployment_text(result: SimResult, pipeline: str) -> str:
    shape = f"{pipeline}"
    if pipeline == "microbatch":
        shape = f"{result.microbatches} microbatches × {result.layers} layers"
    workers = (
        f", DP {result.workers_per_instance} workers" if result.workers_per_instance > 1 else ""
    )
    return (
        f"{result.ratio}A–1F bundle, B = {result.batch}, {shape}{workers}, "
        f"{result.attn_gpus}+{result.ffn_gpus} GPUs per A/F instance"
    )


def _print_one(
    result: SimResult, config: SimConfig, *, source: str, coeffs_source: str, kv_dtype: str
) -> None:
    from rich.console import Console
    from rich.table import Table

    ms = _MS_PER_S
    loop = "closed loop" if result.arrivals == "closed" else f"open loop ({result.arrivals})"
    table = Table(title=f"{_deployment_text(result, config.pipeline)}, {loop}", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("throughput per GPU", f"{result.throughput_per_gpu:,.1f} tok/s "
         f"({result.gpus_per_bundle} GPUs per bundle)"),
        ("throughput per instance", f"{result.throughput_per_instance:,.1f} ± "
         f"{result.throughput_stderr:,.1f} tok/s"),
        ("bundle tokens/s", f"{result.tokens_per_s:,.0f}"),
        ("step time mean / p50 / p99", f"{result.step_time_mean_s * ms:.3f} / "
         f"{result.step_time_p50_s * ms:.3f} / {result.step_time_p99_s * ms:.3f} ms"),
        ("TPOT p50 / p99", f"{result.tpot_p50_s * ms:.3f} / {result.tpot_p99_s * ms:.3f} ms"),
        ("Attention idle (barrier part)", f"{result.attention_idle:.1%} "
         f"({result.barrier_idle:.1%})"),
        ("FFN idle", f"{result.ffn_idle:.1%}"),
        ("mean slot load", f"{result.mean_slot_load:,.1f} tokens"),
        ("slot occupancy", f"{result.slot_occupancy:.1%}"),
        ("completed requests", f"{result.completed_requests:,}"),
        ("steps (after warm-up)", f"{result.steps:,} (+{result.warmup_steps:,})"),
        ("KV cache dtype", kv_dtype),
    ]  # fmt: skip
    if result.arrivals != "closed":
        rows.append(
            ("queue delay mean / p99", f"{result.queue_delay_mean_s * ms:.2f} / "
             f"{result.queue_delay_p99_s * ms:.2f} ms")
        )  # fmt: skip
        rows.append(("arrival rate", f"{result.arrival_rate_per_s:,.2f} req/s"))
    for name, value in rows:
        table.add_row(name, unsigned_zero(value))
    console = Console()
    console.print(table)
    console.print(f"workload: {source}; cost: {coeffs_source or 'coefficients file'}")
    if result.arrivals == "closed" and result.slot_occupancy < _FULL_OCCUPANCY:
        console.print(
            f"note: only {result.slot_occupancy:.1%} of the slots were busy — the KV capacity "
            "holds back admissions at this B (--kv-capacity 0 lifts the limit)"
        )


def _print_sweep(results: tuple[SimResult, ...], best_ratio: int, *, source: str) -> None:
    from rich.console import Console
    from rich.table import Table

    ms = _MS_PER_S
    first = results[0]
    gpus = f"{first.attn_gpus}+{first.ffn_gpus} GPUs per A/F instance"
    table = Table(title=f"simulated throughput over r, B = {first.batch}, {gpus} ({source})")
    # tokens/s per GPU and per instance (Λ); τ the step time and TPOT in ms.
    for name in ("r", "tok/s/GPU", "Λ", "± s.e.", "τ mean", "τ p99", "A idle", "barrier",
                 "F idle", "TPOT p99"):  # fmt: skip
        table.add_column(name, justify="right")
    for res in results:
        mark = " *" if res.ratio == best_ratio else ""
        cells = (
            f"{res.ratio}{mark}", f"{res.throughput_per_gpu:,.1f}",
            f"{res.throughput_per_instance:,.1f}",
            f"{res.throughput_stderr:,.1f}", f"{res.step_time_mean_s * ms:.3f}",
            f"{res.step_time_p99_s * ms:.3f}", f"{res.attention_idle:.1%}",
            f"{res.barrier_idle:.1%}", f"{res.ffn_idle:.1%}", f"{res.tpot_p99_s * ms:.3f}",
        )  # fmt: skip
        table.add_row(*(unsigned_zero(c) for c in cells))
    console = Console()
    console.print(table)
    console.print(f"simulation-optimal r = {best_ratio} by tokens/s per GPU (* above)")
