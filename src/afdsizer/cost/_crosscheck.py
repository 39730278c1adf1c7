"""Per-part fit records, the roofline cross-check and the operating-range checks (design §10).

Every fitted coefficient is set beside the roofline's for the same deployment. A ratio beyond
:data:`ROOFLINE_RATIO_WARN` either way is a warning: either the kernel is far from the hardware's
peak (then the calibration is right and the roofline optimistic), or the rows measure something
else than the deployment does (a flat floor, a different parallel layout). The warning does not
decide which; it makes sure nobody uses the number without being told.

Each part also records the range it was fitted on; :func:`out_of_range_warnings` says when an
operating point (B·θ KV tokens per worker, r·B FFN tokens) lies outside it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from afdsizer._io import read_text_file
from afdsizer._yaml import safe_load
from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._fit import CostFitter, fit_points
from afdsizer.cost._hardware import HardwareSpec
from afdsizer.cost._model import ModelSpec
from afdsizer.cost._moe_curve import FfnCurve, LinearisationMethod, linearise_ffn
from afdsizer.cost._roofline import (
    LinkKind,
    RooflineEfficiency,
    affine_fit_rel,
    gqa_projections_s,
    lm_head_s,
    roofline_coefficients,
)
from afdsizer.cost._sharding import attention_gpus_per_worker
from afdsizer.cost._silicon import StepMeasurements
from afdsizer.deployment import Deployment
from afdsizer.errors import DataFileError, InputError

__all__ = [
    "ROOFLINE_RATIO_WARN",
    "coefficients_at",
    "fit_entries",
    "load_profile",
    "out_of_range_warnings",
    "roofline_for",
]

ROOFLINE_RATIO_WARN = 4.0
"""A fitted coefficient more than this factor above or below the roofline's is a warning."""
EP_ROWS_RATIO_WARN = 2.0
"""EP rows this many times the scaled 1-GPU rows (or less than 1/this) are a warning."""

_KEYS = {
    "attention": ("alpha_attn_s", "beta_attn_s_per_token"),
    "ffn": ("alpha_ffn_s", "beta_ffn_s_per_token"),
    "comm": ("alpha_comm_s", "beta_comm_s_per_token"),
}
_TABLE_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "fp8": 1, "fp8_block": 1}


def roofline_for(
    model: ModelSpec,
    hardware: HardwareSpec,
    deployment: Deployment,
    fitter: CostFitter,
    *,
    ffn_ingress: bool = False,
    link: LinkKind = "auto",
    moe_routing: str | None = None,
) -> CostCoefficients:
    """The roofline of the deployment a calibration fits, over the same FFN range.

    ``link="auto"`` is the deployment's own fabric (the NICs between 8-GPU boards): the
    cross-check compares the measured, intra-node NCCL rows with the transfer the deployment
    makes, so a bundle that spans nodes is warned about; the comm entry also gives the ratio
    to the scale-up roofline (what the rows measure). Under DP attention the roofline, like
    the fit, describes one worker. ``moe_routing`` is the roofline's (balanced, power_law or
    None for its default, the power law).
    """
    lo, hi = fitter.ffn_tokens_range
    return roofline_coefficients(
        model,
        hardware,
        deployment=deployment,
        link=link,
        ffn_ingress=ffn_ingress,
        ffn_tokens_range=(max(int(lo), 1), max(int(hi), int(lo) + 1)),
        moe_routing=moe_routing,
    )


def _ratio_entry(
    part: str, fitted: dict[str, float], roof: dict[str, float] | None
) -> tuple[dict[str, float] | None, list[str]]:
    if roof is None:
        return None, []
    ratios, warnings = {}, []
    for key, value in fitted.items():
        if key not in roof or not roof[key] > 0:
            continue
        ratio = value / roof[key]
        ratios[key] = ratio
        if not 1 / ROOFLINE_RATIO_WARN <= ratio <= ROOFLINE_RATIO_WARN:
            warnings.append(
                f"{part}: {key} = {value:.4g} is {ratio:.3g}x the roofline's {roof[key]:.4g} "
                f"for the same deployment (beyond {ROOFLINE_RATIO_WARN:g}x either way)"
            )
    return ratios, warnings


