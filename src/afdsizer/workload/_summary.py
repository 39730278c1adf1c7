"""Streaming trace summary: descriptives, θ with its interval, and θ per time window.

The file is never held in memory as rows: polars scans it lazily in its streaming engine and
reduces it to the sufficient sums of :mod:`afdsizer.workload._estimators` (θ̂, σ̂², the
delta-method interval), the sums for corr(P, D), min/max of the arrival times, and the exact
percentiles of P and D (polars ``quantile`` with linear interpolation, numpy's default; the
engine keeps those two length columns, 8 bytes per row each, to compute them). Windows need a
second pass once the first arrival is known. The bootstrap interval is the one part that loads
the valid (P, D) pairs into memory.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from afdsizer.errors import InputError, TraceError
from afdsizer.workload._estimators import (
    DEFAULT_N_BOOTSTRAP,
    CiMethod,
    SlotLoadEstimate,
    estimate_from_sums,
    estimate_slot_load,
    slot_load_sum_exprs,
    sums_from_row,
)
from afdsizer.workload._formats import plain_file
from afdsizer.workload._scan import (
    DECODE,
    PROMPT,
    ROW,
    STATUS,
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    TIME_S,
    FastPathError,
    TraceScan,
    collect,
    collect_all,
    open_scan,
)

__all__ = [
    "PERCENTILES",
    "LengthStats",
    "TraceSummary",
    "WindowSummary",
    "parse_window",
    "summarize_trace",
]

PERCENTILES = (50, 90, 99)
"""Percentiles of P and D reported (linear interpolation)."""
QUANTILE_METHOD = "exact (polars quantile, linear interpolation)"
"""How the percentiles are computed, as reported in the summary."""
_HEAD_ROWS = 10_000
"""Rows read first to pick the shifts (≈ θ, mean P, mean D) the streamed sums are taken around."""
_WINDOW_UNITS_S = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_WINDOW_UNITS_S |= {"hr": 3600.0, "d": 86400.0, "": 1.0}
_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthStats:
    """Mean, extremes and percentiles of one length column, tokens."""

    mean_tokens: float
    min_tokens: int
    max_tokens: int
    percentiles_tokens: dict[int, float]
    """Percentile (50, 90, 99) → value, tokens (linear interpolation)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSummary:
    """θ and the request mix in one time window [start_s, end_s) since the first request."""

    start_s: float
    end_s: float
    rows: int
    mean_prompt_tokens: float
    mean_decode_tokens: float
    arrival_rate_per_s: float | None
    """Requests per second over the part of the window the trace covers."""
    slot_load: SlotLoadEstimate


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSummary:
    """What :func:`summarize_trace` found in a trace.

    Parameters
    ----------
    source, trace_format : str
        File and recognised format.
    rows : int
        Valid requests n.
    dropped_rows, failed_rows : int
        Malformed rows dropped (``drop_invalid``) and failed requests dropped (BurstGPT).
    prompt, decode : LengthStats
        Descriptives of P and D, tokens.
    corr_prompt_decode : float
        Pearson correlation of P and D (NaN when either is constant).
    span_s : float or None
        Last minus first arrival, s (None without timestamps).
    arrival_rate_per_s : float or None
        (n − 1) / span, requests per second.
    slot_load : SlotLoadEstimate
        θ, its interval, σ.
    window_s : float or None
        Window length, s; ``windows`` holds the non-empty windows in time order.
    quantile_method : str
        How the percentiles were computed.
    """

    source: str
    trace_format: str
    rows: int
    dropped_rows: int
    failed_rows: int
    prompt: LengthStats
    decode: LengthStats
    corr_prompt_decode: float
    span_s: float | None
    arrival_rate_per_s: float | None
    slot_load: SlotLoadEstimate
    window_s: float | None
    windows: tuple[WindowSummary, ...]
    quantile_method: str

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready mapping: the keys ``afdsizer workload --json`` prints (tokens, s)."""
        est = self.slot_load
        return {
            "source": self.source,
            "format": self.trace_format,
            "rows": self.rows,
            "dropped": self.dropped_rows,
            "failed": self.failed_rows,
            "mean_prompt": self.prompt.mean_tokens,
            "mean_decode": self.decode.mean_tokens,
            "prompt_percentiles": {f"p{k}": v for k, v in self.prompt.percentiles_tokens.items()},
            "decode_percentiles": {f"p{k}": v for k, v in self.decode.percentiles_tokens.items()},
            "prompt_range": [self.prompt.min_tokens, self.prompt.max_tokens],
            "decode_range": [self.decode.min_tokens, self.decode.max_tokens],
            "corr_prompt_decode": self.corr_prompt_decode,
            "theta": est.theta_tokens,
            "theta_ci": list(est.theta_ci_tokens),
            "theta_se": est.theta_se_tokens,
            "confidence": est.confidence,
            "ci_method": est.ci_method,
            "slot_load_std": est.slot_load_std_tokens,
            "span_s": self.span_s,
            "arrival_rate_per_s": self.arrival_rate_per_s,
            "window_s": self.window_s,
            "windows": [
                {
                    "start_s": w.start_s,
                    "end_s": w.end_s,
                    "rows": w.rows,
                    "mean_prompt": w.mean_prompt_tokens,
                    "mean_decode": w.mean_decode_tokens,
                    "arrival_rate_per_s": w.arrival_rate_per_s,
                    "theta": w.slot_load.theta_tokens,
                    "theta_ci": list(w.slot_load.theta_ci_tokens),
                    "slot_load_std": w.slot_load.slot_load_std_tokens,
                }
                for w in self.windows
            ],
            "quantile_method": self.quantile_method,
        }


def parse_window(text: str) -> float:
    """Parse a window length such as ``30s``, ``10min``, ``1h``, ``1.5h``, ``500ms`` into seconds.

    A bare number is seconds; ``m`` and ``min`` are minutes.

    Raises
    ------
    InputError
        If the text is not a positive number with a known unit.

    Examples
    --------
    >>> parse_window("10min")
    600.0
    """
    match = _WINDOW_RE.match(text.lower())
    if match is None or match.group(2) not in _WINDOW_UNITS_S:
        raise InputError(
            f"--window must be a positive duration like 30s, 10min or 1h "
            f"(units ms, s, min, h, d), got {text!r}"
        )
    seconds = float(match.group(1)) * _WINDOW_UNITS_S[match.group(2)]
    if not seconds > 0:
        raise InputError(f"--window must be > 0 s, got {text!r}")
    return seconds


def summarize_trace(
    path: str | os.PathLike[str],
    *,
    prompt_col: str | None = None,
    decode_col: str | None = None,
    time_col: str | None = None,
    drop_invalid: bool = False,
    window_s: float | None = None,
    ci: CiMethod = "delta",
    confidence: float = 0.95,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = 0,
) -> TraceSummary:
    """Summarise a trace file by streaming it: descriptives, θ (with CI) and σ, θ per window.

    Parameters
    ----------
    path : path-like
        Trace in any format :func:`load_trace` reads (``.gz`` too).
    prompt_col, decode_col, time_col, drop_invalid
        As for :func:`load_trace`.
    window_s : float, optional
        Window length in seconds for θ per time window (needs timestamps); windows start at the
        first request.
    ci : {"delta", "bootstrap"}, default "delta"
        Interval of θ (overall and per window). The bootstrap loads the (P, D) pairs in memory.
    confidence : float, default 0.95
        Coverage of the intervals.
    n_bootstrap : int, default 1000
        Replicates for ``ci="bootstrap"``.
    seed : int, default 0
        Seed of the bootstrap; window w uses the w-th child of ``SeedSequence(seed)``.

    Returns
    -------
    TraceSummary

    Raises
    ------
    DataFileError, TraceError
        As :func:`load_trace`: a malformed row is named by file, line and column.
    InputError
        ``window_s`` on a trace without timestamps, or a bad option.

    Notes
    -----
    θ, σ² and the delta-method interval come from streamed sums (docs/design.md §3); percentiles are
    exact (module docstring).

    Examples
    --------
    >>> from afdsizer.workload import bundled_trace_path
    >>> s = summarize_trace(bundled_trace_path())
    >>> s.rows, round(s.slot_load.theta_tokens, 1)
    (19366, 1226.5)
    """
    if window_s is not None and not (math.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s must be a finite number of seconds > 0, got {window_s}")
    if ci not in ("delta", "bootstrap"):
        raise InputError(f"ci must be 'delta' or 'bootstrap', got {ci!r}")
    window_s = None if window_s is None else float(window_s)
    path = Path(path)
    with plain_file(path) as plain:
        for fast in (True, False):
            scan = open_scan(
                plain,
                path.name,
                prompt_col=prompt_col,
                decode_col=decode_col,
                time_col=time_col,
                fast=fast,
            )
            if window_s is not None and not scan.has_time:
                raise InputError(
                    f"--window needs arrival times, but {path.name} ({scan.fmt.name} format) "
                    "has none"
                )
            try:
                shifts = _head_shifts(scan)
                totals, grouped = _one_pass(scan, shifts, window_s)
                break
            except FastPathError:
                continue  # a cell the typed reader rejects: the text path names or drops it
        n_invalid = int(totals["n_invalid"])
        if n_invalid and not drop_invalid:
            scan.raise_invalid_row(int(totals["first_invalid"]), n_invalid=n_invalid)
        rows = int(totals["n"] or 0)
        if rows == 0:
            raise TraceError(
                f"{path.name} line 2: no valid requests ({n_invalid} malformed, "
                f"{int(totals['n_failed'])} failed rows), expected P >= 0 and D >= 1 tokens"
            )
        overall = estimate_from_sums(
            sums_from_row(totals, shift_tokens=shifts["theta"]), confidence=confidence
        )
        t_first = totals["t_min"]
        windows: tuple[WindowSummary, ...] = ()
        if window_s is not None and grouped is not None and t_first is not None:
            windows = _window_summaries(grouped, shifts, totals, window_s, confidence)
        if ci == "bootstrap":
            offset_s = shifts["t0"] - float(t_first or 0.0)  # window origin since first request
            overall, windows = _bootstrap(
                scan, overall, windows, (shifts["t0"], offset_s), window_s, n_bootstrap, seed
            )
    span = None if t_first is None else float(totals["t_max"]) - float(t_first)
    return TraceSummary(
        source=str(path),
        trace_format=scan.fmt.name,
        rows=rows,
        dropped_rows=n_invalid,
        failed_rows=int(totals["n_failed"]),
        prompt=_length_stats(totals, "p"),
        decode=_length_stats(totals, "d"),
        corr_prompt_decode=_corr(totals),
        span_s=span,
        arrival_rate_per_s=(rows - 1) / span if span else None,
        slot_load=overall,
        window_s=window_s,
        windows=windows,
        quantile_method=QUANTILE_METHOD,
    )


def _valid(scan: TraceScan) -> pl.LazyFrame:
    return scan.frame.filter(pl.col(STATUS) == STATUS_OK)


def _head_shifts(scan: TraceScan) -> dict[str, float]:
    """From the first rows: rough θ, mean P, mean D (shifts that keep the streamed sums
    accurate) and the earliest arrival ``t0`` (the origin of the time windows)."""
    # head() before the filter, so that only the first rows are read.
    first = scan.frame.head(_HEAD_ROWS).filter(pl.col(STATUS) == STATUS_OK)
    head = collect(first.select(PROMPT, DECODE, TIME_S), scan, streaming=False)
    if head.height == 0:
        return {"theta": 0.0, "p": 0.0, "d": 0.0, "t0": 0.0}
    P = head.get_column(PROMPT).to_numpy()
    D = head.get_column(DECODE).to_numpy()
    theta = float(np.sum(D * (P + (D - 1.0) / 2.0)) / np.sum(D))
    t0 = head.get_column(TIME_S).min()
    return {
        "theta": theta,
        "p": float(P.mean()),
        "d": float(D.mean()),
        "t0": float(t0) if isinstance(t0, int | float) else 0.0,
    }


def _one_pass(
    scan: TraceScan, shifts: dict[str, float], window_s: float | None
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    """One streaming pass over the file: the whole-trace aggregates and, with ``window_s``, the
    θ sums per window (both queries share the scan through ``collect_all``)."""
    queries = [_totals_query(scan, shifts)]
    if window_s is not None:
        queries.append(_window_query(scan, shifts, window_s))
    frames = collect_all(queries, scan, streaming=True)
    totals = frames[0].row(0, named=True)
    totals["p_shift"], totals["d_shift"] = shifts["p"], shifts["d"]
    return totals, (frames[1] if window_s is not None else None)


def _totals_query(scan: TraceScan, shifts: dict[str, float]) -> pl.LazyFrame:
    """Counts, the first invalid row, θ sums, moments, percentiles and the clock's range."""
    ok = pl.col(STATUS) == STATUS_OK
    frame = scan.frame.with_columns(
        pl.when(ok).then(pl.col(PROMPT)).alias(PROMPT),
        pl.when(ok).then(pl.col(DECODE)).alias(DECODE),
        pl.when(ok).then(pl.col(TIME_S)).alias(TIME_S),
    )
    p_dev = pl.col(PROMPT) - shifts["p"]
    d_dev = pl.col(DECODE) - shifts["d"]
    exprs = [
        *slot_load_sum_exprs(PROMPT, DECODE, shift_tokens=shifts["theta"]),
        (pl.col(STATUS) == STATUS_INVALID).sum().alias("n_invalid"),
        (pl.col(STATUS) == STATUS_FAILED).sum().alias("n_failed"),
        pl.col(ROW).filter(pl.col(STATUS) == STATUS_INVALID).min().alias("first_invalid"),
        p_dev.sum().alias("sp"),
        d_dev.sum().alias("sd"),
        (p_dev * p_dev).sum().alias("spp"),
        (d_dev * d_dev).sum().alias("sdd"),
        (p_dev * d_dev).sum().alias("spd"),
        pl.col(TIME_S).min().alias("t_min"),
        pl.col(TIME_S).max().alias("t_max"),
    ]
    for key, col in (("p", PROMPT), ("d", DECODE)):
        exprs += [
            pl.col(col).mean().alias(f"{key}_mean"),
            pl.col(col).min().alias(f"{key}_min"),
            pl.col(col).max().alias(f"{key}_max"),
        ]
        exprs += [
            pl.col(col).quantile(q / 100, interpolation="linear").alias(f"{key}_q{q}")
            for q in PERCENTILES
        ]
    return frame.select(exprs)


