"""Least-squares fit of the affine per-step model to measured times (docs/design.md §2, §5).

:class:`CostFitter` follows the scikit-learn estimator rules: ``__init__`` stores the operating
ranges, :meth:`CostFitter.fit` returns ``self``, fitted attributes end in ``_``.
Each of t_A = α_A + β_A·L, t_C = α_C + β_C·B and t_F = α_F + β_F·N is fitted separately, in
relative error (:func:`affine_fit_rel`), on the measured points inside its operating range.
When the measurements carry the fused-MoE rows (or the FFN GEMM rows) over their whole token
range, the FFN is also fitted as curves (:mod:`afdsizer.cost._moe_curve`) that extrapolate; with
``ffn_operating_tokens`` the reported α_F, β_F are the curve's secant at that N instead of the
line over the range (docs/design.md §10: fit where the deployment operates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._moe_curve import ExpertCurve, FfnCurve, fit_expert_curve, linearise_ffn
from afdsizer.cost._roofline import DEFAULT_FFN_TOKENS_RANGE, affine_fit_rel
from afdsizer.cost._silicon import StepMeasurements
from afdsizer.errors import InputError

__all__ = [
    "DEFAULT_ATTENTION_BATCH_RANGE",
    "DEFAULT_ATTENTION_CONTEXT_RANGE",
    "DEFAULT_COMM_BATCH_RANGE",
    "CostFitter",
]

DEFAULT_ATTENTION_BATCH_RANGE: tuple[float, float] = (16, 256)
"""Slots per Attention instance B fitted by default (typical AFD decode batches)."""
DEFAULT_ATTENTION_CONTEXT_RANGE: tuple[float, float] = (256, 32768)
"""KV tokens per request fitted by default."""
DEFAULT_COMM_BATCH_RANGE: tuple[float, float] = (8, 512)
"""Tokens per Attention instance B for the communication fit."""


def _in(x: npt.NDArray[np.float64], bounds: tuple[float, float]) -> npt.NDArray[np.bool_]:
    return (x >= bounds[0]) & (x <= bounds[1])


def _check_range(name: str, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if not 0 < lo <= hi:
        raise InputError(f"{name} must satisfy 0 < low <= high, got ({lo}, {hi})")


def fit_points(
    x_name: str,
    x: npt.NDArray[np.float64],
    measured_s: npt.NDArray[np.float64],
    fitted_s: npt.NDArray[np.float64],
    *,
    per: str = "step",
) -> dict[str, Any]:
    """The points of a fit (measured beside fitted time at each x), in increasing x, as lists."""
    order = np.argsort(x, kind="stable")
    return {
        "x_name": x_name,
        "x": x[order].tolist(),
        "measured_s": measured_s[order].tolist(),
        "fitted_s": np.asarray(fitted_s)[order].tolist(),
        "per": per,
    }


class CostFitter:
    """Fit α, β of Attention, communication and FFN to measured per-step times.

    Parameters
    ----------
    attention_batch_range : (float, float), default (16, 256)
        B range of the attention points used, requests.
    attention_context_range : (float, float), default (256, 32768)
        KV tokens per request (L/B) of the attention points used.
    ffn_tokens_range : (float, float), default (128, 4096)
        N range of the FFN points used, tokens.
    comm_batch_range : (float, float), default (8, 512)
        B range of the communication points used, tokens.
    ffn_operating_tokens : float, optional
        N = r·B to linearise the FFN curve at (secant); default: the line over the range.

    Attributes
    ----------
    alpha_attn_s_, beta_attn_s_per_token_ : float
        α_A (s) and β_A (s per KV token).
    alpha_ffn_s_, beta_ffn_s_per_token_ : float
        α_F (s) and β_F (s per token).
    alpha_comm_s_, beta_comm_s_per_token_ : float or None
        α_C, β_C; None when the measurements have no communication points.
    attention_fit_median_rel_error_, attention_fit_max_rel_error_ : float
        Median and max of |fit − measured| / measured over the attention points used.
    ffn_fit_median_rel_error_, ffn_fit_max_rel_error_ : float
        The same for the FFN points.
    comm_fit_median_rel_error_, comm_fit_max_rel_error_ : float or None
        The same for communication.
    n_points_ : dict of str to int
        Points used per part.
    ranges_fitted_ : dict of str to list of float
        The [min, max] actually covered by the points used, per variable.
    ffn_curve_ : FfnCurve or None
        The FFN as curves (fused MoE, GEMMs) when the measurements carry their rows.
    curve_fits_ : dict of str to dict
        Per curve part: rows, fitted token range, median and max relative error.
    points_ : dict of str to dict
        Per part (``attention``, ``ffn``, ``comm``, ``moe``, ``ffn_gemm``) the points fitted:
        ``x`` (the part's work variable, named by ``x_name``), ``measured_s`` and ``fitted_s``
        (per step; per call for the curve parts), for the report's calibration figure.

    Examples
    --------
    >>> import numpy as np
    >>> from afdsizer.cost._silicon import StepMeasurements
    >>> L = np.array([1e4, 2e4, 4e4]); N = np.array([64.0, 128.0, 256.0])
    >>> m = StepMeasurements(attention_batch=np.full(3, 32.0), attention_load_tokens=L,
    ...     attention_time_s=1e-3 + 1e-8 * L, ffn_tokens=N, ffn_time_s=2e-3 + 1e-6 * N)
    >>> fitter = CostFitter(attention_context_range=(1, 1e6)).fit(m)
    >>> round(fitter.beta_attn_s_per_token_ * 1e8, 6), round(fitter.alpha_ffn_s_ * 1e3, 6)
    (1.0, 2.0)
    """

    alpha_attn_s_: float
    beta_attn_s_per_token_: float
    alpha_ffn_s_: float
    beta_ffn_s_per_token_: float
    alpha_comm_s_: float | None
    beta_comm_s_per_token_: float | None
    attention_fit_median_rel_error_: float
    attention_fit_max_rel_error_: float
    ffn_fit_median_rel_error_: float
    ffn_fit_max_rel_error_: float
    comm_fit_median_rel_error_: float | None
    comm_fit_max_rel_error_: float | None
    n_points_: dict[str, int]
    ranges_fitted_: dict[str, list[float]]
    ffn_curve_: FfnCurve | None
    curve_fits_: dict[str, dict[str, Any]]
    points_: dict[str, dict[str, Any]]

    def __init__(
        self,
        *,
        attention_batch_range: tuple[float, float] = DEFAULT_ATTENTION_BATCH_RANGE,
        attention_context_range: tuple[float, float] = DEFAULT_ATTENTION_CONTEXT_RANGE,
        ffn_tokens_range: tuple[float, float] = DEFAULT_FFN_TOKENS_RANGE,
        comm_batch_range: tuple[float, float] = DEFAULT_COMM_BATCH_RANGE,
        ffn_operating_tokens: float | None = None,
    ) -> None:
        self.attention_batch_range = attention_batch_range
        self.attention_context_range = attention_context_range
        self.ffn_tokens_range = ffn_tokens_range
        self.comm_batch_range = comm_batch_range
        self.ffn_operating_tokens = ffn_operating_tokens

    def fit(self, measurements: StepMeasurements) -> CostFitter:
        """Fit all parts to ``measurements``; return ``self``.

        Raises
        ------
        InputError
            A range is invalid, or fewer than two distinct points of a part fall inside it.
        """
        m = measurements
        for name in (
            "attention_batch_range",
            "attention_context_range",
            "ffn_tokens_range",
            "comm_batch_range",
        ):
            _check_range(name, getattr(self, name))
        op = self.ffn_operating_tokens
        if op is not None and not (isinstance(op, int | float) and op > 0):
            raise InputError(f"ffn_operating_tokens must be > 0 tokens (N = r·B), got {op!r}")
        B, L = m.attention_batch, m.attention_load_tokens
        sel = _in(B, self.attention_batch_range) & _in(L / B, self.attention_context_range)
        self._need(
            sel,
            L,
            "attention",
            f"B in {self.attention_batch_range} and context in "
            f"{self.attention_context_range} tokens",
        )
        a, b, rel = affine_fit_rel(L[sel], m.attention_time_s[sel])
        self.alpha_attn_s_, self.beta_attn_s_per_token_ = a, b
        self.points_ = {
            "attention": fit_points("kv_tokens", L[sel], m.attention_time_s[sel], a + b * L[sel])
        }
        self.attention_fit_median_rel_error_ = float(np.median(rel))
        self.attention_fit_max_rel_error_ = float(rel.max())
        self.n_points_ = {"attention": int(sel.sum())}
        self.ranges_fitted_ = {
            "attention_batch": [float(B[sel].min()), float(B[sel].max())],
            "attention_context_tokens": [float((L / B)[sel].min()), float((L / B)[sel].max())],
            "attention_load_tokens": [float(L[sel].min()), float(L[sel].max())],
        }

        N = m.ffn_tokens
        sel = _in(N, self.ffn_tokens_range)
        self._need(sel, N, "FFN", f"N in {self.ffn_tokens_range} tokens")
        a, b, rel = affine_fit_rel(N[sel], m.ffn_time_s[sel])
        self.alpha_ffn_s_, self.beta_ffn_s_per_token_ = a, b
        self.points_["ffn"] = fit_points("ffn_tokens", N[sel], m.ffn_time_s[sel], a + b * N[sel])
        self.ffn_fit_median_rel_error_ = float(np.median(rel))
        self.ffn_fit_max_rel_error_ = float(rel.max())
        self.n_points_["ffn"] = int(sel.sum())
        self.ranges_fitted_["ffn_tokens"] = [float(N[sel].min()), float(N[sel].max())]
        self._fit_ffn_curve(m)

        self.alpha_comm_s_ = self.beta_comm_s_per_token_ = None
        self.comm_fit_median_rel_error_ = self.comm_fit_max_rel_error_ = None
        if m.comm_batch is not None and m.comm_time_s is not None:
            cB = m.comm_batch
            sel = _in(cB, self.comm_batch_range)
            self._need(sel, cB, "communication", f"B in {self.comm_batch_range} tokens")
            a, b, rel = affine_fit_rel(cB[sel], m.comm_time_s[sel])
            self.alpha_comm_s_, self.beta_comm_s_per_token_ = a, b
            self.points_["comm"] = fit_points("batch", cB[sel], m.comm_time_s[sel], a + b * cB[sel])
            self.comm_fit_median_rel_error_ = float(np.median(rel))
            self.comm_fit_max_rel_error_ = float(rel.max())
            self.n_points_["comm"] = int(sel.sum())
            self.ranges_fitted_["comm_batch"] = [float(cB[sel].min()), float(cB[sel].max())]
        return self

    def _fit_ffn_curve(self, m: StepMeasurements) -> None:
        """Fit the fused-MoE and GEMM parts of t_F as curves over all their rows."""
        terms: list[ExpertCurve] = []
        self.curve_fits_ = {}
        parts = []
        if m.moe_tokens is not None and m.moe_call_time_s is not None and m.moe_shape:
            shape = m.moe_shape
            parts.append(
                (
                    "moe",
                    m.moe_tokens,
                    m.moe_call_time_s,
                    int(shape["num_experts"]),
                    int(shape["experts_per_token"]),
                    float(shape["local_experts"]),
                    float(shape["calls"]),
                )
            )
        if m.ffn_gemm_tokens is not None and m.ffn_gemm_time_s is not None:
            parts.append(("ffn_gemm", m.ffn_gemm_tokens, m.ffn_gemm_time_s, 1, 1, 1.0, 1.0))
        for part, N, t, E, k, local, calls in parts:
            curve, rel = fit_expert_curve(
                N,
                t,
                part=part,
                num_experts=E,
                experts_per_token=k,
                local_experts=local,
                calls=calls,
            )
            per_call = curve.time_s(N) / curve.calls
            self.points_[part] = fit_points("ffn_tokens", N, t, per_call, per="call")
            extra = self._to_rank(m, part, curve) if part == "moe" else {}
            curve = extra.pop("curve", curve)
            terms.append(curve)
            lo, hi = self.ffn_tokens_range
            inside = _in(N, (lo, hi))
            self.curve_fits_[part] = {
                "rows": int(N.size),
                "fitted_range": {"ffn_tokens": [float(N.min()), float(N.max())]},
                "median_rel_error": float(np.median(rel)),
                "max_rel_error": float(rel.max()),
                "median_rel_error_in_ffn_range": (
                    float(np.median(rel[inside])) if inside.any() else None
                ),
                "curve": curve.to_dict(),
                **extra,
            }
        self.ffn_curve_ = None
        if terms:
            lo = max(min(float(np.min(p[1])) for p in parts), 1.0)
            hi = min(float(np.max(p[1])) for p in parts)
            self.ffn_curve_ = FfnCurve(terms=tuple(terms), fitted_tokens=(lo, hi))
            if self.ffn_operating_tokens is not None:
                a, b = linearise_ffn(self.ffn_curve_, self.ffn_operating_tokens, method="secant")
                self.alpha_ffn_s_, self.beta_ffn_s_per_token_ = a, b

    def _to_rank(self, m: StepMeasurements, part: str, curve: ExpertCurve) -> dict[str, Any]:
        """Move a curve fitted on 1-GPU rows to one EP rank; compare with the EP rows."""
        share = float((m.moe_shape or {}).get("rank_share", 1.0))
        if share == 1.0:
            return {}
        rank = curve.for_rank(share)
        out: dict[str, Any] = {"curve": rank, "rank_share": share}
        if m.moe_ep_tokens is not None and m.moe_ep_call_time_s is not None:
            N, t = m.moe_ep_tokens, m.moe_ep_call_time_s
            inside = _in(N, self.ffn_tokens_range)
            per_call = rank.time_s(N[inside]) / rank.calls
            out["ep_rows_over_rank_curve"] = float(np.median(t[inside] / per_call))
        return out

    @staticmethod
    def _need(sel: npt.NDArray[np.bool_], x: npt.NDArray[np.float64], part: str, rule: str) -> None:
        if np.unique(x[sel]).size < 2:
            have = f"[{x.min():.4g}, {x.max():.4g}]" if x.size else "none"
            raise InputError(
                f"{part} fit needs >= 2 distinct measured points with {rule}; "
                f"got {np.unique(x[sel]).size} (measured range {have})"
            )

    def coefficients(
        self,
        *,
        comm: CostCoefficients | None = None,
        kv_capacity_tokens: float | None = None,
        source: str = "",
    ) -> CostCoefficients:
        """The fitted :class:`CostCoefficients`; α_C, β_C from ``comm`` when none were measured.

        Raises
        ------
        InputError
            Not fitted, or no communication measured and no ``comm`` fallback given.
        """
        if not hasattr(self, "alpha_attn_s_"):
            raise InputError("CostFitter is not fitted; call fit() first")
        alpha_c, beta_c = self.alpha_comm_s_, self.beta_comm_s_per_token_
        if alpha_c is None or beta_c is None:
            if comm is None:
                raise InputError("no communication points were measured; give comm coefficients")
            alpha_c, beta_c = comm.alpha_comm_s, comm.beta_comm_s_per_token
        return CostCoefficients(
            alpha_attn_s=self.alpha_attn_s_,
            beta_attn_s_per_token=self.beta_attn_s_per_token_,
            alpha_comm_s=alpha_c,
            beta_comm_s_per_token=beta_c,
            alpha_ffn_s=self.alpha_ffn_s_,
            beta_ffn_s_per_token=self.beta_ffn_s_per_token_,
            kv_capacity_tokens=kv_capacity_tokens,
            source=source,
        )

    def fit_report(self) -> dict[str, Any]:
        """Fit quality as the ``calibrate --json`` keys (errors are fractions, not %)."""
        return {
            "attention_fit_median_rel_error": self.attention_fit_median_rel_error_,
            "attention_fit_max_rel_error": self.attention_fit_max_rel_error_,
            "ffn_fit_median_rel_error": self.ffn_fit_median_rel_error_,
            "ffn_fit_max_rel_error": self.ffn_fit_max_rel_error_,
            "comm_fit_median_rel_error": self.comm_fit_median_rel_error_,
            "comm_fit_max_rel_error": self.comm_fit_max_rel_error_,
            "n_points": dict(self.n_points_),
            "ranges_fitted": {k: list(v) for k, v in self.ranges_fitted_.items()},
            "ffn_operating_tokens": self.ffn_operating_tokens,
        }
