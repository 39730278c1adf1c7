"""The plan's Pareto figure: tokens/s per GPU against TPOT p99, the chosen layout marked."""

from __future__ import annotations

from matplotlib.figure import Figure

from afdsizer.plan._search import Plan

__all__ = ["pareto_figure"]

_MS_PER_S = 1e3
_FIGSIZE_IN = (7.0, 4.2)


def pareto_figure(plan: Plan, *, tpot_p99_target_s: float | None = None) -> Figure:
    """Screened Pareto front, the ranked candidates, and the chosen one (a star).

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (no global state, no GUI backend).
    """
    figure = Figure(figsize=_FIGSIZE_IN, layout="constrained")
    ax = figure.add_subplot()
    if plan.pareto:
        xs = [p[0] * _MS_PER_S for p in plan.pareto]
        ys = [p[1] for p in plan.pareto]
        ax.step(xs, ys, where="post", color="0.6", label="Pareto front of bundle capacity (screen)")
    cands = plan.candidates
    ax.scatter(
        [c.tpot_p99_s * _MS_PER_S for c in cands],
        [c.throughput_per_gpu for c in cands],
        s=14,
        color="tab:blue",
        label="best (B, r) of each layout (for the rate, if given)",
    )
    best = cands[0]
    ax.scatter(
        [best.tpot_p99_s * _MS_PER_S],
        [best.throughput_per_gpu],
        marker="*",
        s=220,
        color="tab:red",
        zorder=3,
        label=f"chosen: g_A={best.attn_gpus} {best.attn_parallel}, g_F={best.ffn_gpus} "
        f"{best.ffn_parallel}, m={best.microbatches}, B={best.batch}, r={best.ratio}",
    )
    if tpot_p99_target_s is not None:
        ax.axvline(tpot_p99_target_s * _MS_PER_S, color="tab:red", ls=":", label="p99 target")
    ax.set_xlabel("TPOT p99 (ms)")
    ax.set_ylabel("tokens/s per GPU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return figure
