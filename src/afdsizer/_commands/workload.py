"""`afdsizer workload`: summarise a request trace (θ with its CI, σ, descriptives, windows)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from afdsizer._commands._common import DropInvalidOpt, JsonOpt, emit_json, seed_option
from afdsizer.errors import InputError

__all__ = ["register"]

TraceArg = Annotated[
    Path | None,
    typer.Argument(help="Trace (CSV/JSONL/Parquet, .gz ok). Default: bundled Azure conv 2023."),
]
WindowOpt = Annotated[
    str | None, typer.Option("--window", help="θ per time window, e.g. 30s, 10min, 1h.")
]
PromptColOpt = Annotated[
    str | None, typer.Option("--prompt-col", help="Column holding the prompt length P (tokens).")
]
DecodeColOpt = Annotated[
    str | None, typer.Option("--decode-col", help="Column holding the decode length D (tokens).")
]
TimeColOpt = Annotated[
    str | None, typer.Option("--time-col", help="Column holding arrival times (seconds).")
]
CiOpt = Annotated[str, typer.Option("--ci", help="Interval of θ: delta or bootstrap.")]
ConfidenceOpt = Annotated[float, typer.Option("--confidence", help="Coverage of the interval.")]
SeedOpt = Annotated[int, seed_option("Seed of the bootstrap.")]
MAX_BOOTSTRAP_SAMPLES = 100_000
"""Most bootstrap replicates: each resamples every row (about 35 ns per row per replicate)."""
BootstrapOpt = Annotated[
    int,
    typer.Option(
        "--bootstrap-samples",
        min=1,
        max=MAX_BOOTSTRAP_SAMPLES,
        help="Bootstrap replicates (with --ci bootstrap; each costs about 35 ns per trace row).",
    ),
]


def register(app: typer.Typer) -> None:
    """Register ``afdsizer workload`` on ``app``."""
    app.command("workload")(workload)


def workload(
    trace: TraceArg = None,
    json_out: JsonOpt = False,
    window: WindowOpt = None,
    prompt_col: PromptColOpt = None,
    decode_col: DecodeColOpt = None,
    time_col: TimeColOpt = None,
    drop_invalid: DropInvalidOpt = False,
    ci: CiOpt = "delta",
    confidence: ConfidenceOpt = 0.95,
    seed: SeedOpt = 0,
    bootstrap_samples: BootstrapOpt = 1000,
) -> None:
    """Summarise a request trace: θ (mean slot load) with its CI, σ, lengths, arrivals, windows."""
    from afdsizer.workload import bundled_trace_path, parse_window, summarize_trace

    if ci not in ("delta", "bootstrap"):
        raise InputError(f"--ci must be delta or bootstrap, got {ci!r}")
    summary = summarize_trace(
        trace if trace is not None else bundled_trace_path(),
        prompt_col=prompt_col,
        decode_col=decode_col,
        time_col=time_col,
        drop_invalid=drop_invalid,
        window_s=None if window is None else parse_window(window),
        ci="bootstrap" if ci == "bootstrap" else "delta",
        confidence=confidence,
        n_bootstrap=bootstrap_samples,
        seed=seed,
    )
    payload = summary.to_dict()
    if json_out:
        emit_json(payload)
    else:
        _print_tables(payload)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _print_tables(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    main = Table(title=f"Workload: {Path(d['source']).name} ({d['format']})", show_header=False)
    main.add_column("quantity")
    main.add_column("value", justify="right")
    low, high = d["theta_ci"]
    level = f"{100 * d['confidence']:g}%"
    rows = [
        ("requests", _fmt(d["rows"])),
        ("dropped (malformed) / failed", f"{d['dropped']:,} / {d['failed']:,}"),
        ("θ, mean slot load (tokens)", _fmt(d["theta"])),
        (f"θ {level} CI ({d['ci_method']})", f"[{_fmt(low)}, {_fmt(high)}]"),
        ("σ, slot load std (tokens)", _fmt(d["slot_load_std"])),
        ("corr(P, D)", _fmt(d["corr_prompt_decode"], 3)),
        ("span (s)", _fmt(d["span_s"])),
        ("arrival rate (req/s)", _fmt(d["arrival_rate_per_s"], 2)),
    ]
    for name, value in rows:
        main.add_row(name, value)
    console.print(main)

    lengths = Table(title="Lengths (tokens)")
    for col in ("", "mean", "p50", "p90", "p99", "min", "max"):
        lengths.add_column(col, justify="right")
    for label, key in (("prompt P", "prompt"), ("decode D", "decode")):
        pct = d[f"{key}_percentiles"]
        lo, hi = d[f"{key}_range"]
        lengths.add_row(
            label, _fmt(d[f"mean_{key}"]), *(_fmt(pct[k]) for k in ("p50", "p90", "p99")),
            _fmt(lo), _fmt(hi),
        )  # fmt: skip
    console.print(lengths)

    if d["windows"]:
        win = Table(title=f"θ per {d['window_s']:g} s window")
        for col in ("start s", "requests", "req/s", "mean P", "mean D", "θ", "θ CI", "σ"):
            win.add_column(col, justify="right", no_wrap=True)
        for w in d["windows"]:
            lo, hi = w["theta_ci"]
            win.add_row(
                _fmt(w["start_s"], 0), _fmt(w["rows"]), _fmt(w["arrival_rate_per_s"], 2),
                _fmt(w["mean_prompt"]), _fmt(w["mean_decode"]), _fmt(w["theta"]),
                f"[{_fmt(lo)}, {_fmt(hi)}]", _fmt(w["slot_load_std"]),
            )  # fmt: skip
        console.print(win)