def _entry(
    part: str,
    selection: Mapping[str, Any] | None,
    *,
    rows: int,
    fitted_range: dict[str, list[float]],
    median: float | None,
    worst: float | None,
    fitted: dict[str, float],
    roof: dict[str, float] | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ratios, warnings = _ratio_entry(part, fitted, roof)
    sel = dict(selection or {})
    extra = dict(extra or {})
    notes = list(sel.get("notes", [])) + list(extra.pop("notes", []))
    kernel = sel.get("kernel") or {}
    warnings = list(kernel.get("warnings", [])) + warnings
    return {
        "part": part,
        "kernel_source": sel.get("kernel_source"),
        "dtype": sel.get("dtype"),
        "rows": rows,
        "fitted_range": fitted_range,
        "median_rel_error": median,
        "max_rel_error": worst,
        "coefficients": fitted,
        "roofline": roof,
        "ratio_to_roofline": ratios,
        "warnings": warnings,
        "notes": notes,
        "kernel_choice": kernel.get("reason"),
        "kernel_candidates": kernel.get("candidates", []),
        **extra,
    }


def _attn_gemm_roofline_s(
    model: ModelSpec, hw: HardwareSpec, dep: Deployment, dtype: str | None
) -> float:
    """The roofline's fixed time of the attention-side GEMMs in the table dtype ``dtype``.

    Per GQA layer the q/k/v and o projections of one GPU's heads, the LM head (bf16) once; each
    GEMM as the roofline costs it (:func:`gemm_time_s` at m = 0: launch plus weight read, or
    the FP8 block-scaled floor), so the fit and the roofline compare the same kernels. MLA
    projections are inside the MLA module (the attention part), not here.
    """
    eff = RooflineEfficiency()
    G = attention_gpus_per_worker(model, dep)
    table = dtype or "bfloat16"
    wb = _TABLE_DTYPE_BYTES.get(table, 2)
    quant = table if table in ("fp8", "fp8_block") else None
    total = lm_head_s(model, hw, G, eff)
    if not model.is_mla:
        layer = gqa_projections_s(model, hw, G, eff, weight_bytes=wb, quantization=quant)
        total += model.num_layers * layer
    return total


def _attn_gemm_entry(
    model: ModelSpec,
    meas: StepMeasurements,
    fitter: CostFitter,
    hw: HardwareSpec | None,
    dep: Deployment,
) -> dict[str, Any] | None:
    if meas.attention_gemm_time_s is None:
        return None
    batch, t = meas.attention_batch, meas.attention_gemm_time_s
    lo, hi = fitter.attention_batch_range
    Bs = np.unique(batch[(batch >= lo) & (batch <= hi)])
    if Bs.size < 2:
        return None
    t_at = np.array([float(np.median(t[batch == b])) for b in Bs])
    a, b, rel = affine_fit_rel(Bs, t_at)
    sel = meas.selections.get("attn_gemm") or meas.selections.get("lm_head")
    dtype = (sel or {}).get("dtype")
    roof = None if hw is None else {"fixed_s": _attn_gemm_roofline_s(model, hw, dep, dtype)}
    lm = meas.selections.get("lm_head", {})
    return _entry(
        "attn_gemm",
        sel,
        rows=int(Bs.size),
        fitted_range={"batch": [float(Bs.min()), float(Bs.max())]},
        median=float(np.median(rel)),
        worst=float(rel.max()),
        fitted={"fixed_s": a, "per_token_s": b},
        roof=roof,
        extra={
            "lm_head": {"kernel_source": lm.get("kernel_source"), "dtype": lm.get("dtype")},
            "points": fit_points("batch", Bs, t_at, a + b * Bs),
        },
    )


def _curve_entry(
    part: str, curve_fit: dict[str, Any], selection: Mapping[str, Any] | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {
        k: curve_fit[k]
        for k in ("curve", "median_rel_error_in_ffn_range", "rank_share", "ep_rows_over_rank_curve")
        if k in curve_fit
    }
    extra["rows_source"] = (selection or {}).get("rows", "measured")
    entry = _entry(
        part,
        selection,
        rows=curve_fit["rows"],
        fitted_range=curve_fit["fitted_range"],
        median=curve_fit["median_rel_error"],
        worst=curve_fit["max_rel_error"],
        fitted={},
        roof=None,
        extra=extra,
    )
    over = curve_fit.get("ep_rows_over_rank_curve")
    if over is not None and not 1 / EP_ROWS_RATIO_WARN <= over <= EP_ROWS_RATIO_WARN:
        ep = (selection or {}).get("ep_rows", {})
        entry["warnings"].append(
            f"{part}: the measured EP-{ep.get('moe_ep_size')} rows ({ep.get('kernel_source')}) "
            f"take {over:.3g}x the 1-GPU rows scaled to one rank: that kernel works on every "
            "token of the batch, not only the rank's; --moe-rows measured fits them instead"
        )
    return entry


def _ffn_extra(
    rep: dict[str, Any],
    roof: CostCoefficients | None,
    roof_scale_up: CostCoefficients | None,
    fitted: dict[str, Any],
) -> dict[str, Any]:
    """The FFN entry's ratio to the kernels-only roofline, and a note when they differ.

    The kernel rows time the fused MoE / GEMMs alone. When the FFN instance spans nodes the
    roofline of the deployment's fabric also charges the all-gather and reduce-scatter between
    them; the scale-up roofline (EP over one fabric needs none) is then the like-for-like one.
    """
    out: dict[str, Any] = {"operating_tokens": rep.get("ffn_operating_tokens")}
    if roof is None or roof_scale_up is None:
        return out
    keys = _KEYS["ffn"]
    up = roof_scale_up.to_dict()
    out["ratio_to_scale_up_roofline"] = {k: fitted[k] / up[k] for k in keys if up[k] > 0}
    extra = roof.beta_ffn_s_per_token - roof_scale_up.beta_ffn_s_per_token
    if extra > 0.05 * roof.beta_ffn_s_per_token:
        total = roof.beta_ffn_s_per_token
        out["notes"] = [
            f"ffn: the roofline charges {extra * 1e6:.3g} of its {total * 1e6:.3g} µs/token β_F "
            "to the all-gather / reduce-scatter inside the FFN instance (tokens arrive over "
            "NICs), which no kernel row measures and the fit leaves out "
            "(ratio_to_scale_up_roofline compares the kernels alone)"
        ]
    return out


def fit_entries(
    model: ModelSpec,
    meas: StepMeasurements,
    fitter: CostFitter,
    coeffs: CostCoefficients,
    roof: CostCoefficients | None,
    dep: Deployment,
    hw: HardwareSpec | None,
    roof_scale_up: CostCoefficients | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``fits`` list (one entry per part) and every warning, selection warnings first."""
    rep = fitter.fit_report()
    ranges = rep["ranges_fitted"]
    c, r = coeffs.to_dict(), None if roof is None else roof.to_dict()
    sel = meas.selections

    def pick(part: str, d: dict[str, Any] | None) -> dict[str, float] | None:
        return None if d is None else {k: d[k] for k in _KEYS[part]}

    entries = [
        _entry(
            "attention",
            sel.get("attention"),
            rows=rep["n_points"]["attention"],
            fitted_range={
                "kv_tokens": ranges["attention_load_tokens"],
                "batch": ranges["attention_batch"],
                "context_tokens": ranges["attention_context_tokens"],
            },
            median=rep["attention_fit_median_rel_error"],
            worst=rep["attention_fit_max_rel_error"],
            fitted=pick("attention", c) or {},
            roof=pick("attention", r),
        )
    ]
    if (gemm := _attn_gemm_entry(model, meas, fitter, hw, dep)) is not None:
        entries.append(gemm)
    for part, curve_fit in fitter.curve_fits_.items():
        entries.append(_curve_entry(part, curve_fit, sel.get(part)))
    ffn_sel = sel.get("moe") or sel.get("ffn_gemm")
    entries.append(
        _entry(
            "ffn",
            ffn_sel,
            rows=rep["n_points"]["ffn"],
            fitted_range={"ffn_tokens": ranges["ffn_tokens"]},
            median=rep["ffn_fit_median_rel_error"],
            worst=rep["ffn_fit_max_rel_error"],
            fitted=pick("ffn", c) or {},
            roof=pick("ffn", r),
            extra=_ffn_extra(rep, roof, roof_scale_up, c),
        )
    )
    if "comm_batch" in ranges:
        comm = sel.get("comm", {})
        per_transfer = 2 * model.num_layers
        entries.append(
            _entry(
                "comm",
                comm,
                rows=rep["n_points"]["comm"],
                fitted_range={"batch": ranges["comm_batch"]},
                median=rep["comm_fit_median_rel_error"],
                worst=rep["comm_fit_max_rel_error"],
                fitted=pick("comm", c) or {},
                roof=pick("comm", r),
                extra={
                    "gamma_comm_s_per_token": coeffs.gamma_comm_s_per_token,
                    "fan_out": meas.comm_fan_out,
                    "bytes_per_token_each_way_per_layer": 2 * model.hidden_size * meas.comm_fan_out,
                    "alpha_per_transfer_s": coeffs.alpha_comm_s / per_transfer,
                    "beta_per_transfer_s_per_token": coeffs.beta_comm_s_per_token / per_transfer,
                    "num_gpus": comm.get("num_gpus"),
                    "ratio_to_scale_up_roofline": None
                    if roof_scale_up is None
                    else {k: c[k] / roof_scale_up.to_dict()[k] for k in _KEYS["comm"]},
                    "op_name": comm.get("op_name"),
                },
            )
        )
    for entry in entries:
        # Which roofline (deployment, precision, routing) each ratio is taken against.
        entry["roofline_source"] = (
            None if entry["roofline"] is None or roof is None else roof.source
        )
        # The points fitted, measured beside fitted, for the report's calibration figure.
        if entry.get("points") is None:
            entry["points"] = fitter.points_.get(entry["part"])
    warnings = list(dict.fromkeys([*meas.warnings, *(w for e in entries for w in e["warnings"])]))
    return entries, warnings


# ----------------------------------------------------------------------------- profiles
def load_profile(path: str | Path) -> dict[str, Any]:
    """Read a profile.yaml written by ``afdsizer calibrate`` as a mapping.

    Raises
    ------
    DataFileError
        The file cannot be read or is not YAML.
    InputError
        It is not a mapping.
    """
    path = Path(path)
    try:
        # The bounded reader and the alias-refusing loader every other input goes through; a
        # .json profile gets the JSON parser, as load_coefficients gives it.
        text = read_text_file(path)
        data = json.loads(text) if path.suffix == ".json" else safe_load(text)
    except OSError as exc:
        raise DataFileError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"{path} is not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise DataFileError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise InputError(f"profile {path} must hold a mapping, got {type(data).__name__}")
    return data


def _as_profile(profile_or_fit: Any) -> dict[str, Any]:
    if isinstance(profile_or_fit, str | Path):
        return load_profile(profile_or_fit)
    if hasattr(profile_or_fit, "to_dict") and hasattr(profile_or_fit, "fits"):
        out: dict[str, Any] = profile_or_fit.to_dict()
        return out
    if isinstance(profile_or_fit, Mapping):
        return dict(profile_or_fit)
    kind = type(profile_or_fit).__name__
    raise InputError(f"expected a profile path, mapping or CalibrationResult, got {kind}")


def _fit_range(profile: Mapping[str, Any], part: str, key: str) -> tuple[float, float] | None:
    for entry in profile.get("fits") or []:
        if isinstance(entry, Mapping) and entry.get("part") == part:
            bounds = (entry.get("fitted_range") or {}).get(key)
            if bounds is not None and len(bounds) == 2:
                return float(bounds[0]), float(bounds[1])
    return None


def out_of_range_warnings(
    profile_or_fit: Any,
    kv_tokens_per_worker: float | None,
    ffn_tokens: float | None,
    *,
    comm_tokens: float | None = None,
    relinearised: bool = False,
) -> list[str]:
    """Warnings for an operating point outside the ranges a profile was fitted on.

    Parameters
    ----------
    profile_or_fit : path, mapping or CalibrationResult
        A profile.yaml (path or its parsed mapping) or the result of :func:`calibrate`.
    kv_tokens_per_worker : float or None
        B·θ/(w·m), KV tokens one worker attends per microbatch at the operating point (None:
        not checked).
    ffn_tokens : float or None
        r·B/m, FFN tokens per pass at the operating point (None: not checked).
    comm_tokens : float or None
        Tokens of one Attention worker's transfer to the FFN, b/m (None: not checked).
    relinearised : bool, default False
        The caller linearises the profile's FFN curve at ``ffn_tokens`` (as ``size`` does):
        no warning where that curve's rows cover the point.

    Returns
    -------
    list of str
        One line per quantity outside its fitted range (empty when inside, or when the
        profile records no ranges, e.g. a plain coefficient file).

    Examples
    --------
    >>> fits = [{"part": "attention", "fitted_range": {"kv_tokens": [4e3, 8e6]}},
    ...         {"part": "ffn", "fitted_range": {"ffn_tokens": [128, 4096]}}]
    >>> out_of_range_warnings({"fits": fits}, 1e5, 36795)  # doctest: +NORMALIZE_WHITESPACE
    ['FFN tokens per pass r·B/m = 36,795 lie outside the range the FFN line was fitted on
      (128-4,096); the affine t_F is extrapolated 9x beyond its last point']
    """
    profile = _as_profile(profile_or_fit)
    out: list[str] = []
    kv = _fit_range(profile, "attention", "kv_tokens")
    if kv_tokens_per_worker is not None and kv is not None:
        L = float(kv_tokens_per_worker)
        if not kv[0] <= L <= kv[1]:
            out.append(
                f"KV tokens per worker and microbatch B·θ/(w·m) = {L:,.0f} lie outside the "
                f"range the attention fit covers ({kv[0]:,.0f}-{kv[1]:,.0f}): t_A is extrapolated"
            )
    if ffn_tokens is not None:
        out += _ffn_warnings(profile, float(ffn_tokens), relinearised=relinearised)
    return out + _comm_warnings(profile, comm_tokens)


def _outside(tokens: float, low: float, high: float) -> float | None:
    """How far outside [low, high] ``tokens`` lies, as a factor; None inside."""
    if low <= tokens <= high:
        return None
    return tokens / high if tokens > high else low / tokens


def _ffn_warnings(profile: Mapping[str, Any], tokens: float, *, relinearised: bool) -> list[str]:
    what = f"FFN tokens per pass r·B/m = {tokens:,.0f}"
    data = (profile.get("ffn_curve") or {}).get("fitted_tokens")
    curve = None if data is None else (float(data[0]), float(data[1]))
    if relinearised and curve is not None:
        # The caller linearises the curve at the point: only the curve's rows matter.
        factor = _outside(tokens, *curve)
        if factor is None:
            return []
        return [
            f"{what} lie outside the rows the FFN curve was fitted on "
            f"({curve[0]:,.0f}-{curve[1]:,.0f}): t_F is the curve extrapolated {factor:.2g}x"
        ]
    line = _fit_range(profile, "ffn", "ffn_tokens")
    factor = None if line is None else _outside(tokens, *line)
    if line is None or factor is None:
        return []
    msg = (
        f"{what} lie outside the range the FFN line was fitted on ({line[0]:,.0f}-{line[1]:,.0f}); "
    )
    if curve is not None and _outside(tokens, *curve) is None:
        msg += (
            f"the FFN curve (rows {curve[0]:,.0f}-{curve[1]:,.0f}) covers it: linearise there "
            "(linearise_ffn)"
        )
    else:
        msg += f"the affine t_F is extrapolated {factor:.2g}x beyond its last point"
    return [msg]


def _comm_warnings(profile: Mapping[str, Any], comm_tokens: float | None) -> list[str]:
    bounds = _fit_range(profile, "comm", "batch")
    if comm_tokens is None or bounds is None or bounds[0] <= comm_tokens <= bounds[1]:
        return []
    return [
        f"tokens per worker and transfer b/m = {comm_tokens:,.0f} lie outside the range the "
        f"communication fit covers ({bounds[0]:,.0f}-{bounds[1]:,.0f}): t_C is extrapolated"
    ]


def coefficients_at(
    profile_or_fit: Any,
    ffn_tokens: float,
    *,
    method: LinearisationMethod = "tangent",
) -> CostCoefficients:
    """The profile's coefficients with α_F, β_F the FFN curve's linearisation at N = r·B.

    Every other field (α/β of attention and communication, γ_C, KV capacity, layers, source)
    is the profile's, so ``size --profile`` can re-linearise at each operating point.

    Parameters
    ----------
    profile_or_fit : path, mapping or CalibrationResult
        A profile with an ``ffn_curve`` (profiles from ``calibrate --silicon``).
    ffn_tokens : float
        N = r·B at the operating point, tokens.
    method : {"tangent", "secant"}
        As in :func:`linearise_ffn`.

    Raises
    ------
    InputError
        The profile has no coefficients or no FFN curve.
    """
    profile = _as_profile(profile_or_fit)
    data = profile.get("coefficients", profile)
    if not isinstance(data, Mapping):
        raise InputError("the profile has no coefficients mapping")
    base = CostCoefficients.from_mapping(dict(data), source=str(data.get("source", "")))
    curve_data = profile.get("ffn_curve")
    if not isinstance(curve_data, Mapping):
        raise InputError("the profile has no ffn_curve (calibrate it from --silicon tables)")
    curve = FfnCurve.from_dict(curve_data)
    alpha, beta = linearise_ffn(curve, ffn_tokens, method=method)
    return dataclasses.replace(base, alpha_ffn_s=alpha, beta_ffn_s_per_token=beta)