def _window_index(origin_s: float, window_s: float) -> pl.Expr:
    return ((pl.col(TIME_S) - origin_s) / window_s).floor().cast(pl.Int64).alias("window")


def _window_query(scan: TraceScan, shifts: dict[str, float], window_s: float) -> pl.LazyFrame:
    """θ sums per window of ``window_s`` counted from the origin ``t0`` (see _head_shifts)."""
    return (
        _valid(scan)
        .group_by(_window_index(shifts["t0"], window_s))
        .agg(
            *slot_load_sum_exprs(PROMPT, DECODE, shift_tokens=shifts["theta"]),
            pl.col(PROMPT).mean().alias("p_mean"),
        )
        .sort("window")
    )


def _window_summaries(
    grouped: pl.DataFrame,
    shifts: dict[str, float],
    totals: dict[str, Any],
    window_s: float,
    confidence: float,
) -> tuple[WindowSummary, ...]:
    """WindowSummary per non-empty window, with times in seconds since the first request.

    The origin t0 is the earliest arrival among the first rows: the first request itself when
    the file is in time order (earlier stragglers get windows before it, at negative times).
    """
    t_first = float(totals["t_min"])
    end_of_trace_s = float(totals["t_max"]) - t_first
    out = []
    for row in grouped.iter_rows(named=True):
        start = shifts["t0"] - t_first + row["window"] * window_s
        covered = min(start + window_s, end_of_trace_s) - max(start, 0.0)
        n = int(row["n"])
        out.append(
            WindowSummary(
                start_s=start,
                end_s=start + window_s,
                rows=n,
                mean_prompt_tokens=float(row["p_mean"]),
                mean_decode_tokens=float(row["sum_d"]) / n,
                arrival_rate_per_s=n / covered if covered > 0 else None,
                slot_load=estimate_from_sums(
                    sums_from_row(row, shift_tokens=shifts["theta"]), confidence=confidence
                ),
            )
        )
    return tuple(out)


