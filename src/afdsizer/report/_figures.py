"""The report's figures: each one an inline SVG plus the numbers it was drawn from.

Every figure function takes the frozen report values and returns a :class:`FigureBlock`; the
``data`` mapping is embedded next to the SVG as JSON, so a reader (or a test) can check the plot
against the numbers without parsing the drawing. Times are shown in ms, loads in tokens.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from afdsizer.report._data import (
    REGIMES,
    CalibrationPart,
    CalibrationSummary,
    RecommendationSummary,
    ReportData,
    WorkloadSummary,
)
from afdsizer.report._svg import figure_to_inline_svg

__all__ = ["FigureBlock", "build_figures"]

HISTOGRAM_BINS = 40
"""Log-spaced bins per length histogram."""
FIGSIZE_IN = (7.2, 3.6)
"""Width, height of one figure, inches."""
MS_PER_S = 1e3
REGIME_COLOURS = ("#4c72b0", "#dd8452", "#55a868")
"""Attention, communication, FFN (order of :data:`REGIMES`)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FigureBlock:
    """One rendered figure.

    Parameters
    ----------
    figure_id : str
        Short id, unique in the page (``throughput``, ``regime-map``, ...).
    title : str
        Heading shown above the figure.
    caption : str
        One or two sentences under the figure.
    svg : str
        Inline ``<svg>`` element.
    data : Mapping
        JSON-ready numbers the figure shows.
    """

    figure_id: str
    title: str
    caption: str
    svg: str
    data: Mapping[str, Any]


