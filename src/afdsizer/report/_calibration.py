"""The report's calibration section: a profile's fitted parts beside where the bundle runs.

``afdsizer calibrate`` records, per part, the points it fitted (measured and fitted time) and the
range they cover; the recommendation says what each part processes in one pass
(:meth:`Recommendation.work_per_pass`). Put together, a reader sees whether the operating point
lies inside what was measured or on an extrapolated line (docs/design.md §10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients, FfnCurve
from afdsizer.errors import InputError
from afdsizer.report._data import CalibrationPart, CalibrationSummary
from afdsizer.theory import Recommendation

__all__ = ["calibration_summary"]

OPERATING_VARIABLE = {
    "attention": "kv_tokens",
    "attn_gemm": "batch_per_worker",
    "moe": "ffn_tokens",
    "ffn_gemm": "ffn_tokens",
    "ffn": "ffn_tokens",
    "comm": "batch_per_worker",
}
"""Which quantity of :meth:`Recommendation.work_per_pass` each part's x is."""
CURVE_POINTS = 64
"""Points on the drawn FFN curve."""
CURVE_MARGIN = 1.5
"""The FFN curve is drawn this factor beyond the points and the operating point, each way."""


def _part(
    entry: Mapping[str, Any], work: Mapping[str, float], curve: FfnCurve | None
) -> CalibrationPart | None:
    points = entry.get("points")
    if points is None:
        return None  # a profile from before points were recorded, or a part without rows
    part = str(entry.get("part"))
    try:
        if len(points["x"]) < 2:
            return None
        return _checked_part(entry, part, points, work, curve)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a hand-edited profile
        raise InputError(
            f"the profile's fits entry {part!r} is unreadable (points x, measured_s and "
            "fitted_s must be equal-length lists of numbers, the errors numbers and "
            f"ratio_to_roofline a mapping of numbers): {exc}"
        ) from None


def _number_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _checked_part(
    entry: Mapping[str, Any],
    part: str,
    points: Mapping[str, Any],
    work: Mapping[str, float],
    curve: FfnCurve | None,
) -> CalibrationPart:
    ratios = entry.get("ratio_to_roofline") or {}
    variable = OPERATING_VARIABLE.get(part)
    return CalibrationPart(
        part=part,
        kernel_source=entry.get("kernel_source"),
        dtype=entry.get("dtype"),
        x_name=str(points.get("x_name", "")),
        per=str(points.get("per", "step")),
        x=points["x"],
        measured_s=points["measured_s"],
        fitted_s=points["fitted_s"],
        curve_range=curve.fitted_tokens if curve is not None and part == "ffn" else None,
        operating_x=None if variable is None else float(work[variable]),
        median_rel_error=_number_or_none(entry.get("median_rel_error")),
        max_rel_error=_number_or_none(entry.get("max_rel_error")),
        ratio_to_roofline={str(k): float(v) for k, v in dict(ratios).items()},
        warnings=tuple(str(w) for w in entry.get("warnings") or []),
    )


def _curve_samples(
    curve: FfnCurve, parts: tuple[CalibrationPart, ...], operating_tokens: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    ffn = [p for p in parts if p.part == "ffn"]
    low = min([operating_tokens, *curve.fitted_tokens, *(p.fitted_range[0] for p in ffn)])
    high = max([operating_tokens, *curve.fitted_tokens, *(p.fitted_range[1] for p in ffn)])
    x = np.geomspace(max(low / CURVE_MARGIN, 1.0), high * CURVE_MARGIN, CURVE_POINTS)
    return x, np.asarray(curve.time_s(x), dtype=np.float64)


def calibration_summary(
    profile: Mapping[str, Any], rec: Recommendation, coefficients: CostCoefficients
) -> CalibrationSummary:
    """The calibration section's values for a parsed profile and the recommendation made with it.

    Parameters
    ----------
    profile : mapping
        A profile.yaml as :func:`afdsizer.cost.load_profile` reads it.
    rec : Recommendation
        The recommendation shown; its operating point is marked on every part.
    coefficients : CostCoefficients
        The coefficients ``rec`` was computed with (t_F linearised at its operating point).

    Raises
    ------
    InputError
        The profile's ``fits`` is not a list of mappings.
    """
    fits = profile.get("fits") or []
    if not isinstance(fits, list) or not all(isinstance(f, Mapping) for f in fits):
        raise InputError("the profile's fits must be a list of mappings (one per part)")
    work = rec.work_per_pass()
    data = profile.get("ffn_curve")
    ffn_curve = FfnCurve.from_dict(dict(data)) if isinstance(data, Mapping) else None
    parts = tuple(p for p in (_part(f, work, ffn_curve) for f in fits) if p is not None)
    curve = None
    if ffn_curve is not None:
        curve = _curve_samples(ffn_curve, parts, work["ffn_tokens"])
    measured = profile.get("measured_from") or (profile.get("coefficients") or {}).get("source")
    source = f"{profile.get('model', '?')} on {profile.get('device', '?')} ({measured or '?'})"
    return CalibrationSummary(
        source=source,
        parts=parts,
        ffn_curve_x=None if curve is None else curve[0],
        ffn_curve_s=None if curve is None else curve[1],
        ffn_line_used=(coefficients.alpha_ffn_s, coefficients.beta_ffn_s_per_token),
        warnings=tuple(str(w) for w in profile.get("warnings") or []),
    )
