"""Render :class:`ReportData` into one self-contained HTML page and write it atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from afdsizer._io import atomic_write_text
from afdsizer._json import jsonable
from afdsizer.report._data import ReportData
from afdsizer.report._figures import build_figures

__all__ = ["render_report", "report_payload", "write_report"]

MS_PER_S = 1e3
TEMPLATE_NAME = "report.html.j2"


def _script_json(value: Any) -> Markup:
    # Inside <script> the HTML parser ends at "</script"; escaping every "<" as \u003c keeps the
    # JSON valid and the element unbreakable.
    text = json.dumps(jsonable(value), allow_nan=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c"))


def report_payload(data: ReportData) -> dict[str, Any]:
    """The report's headline numbers as JSON-ready values (embedded as ``#report-data``).

    Keys: ``recommendation`` (the ``size --json`` fields shown on top), ``coefficients``,
    ``workload`` (θ, its CI, σ, request count and source; None without a trace), ``sim``
    (steps and seed; None without a simulation), ``notes``.
    """
    workload = data.workload
    return {
        "title": data.title,
        "recommendation": jsonable(data.recommendation),
        "coefficients": jsonable(data.coefficients.to_dict()),
        "workload": None
        if workload is None
        else {
            "source": workload.source,
            "n_requests": workload.n_requests,
            "theta_tokens": workload.theta_tokens,
            "theta_ci_tokens": list(workload.theta_ci_tokens),
            "slot_load_std_tokens": workload.slot_load_std_tokens,
            "confidence": workload.confidence,
        },
        "sim": None if data.sim is None else {"steps": data.sim.steps, "seed": data.sim.seed},
        "notes": list(data.notes),
        "warnings": list(data.warnings),
        "calibration": None
        if data.calibration is None
        else {
            "source": data.calibration.source,
            "parts": [part.part for part in data.calibration.parts],
            "warnings": list(data.calibration.warnings),
        },
    }


_CARDS: tuple[tuple[str, str, str, bool], ...] = (
    # (field of RecommendationSummary, label, format of the shown text, headline card)
    ("r_int", "deploy r (Attention : FFN)", "{:d} : 1", True),
    ("batch", "B, slots per Attention instance", "{:d}", True),
    ("throughput_per_gpu", "tokens/s per GPU", "{:,.1f}", True),
    ("gpus_per_bundle", "GPUs per bundle (r·g_A + g_F)", "{:d}", True),
    ("regime", "regime", "{}-bound", True),
    ("attn_gpus", "g_A, GPUs per Attention instance", "{:d}", False),
    ("attn_parallel", "Attention parallelism", "upper:{}", False),
    ("ffn_gpus", "g_F, GPUs per FFN instance", "{:d}", False),
    ("ffn_parallel", "FFN parallelism", "upper:{}", False),
    ("microbatches", "microbatches m per worker", "{:d}", False),
    ("pipeline", "step-time model", "{}", False),
    ("kv_dtype", "KV-cache dtype", "{}", False),
    ("objective", "maximised", "{}", False),
    ("barrier_model", "barrier law", "{}", False),
    ("r_star", "r* (barrier-aware)", "{:.2f}", False),
    ("r_star_mean_field", "r* (mean field)", "{:.2f}", False),
    ("throughput_per_instance", "Λ, tokens/s per instance", "{:,.1f}", False),
    ("step_time_s", "step time E[τ], ms", "ms:{:.2f}", False),
    ("tpot_p99_s", "step time p99, ms", "ms:{:.2f}", False),
    ("attention_idle", "Attention idle", "pct:{:.1f}%", False),
    ("ffn_idle", "FFN idle", "pct:{:.1f}%", False),
    ("barrier_overhead", "barrier idle (faster workers)", "pct:{:.1f}%", False),
    ("barrier_throughput_loss", "throughput lost to the barrier", "pct:{:.1f}%", False),
    ("rounding_loss", "throughput lost to integer r", "pct:{:.2f}%", False),
    ("theta", "θ, mean slot load, tokens", "{:,.1f}", False),
    ("batch_limit", "B set by", "{}", False),
)
"""The recommendation cards, one per :class:`RecommendationSummary` field; a ``ms:`` or ``pct:``
format scales the value before formatting, ``upper:`` upper-cases it."""


def _cards(data: ReportData) -> list[dict[str, Any]]:
    cards = []
    for key, label, fmt, main in _CARDS:
        raw = getattr(data.recommendation, key)
        shown = raw
        if fmt.startswith("ms:"):
            fmt, shown = fmt[3:], raw * MS_PER_S
        elif fmt.startswith("pct:"):
            fmt, shown = fmt[4:], raw * 100
        elif fmt.startswith("upper:"):
            fmt, shown = fmt[6:], str(raw).upper()
        cards.append(
            {"key": key, "label": label, "raw": raw, "text": fmt.format(shown), "main": main}
        )
    return cards


def _coefficient_rows(data: ReportData) -> list[tuple[str, str]]:
    c = data.coefficients
    rows = [
        ("α_A, Attention fixed (ms)", f"{c.alpha_attn_s * MS_PER_S:.4g}"),
        ("β_A, Attention per KV token (ms/token)", f"{c.beta_attn_s_per_token * MS_PER_S:.4g}"),
        ("α_C, communication fixed (ms)", f"{c.alpha_comm_s * MS_PER_S:.4g}"),
        ("β_C, communication per token (ms/token)", f"{c.beta_comm_s_per_token * MS_PER_S:.4g}"),
        ("α_F, FFN fixed (ms)", f"{c.alpha_ffn_s * MS_PER_S:.4g}"),
        ("β_F, FFN per token (ms/token)", f"{c.beta_ffn_s_per_token * MS_PER_S:.4g}"),
        ("γ_C, FFN ingress per token (ms/token)", f"{c.gamma_comm_s_per_token * MS_PER_S:.4g}"),
        (
            "KV capacity per Attention instance (tokens)",
            "unlimited" if c.kv_capacity_tokens is None else f"{c.kv_capacity_tokens:,.0f}",
        ),
        ("source", c.source or "—"),
    ]
    return rows


def _range_text(low: float, high: float) -> str:
    return f"{low:,.0f}–{high:,.0f}"


def _calibration_rows(data: ReportData) -> list[dict[str, Any]]:
    """One table row per fitted part: kernel, rows, range, operating point, errors, roofline."""
    if data.calibration is None:
        return []
    rows = []
    for p in data.calibration.parts:
        op = "—" if p.operating_x is None else f"{p.operating_x:,.0f}"
        errors = (
            "—"
            if p.median_rel_error is None or p.max_rel_error is None
            else f"{p.median_rel_error:.1%} / {p.max_rel_error:.1%}"
        )
        roof = ", ".join(f"{k} {v:.2g}×" for k, v in p.ratio_to_roofline.items()) or "—"
        rows.append(
            {
                "part": p.part,
                "kernel": f"{p.kernel_source or '?'} ({p.dtype or '?'})",
                "points": int(p.x.size),
                "range": f"{_range_text(*p.fitted_range)} {p.x_name}"
                + ("" if p.curve_range is None else f" (curve {_range_text(*p.curve_range)})"),
                "operating": op,
                "inside": p.inside_range,
                "errors": errors,
                "roofline": roof,
            }
        )
    return rows


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("afdsizer.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_report(data: ReportData) -> str:
    """Render ``data`` as one self-contained HTML page.

    Parameters
    ----------
    data : ReportData
        The values to show.

    Returns
    -------
    str
        HTML text: inline CSS, inline SVG figures, the numbers of every figure as
        ``<script type="application/json">`` (data only, nothing executes), no external resource.
    """
    from afdsizer import __version__

    figures = [
        {
            "figure_id": block.figure_id,
            "title": block.title,
            "caption": block.caption,
            # The SVG is our own matplotlib output with ids already made page-unique.
            "svg": Markup(block.svg),
            "json": _script_json(block.data),
        }
        for block in build_figures(data)
    ]
    rec = data.recommendation
    # The page header names the trace file only; report-data keeps the full source.
    source = (
        Path(data.workload.source).name if data.workload is not None else "θ and σ given directly"
    )
    subtitle = (
        f"{rec.r_int} Attention instances per FFN instance at B = {rec.batch} "
        f"({rec.gpus_per_bundle} GPUs, {rec.throughput_per_gpu:,.0f} tokens/s per GPU), "
        f"{rec.regime}-bound · workload: {source} · cost: {data.coefficients.source or 'given'}"
    )
    template = _environment().get_template(TEMPLATE_NAME)
    return template.render(
        title=data.title,
        subtitle=subtitle,
        version=__version__,
        cards=_cards(data),
        notes=list(data.notes),
        warnings=list(data.warnings),
        calibration=data.calibration,
        calibration_rows=_calibration_rows(data),
        report_json=_script_json(report_payload(data)),
        figures=figures,
        coefficient_rows=_coefficient_rows(data),
    )


def write_report(path: str | os.PathLike[str], data: ReportData) -> Path:
    """Render ``data`` and write it to ``path`` atomically; return the path written.

    Parameters
    ----------
    path : str or PathLike
        Output HTML file; its folder is created if missing.
    data : ReportData
        The values to show.

    Returns
    -------
    pathlib.Path
        ``path`` as a Path.
    """
    target = Path(path)
    atomic_write_text(target, render_report(data))
    return target