def _new_figure(ncols: int = 1) -> tuple[Figure, list[Axes]]:
    # Figure() directly, not pyplot: no global figure registry, no GUI backend.
    figure = Figure(figsize=FIGSIZE_IN, layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, list(axes)


def _log_bins(values: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.array([low - 0.5, low + 0.5])
    return np.geomspace(max(low, 1.0), high, HISTOGRAM_BINS + 1)


def _workload_figure(workload: WorkloadSummary) -> FigureBlock:
    figure, (ax_p, ax_d) = _new_figure(2)
    theta = workload.theta_tokens
    low, high = workload.theta_ci_tokens
    data: dict[str, Any] = {
        "n_requests": workload.n_requests,
        "theta_tokens": theta,
        "theta_ci_tokens": [low, high],
        "slot_load_std_tokens": workload.slot_load_std_tokens,
        "confidence": workload.confidence,
    }
    for ax, name, values in (
        (ax_p, "prompt", workload.prompt_tokens),
        (ax_d, "decode", workload.decode_tokens),
    ):
        edges = _log_bins(values)
        counts, _ = np.histogram(values, bins=edges)
        # A log axis cannot show 0-token prompts; they are counted here instead of drawn.
        below = int((values < edges[0]).sum())
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_xscale("log")
        ax.set_xlabel(f"{name} length, tokens ({'P' if name == 'prompt' else 'D'})")
        ax.set_ylabel("requests")
        data[name] = {
            "edges": edges,
            "counts": counts,
            "below_first_edge": below,
            "mean_tokens": float(values.mean()),
        }
    ax_p.axvspan(low, high, color="C3", alpha=0.25, lw=0)
    ax_p.axvline(theta, color="C3", lw=1.5, label=f"θ = {theta:,.1f}")
    ax_p.legend(loc="upper left", fontsize=8)
    pct = round(100 * workload.confidence)
    return FigureBlock(
        figure_id="workload",
        title="Workload: prompt and decode lengths",
        caption=(
            f"{workload.n_requests:,} requests. The red line is θ, the mean slot load "
            f"({theta:,.1f} tokens, {pct}% CI {low:,.1f}–{high:,.1f}); σ = "
            f"{workload.slot_load_std_tokens:,.1f} tokens."
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-workload"),
        data=data,
    )


def _mark_recommendation(ax: Axes, data: ReportData) -> None:
    rec = data.recommendation
    ax.axvline(rec.r_int, color="0.3", ls=":", lw=1, label=f"r = {rec.r_int}")


def _throughput_figure(data: ReportData) -> FigureBlock:
    curves, sim, rec = data.curves, data.sim, data.recommendation
    figure, (ax,) = _new_figure()
    ax.plot(curves.ratios, curves.throughput_mean_field, "--", label="theory, mean field")
    ax.plot(curves.ratios, curves.throughput_barrier, "-", label="theory, barrier-aware")
    payload: dict[str, Any] = {
        "ratios": curves.ratios,
        "throughput_mean_field": curves.throughput_mean_field,
        "throughput_barrier": curves.throughput_barrier,
        "r_int": rec.r_int,
        "r_star": rec.r_star,
        "r_star_mean_field": rec.r_star_mean_field,
        "throughput_per_instance": rec.throughput_per_instance,
    }
    if sim is not None:
        ax.errorbar(
            sim.ratios,
            sim.throughput_per_instance,
            yerr=1.96 * sim.throughput_stderr,
            fmt="o",
            ms=4,
            capsize=3,
            color="k",
            label="simulated (95% CI)",
        )
        payload["sim"] = {
            "ratios": sim.ratios,
            "throughput_per_instance": sim.throughput_per_instance,
            "throughput_stderr": sim.throughput_stderr,
        }
    _mark_recommendation(ax, data)
    ax.set_xlabel("r, Attention instances per FFN instance")
    ax.set_ylabel("Λ(r), tokens/s per instance")
    ax.legend(fontsize=8)
    return FigureBlock(
        figure_id="throughput",
        title="Throughput per instance Λ(r)",
        caption=(
            f"Λ(r) = r·B/((r+1)·E[τ]) at B = {rec.batch}. The barrier-aware curve waits for the "
            "slowest of r Attention workers"
            + (
                "."
                if sim is None
                else f"; simulated points ({sim.steps:,} steps each) share seed {sim.seed} "
                "across r, error bars are 95% intervals."
            )
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-throughput"),
        data=payload,
    )


def _step_time_figure(data: ReportData) -> FigureBlock:
    curves, sim = data.curves, data.sim
    figure, (ax,) = _new_figure()
    r = curves.ratios
    ax.plot(r, curves.attention_time_s * MS_PER_S, "--", color="C0", label="t_A, mean field")
    ax.plot(r, curves.attention_time_barrier_s * MS_PER_S, color="C0", label="E[max t_A], barrier")
    ax.plot(r, curves.comm_time_s * MS_PER_S, color="C1", label="t_C")
    ax.plot(r, curves.ffn_time_s * MS_PER_S, color="C2", label="t_F(r)")
    ax.plot(r, curves.step_time_s * MS_PER_S, color="k", lw=2, alpha=0.5, label="E[τ]")
    payload: dict[str, Any] = {
        "ratios": r,
        "attention_time_s": curves.attention_time_s,
        "attention_time_barrier_s": curves.attention_time_barrier_s,
        "comm_time_s": curves.comm_time_s,
        "ffn_time_s": curves.ffn_time_s,
        "step_time_s": curves.step_time_s,
    }
    if sim is not None:
        ax.plot(sim.ratios, sim.step_time_mean_s * MS_PER_S, "ko", ms=4, label="simulated τ")
        payload["sim"] = {"ratios": sim.ratios, "step_time_mean_s": sim.step_time_mean_s}
    _mark_recommendation(ax, data)
    ax.set_xlabel("r, Attention instances per FFN instance")
    ax.set_ylabel("time per decode step, ms")
    ax.legend(fontsize=8, ncols=2)
    return FigureBlock(
        figure_id="step-time",
        title="Step time: Attention, communication, FFN",
        caption=(
            "Per decode step through all layers. With overlap, the step takes the largest part; "
            "the FFN line rises with r and crosses Attention at r_A."
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-step-time"),
        data=payload,
    )


def _idle_figure(data: ReportData) -> FigureBlock:
    curves, sim = data.curves, data.sim
    figure, (ax,) = _new_figure()
    ax.plot(curves.ratios, curves.attention_idle, color="C0", label="Attention idle (theory)")
    ax.plot(curves.ratios, curves.ffn_idle, color="C2", label="FFN idle (theory)")
    payload: dict[str, Any] = {
        "ratios": curves.ratios,
        "attention_idle": curves.attention_idle,
        "ffn_idle": curves.ffn_idle,
    }
    if sim is not None:
        ax.plot(sim.ratios, sim.attention_idle, "o", color="C0", ms=4, label="Attention (sim)")
        ax.plot(sim.ratios, sim.ffn_idle, "s", color="C2", ms=4, label="FFN (sim)")
        ax.plot(sim.ratios, sim.barrier_idle, "^", color="C3", ms=4, label="barrier (sim)")
        payload["sim"] = {
            "ratios": sim.ratios,
            "attention_idle": sim.attention_idle,
            "ffn_idle": sim.ffn_idle,
            "barrier_idle": sim.barrier_idle,
        }
    _mark_recommendation(ax, data)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("r, Attention instances per FFN instance")
    ax.set_ylabel("idle fraction of the step")
    ax.legend(fontsize=8, ncols=2)
    return FigureBlock(
        figure_id="idle",
        title="Idle time against r",
        caption=(
            "Attention idle 1 − E[t_A,w]/E[τ] and FFN idle 1 − t_F/E[τ]. The knee where FFN idle "
            "reaches its floor is where Attention and FFN balance."
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-idle"),
        data=payload,
    )


def _grid_cell(
    thetas: npt.NDArray[np.float64], batches: npt.NDArray[np.int64], rec: RecommendationSummary
) -> tuple[int, int] | None:
    """(column, row) of the grid cell holding the recommendation's own θ and B, if any."""
    cols = np.flatnonzero(np.isclose(thetas, rec.theta, rtol=1e-9))
    rows = np.flatnonzero(batches == rec.batch)
    return (int(cols[0]), int(rows[0])) if cols.size and rows.size else None


def _regime_figure(data: ReportData) -> FigureBlock | None:
    grid = data.regime_map
    if grid is None:
        return None
    figure, (ax,) = _new_figure()
    n_theta, n_batch = grid.theta_tokens.size, grid.batches.size
    # pcolormesh, not imshow: imshow would embed a raster PNG; cells stay vector this way.
    ax.pcolormesh(
        np.arange(n_theta + 1) - 0.5,
        np.arange(n_batch + 1) - 0.5,
        grid.regime_codes,
        cmap=ListedColormap(REGIME_COLOURS),
        vmin=-0.5,
        vmax=len(REGIMES) - 0.5,
        edgecolors="white",
        linewidth=0.5,
    )
    for i in range(n_batch):
        for j in range(n_theta):
            ax.text(j, i, f"{grid.r_int[i, j]}", ha="center", va="center", fontsize=7)
    here = _grid_cell(grid.theta_tokens, grid.batches, data.recommendation)
    if here is not None:
        ax.plot(*here, "o", ms=14, mfc="none", mec="k", mew=1.5)
    ax.set_xticks(range(n_theta), [f"{t:,.0f}" for t in grid.theta_tokens], rotation=45, fontsize=7)
    ax.set_yticks(range(n_batch), [str(b) for b in grid.batches], fontsize=7)
    ax.set_xlabel("θ, mean slot load, tokens")
    ax.set_ylabel("B, slots per Attention instance")
    for code, (name, colour) in enumerate(zip(REGIMES, REGIME_COLOURS, strict=True)):
        present = bool((grid.regime_codes == code).any())
        ax.bar(0, 0, color=colour, label=f"{name}-bound" + ("" if present else " (none)"))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    names = np.asarray(REGIMES)[grid.regime_codes]
    return FigureBlock(
        figure_id="regime-map",
        title="Regime map: r over θ × B",
        caption=(
            "Each cell is the barrier-aware integer r (number) and the mean-field regime (colour), "
            "with σ/θ held at the workload's value. The ringed cell is this report's (θ, B)."
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-regime-map"),
        data={
            "theta_tokens": grid.theta_tokens,
            "batches": grid.batches,
            "r_int": grid.r_int,
            "r_star_mean_field": grid.r_star_mean_field,
            "regime": names,
        },
    )


def _windows_figure(data: ReportData) -> FigureBlock | None:
    workload = data.workload
    if workload is None or workload.windows is None:
        return None
    win = workload.windows
    figure, (ax,) = _new_figure()
    mid_min = (win.start_s + win.end_s) / 2 / 60
    low, high = workload.theta_ci_tokens
    ax.axhspan(low, high, color="C3", alpha=0.2, lw=0)
    ax.axhline(workload.theta_tokens, color="C3", lw=1, label="θ, whole trace")
    yerr = np.vstack([win.theta_tokens - win.ci_low_tokens, win.ci_high_tokens - win.theta_tokens])
    ax.errorbar(
        mid_min,
        win.theta_tokens,
        yerr=yerr,
        fmt="o",
        ms=4,
        capsize=3,
        color="k",
        label="θ per window",
    )
    ax.set_xlabel("time since the first request, min")
    ax.set_ylabel("θ, tokens")
    ax.legend(fontsize=8)
    return FigureBlock(
        figure_id="theta-windows",
        title="θ over time",
        caption=(
            f"θ on {win.start_s.size} consecutive windows of the trace's arrival times, with "
            "confidence intervals; a drift here means one θ does not describe the whole trace."
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-theta-windows"),
        data={
            "start_s": win.start_s,
            "end_s": win.end_s,
            "theta_tokens": win.theta_tokens,
            "ci_low_tokens": win.ci_low_tokens,
            "ci_high_tokens": win.ci_high_tokens,
            "n_requests": win.n_requests,
        },
    )


CALIBRATION_COLUMNS = 3
"""Panels per row of the calibration figure."""
CALIBRATION_PANEL_IN = (2.6, 2.3)
"""Width, height of one calibration panel, inches."""
_X_LABELS = {
    "kv_tokens": "KV tokens per worker",
    "batch": "tokens (batch)",
    "ffn_tokens": "FFN tokens N",
}


def _affine_line(part: CalibrationPart, low: float, high: float) -> tuple[Any, Any]:
    """The fitted line a + b·x of an affine part, from its own fitted points, over [low, high]."""
    x0, x1 = float(part.x[0]), float(part.x[-1])
    f0, f1 = float(part.fitted_s[0]), float(part.fitted_s[-1])
    slope = (f1 - f0) / (x1 - x0) if x1 > x0 else 0.0
    xs = np.geomspace(low, high, 48)
    ys = f0 + slope * (xs - x0)
    keep = ys > 0  # a negative intercept has no place on log axes
    return xs[keep], ys[keep]


def _calibration_panel(ax: Axes, part: CalibrationPart, summary: CalibrationSummary) -> None:
    op = part.operating_x
    low = min(float(part.x[0]), op if op is not None else math.inf) / 1.3
    high = max(float(part.x[-1]), op if op is not None else 0.0) * 1.3
    ax.axvspan(*part.fitted_range, color="#eef3f8", zorder=0, label="fitted range")
    ax.plot(part.x, part.measured_s * MS_PER_S, "o", ms=3, color="k", label="measured")
    if part.per == "call":
        ax.plot(part.x, part.fitted_s * MS_PER_S, "-", color=REGIME_COLOURS[0], label="fit")
    else:
        xs, ys = _affine_line(part, low, high)
        ax.plot(xs, ys * MS_PER_S, "-", color=REGIME_COLOURS[0], label="fit")
    if part.part == "ffn" and summary.ffn_curve_x is not None and summary.ffn_curve_s is not None:
        ax.plot(summary.ffn_curve_x, summary.ffn_curve_s * MS_PER_S, "-", color=REGIME_COLOURS[2],
                label="FFN curve")  # fmt: skip
    if op is not None:
        colour = REGIME_COLOURS[2] if part.inside_range else "#c62828"
        ax.axvline(op, color=colour, ls="--", lw=1, label="operating point")
        if part.part == "ffn" and summary.ffn_line_used is not None:
            alpha, beta = summary.ffn_line_used
            ax.plot([op], [(alpha + beta * op) * MS_PER_S], "D", ms=5, color=colour,
                    label="t_F used")  # fmt: skip
    if part.part == "ffn":
        ax.legend(fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Profile text is the user's: "$" would start matplotlib mathtext. Kernels: the table.
    ax.set_title(f"{part.part} ({part.dtype or '?'})".replace("$", r"\$"), fontsize=8)
    ax.set_xlabel(_X_LABELS.get(part.x_name, part.x_name).replace("$", r"\$"), fontsize=7)
    ax.set_ylabel(f"ms per {part.per}", fontsize=7)
    ax.tick_params(labelsize=6)


def _calibration_figure(data: ReportData) -> FigureBlock | None:
    summary = data.calibration
    if summary is None or not summary.parts:
        return None
    n = len(summary.parts)
    ncols = min(n, CALIBRATION_COLUMNS)
    nrows = -(-n // ncols)
    width, height = CALIBRATION_PANEL_IN
    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, part in zip(axes, summary.parts, strict=False):
        _calibration_panel(ax, part, summary)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6)
    outside = [p.part for p in summary.parts if p.inside_range is False]
    return FigureBlock(
        figure_id="calibration",
        title="Calibration: measured against fitted, per part",
        caption=(
            f"Points the profile was fitted on ({summary.source}) and its fit; the shaded band is "
            "the range measured, the dashed line what the recommended (B, r) puts through each "
            "part in one pass (per worker and microbatch)."
            + (
                f" Outside the measured range: {', '.join(outside)} (extrapolated)."
                if outside
                else " Every part operates inside its measured range."
            )
        ),
        svg=figure_to_inline_svg(figure, prefix="fig-calibration"),
        data={
            "source": summary.source,
            "parts": [
                {
                    "part": p.part,
                    "kernel_source": p.kernel_source,
                    "dtype": p.dtype,
                    "x_name": p.x_name,
                    "per": p.per,
                    "x": p.x,
                    "measured_s": p.measured_s,
                    "fitted_s": p.fitted_s,
                    "fitted_range": list(p.fitted_range),
                    "operating_x": p.operating_x,
                    "inside_range": p.inside_range,
                }
                for p in summary.parts
            ],
            "ffn_curve": None
            if summary.ffn_curve_x is None
            else {"x": summary.ffn_curve_x, "time_s": summary.ffn_curve_s},
            "ffn_line_used": None if summary.ffn_line_used is None else list(summary.ffn_line_used),
        },
    )


def build_figures(data: ReportData) -> list[FigureBlock]:
    """Render every figure ``data`` has values for, in page order."""
    blocks: list[FigureBlock | None] = [
        _workload_figure(data.workload) if data.workload is not None else None,
        _throughput_figure(data),
        _step_time_figure(data),
        _idle_figure(data),
        _regime_figure(data),
        _windows_figure(data),
        _calibration_figure(data),
    ]
    return [b for b in blocks if b is not None]