def _length_stats(totals: dict[str, Any], key: str) -> LengthStats:
    return LengthStats(
        mean_tokens=float(totals[f"{key}_mean"]),
        min_tokens=int(totals[f"{key}_min"]),
        max_tokens=int(totals[f"{key}_max"]),
        percentiles_tokens={q: float(totals[f"{key}_q{q}"]) for q in PERCENTILES},
    )


def _corr(totals: dict[str, Any]) -> float:
    """Pearson corr(P, D) from shifted sums (the shift cancels; it only tames rounding)."""
    n = float(totals["n"])
    sp, sd = float(totals["sp"]), float(totals["sd"])
    cov = float(totals["spd"]) - sp * sd / n
    var_p = float(totals["spp"]) - sp * sp / n
    var_d = float(totals["sdd"]) - sd * sd / n
    if var_p <= 0 or var_d <= 0:
        return math.nan
    return max(-1.0, min(1.0, cov / math.sqrt(var_p * var_d)))


def _bootstrap(
    scan: TraceScan,
    overall: SlotLoadEstimate,
    windows: tuple[WindowSummary, ...],
    origin: tuple[float, float],
    window_s: float | None,
    n_bootstrap: int,
    seed: int,
) -> tuple[SlotLoadEstimate, tuple[WindowSummary, ...]]:
    """Replace the delta intervals by seeded bootstrap ones (loads the valid pairs in memory)."""
    origin_s, offset_s = origin  # window origin: absolute clock, and since the first request
    cols = [PROMPT, DECODE] + ([_window_index(origin_s, window_s)] if window_s else [])
    df = collect(_valid(scan).select(cols), scan, streaming=True)
    P = df.get_column(PROMPT).to_numpy()
    D = df.get_column(DECODE).to_numpy()
    seeds = np.random.SeedSequence(seed).spawn(len(windows) + 1)

    def boot(mask: np.ndarray[Any, Any] | None, ss: np.random.SeedSequence) -> SlotLoadEstimate:
        sub_seed = int(ss.generate_state(1)[0])
        p, d = (P, D) if mask is None else (P[mask], D[mask])
        return estimate_slot_load(
            p,
            d,
            ci="bootstrap",
            confidence=overall.confidence,
            n_bootstrap=n_bootstrap,
            seed=sub_seed,
        )

    new_overall = boot(None, seeds[0])
    if not windows or window_s is None:
        return new_overall, windows
    index = df.get_column("window").to_numpy()
    new_windows = tuple(
        WindowSummary(
            start_s=w.start_s,
            end_s=w.end_s,
            rows=w.rows,
            mean_prompt_tokens=w.mean_prompt_tokens,
            mean_decode_tokens=w.mean_decode_tokens,
            arrival_rate_per_s=w.arrival_rate_per_s,
            slot_load=boot(index == round((w.start_s - offset_s) / window_s), ss),
        )
        for w, ss in zip(windows, seeds[1:], strict=True)
    )
    return new_overall, new_windows
