"""Barrier-aware refinement: the step waits for the slowest of r Attention workers (design §4).

Across workers a worker's load is L_w ≈ Normal(B·θ, B·σ²) (CLT over its B slots), so
t_A,w ≈ Normal(μ_A, σ_A²) with μ_A = α_A + β_A·B·θ and σ_A = β_A·sqrt(B)·σ. With
G(r) = max(t_C(r), t_F(r)) and M_r the maximum of r iid standard normals,

    E[τ] = E[max(G, μ_A + σ_A·M_r)] = G + σ_A·∫_z^∞ (1 − Φ(x)^r) dx,   z = (G − μ_A)/σ_A,

because E[max(G, Y)] = G + ∫_G^∞ P(Y > y) dy and P(M_r > x) = 1 − Φ(x)^r.

Two evaluations of the tail integral live here: :func:`expected_max_std_normal` uses adaptive
quadrature (the slow, obviously-correct path, cached per r), and ``_tail_integral`` a fixed
composite Gauss–Legendre rule vectorised over arrays of (z, r) (the fast path used for scans over
r and B). A test checks that they agree.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from afdsizer.cost import CostCoefficients
from afdsizer.theory._validate import check_sigma, check_theta

__all__ = [
    "attention_idle_fraction",
    "barrier_attention_fixed_point",
    "expected_max_above_floor",
    "expected_max_std_normal",
    "expected_step_time_s",
    "ffn_idle_fraction",
    "throughput_barrier",
]

FloatArray = npt.NDArray[np.float64]

_X_LO = -9.0
"""Below this, Φ(x)^r <= Φ(−9) ≈ 1e-19 for r >= 1, so 1 − Φ(x)^r is 1 to double precision."""
_X_HI = 11.0
"""Above this, 1 − Φ(x)^r <= r·(1 − Φ(11)) ≈ r·2e-28: negligible for any plausible r."""
_PANEL = 0.25
"""Width of one Gauss–Legendre panel; the integrand's transition is >= ~0.2 wide for r <= 1e6."""
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_N_PANELS = round((_X_HI - _X_LO) / _PANEL)
_PANEL_START = _X_LO + _PANEL * np.arange(_N_PANELS)
_NODES = (_PANEL_START[:, None] + _PANEL / 2 * (1.0 + _GL_X[None, :])).ravel()
_WEIGHTS = np.tile(_PANEL / 2 * _GL_W, _N_PANELS)
_LOG_PHI_NODES = special.log_ndtr(_NODES)
_CHUNK_ROWS = 2048
"""Rows of (z, r) evaluated at once, so the (rows × nodes) work array stays ~10 MB."""


def _tail_integral(z: npt.ArrayLike, r: npt.ArrayLike) -> FloatArray:
    """∫_z^∞ (1 − Φ(x)^r) dx for arrays z, r (broadcast), by composite Gauss–Legendre.

    Fast path of the quadrature in :func:`_tail_integral_quad`.
    """
    zb, rb = np.broadcast_arrays(np.asarray(z, dtype=np.float64), np.asarray(r, dtype=np.float64))
    z_flat, r_flat = zb.ravel(), rb.ravel()
    out = np.empty(z_flat.shape, dtype=np.float64)
    for start in range(0, z_flat.size, _CHUNK_ROWS):
        zs = z_flat[start : start + _CHUNK_ROWS]
        rs = r_flat[start : start + _CHUNK_ROWS]
        # Left of _X_LO the integrand is exactly 1: add that stretch's length.
        below = np.maximum(_X_LO - zs, 0.0)
        zc = np.clip(zs, _X_LO, _X_HI)
        panel = np.minimum(np.floor((zc - _X_LO) / _PANEL).astype(np.int64), _N_PANELS - 1)
        panel_end = _X_LO + _PANEL * (panel + 1)
        f = -np.expm1(rs[:, None] * _LOG_PHI_NODES[None, :]) * _WEIGHTS[None, :]
        per_panel = f.reshape(zs.size, _N_PANELS, _GL_X.size).sum(axis=2)
        # suffix[i, p] = integral over panels p, p+1, ...; a zero column for "none left".
        suffix = np.concatenate(
            [np.cumsum(per_panel[:, ::-1], axis=1)[:, ::-1], np.zeros((zs.size, 1))], axis=1
        )
        full = suffix[np.arange(zs.size), panel + 1]
        half = (panel_end - zc) / 2.0
        xs = (panel_end + zc)[:, None] / 2.0 + half[:, None] * _GL_X[None, :]
        partial = half * (-np.expm1(rs[:, None] * special.log_ndtr(xs)) @ _GL_W)
        out[start : start + zs.size] = below + full + partial
    return out.reshape(zb.shape)


def _tail_integral_quad(z: float, r: float) -> float:
    """∫_z^∞ (1 − Φ(x)^r) dx by adaptive quadrature (slow reference of :func:`_tail_integral`)."""
    below = max(_X_LO - z, 0.0)
    lo = max(z, _X_LO)
    if lo >= _X_HI:
        return below

    def integrand(x: float) -> float:
        return float(-math.expm1(r * special.log_ndtr(x)))

    # The integrand falls from 1 to 0 around sqrt(2·ln r); tell quad where.
    centre = math.sqrt(2.0 * math.log(r)) if r > 1 else 0.0
    points = [p for p in (centre - 1.0, centre, centre + 1.0) if lo < p < _X_HI]
    from scipy import integrate  # the slow reference only: kept off the import path

    value, _ = integrate.quad(
        integrand, lo, _X_HI, points=points or None, limit=200, epsabs=1e-14, epsrel=1e-12
    )
    return below + float(value)


@functools.lru_cache(maxsize=16384)
def _m_quad(r: float) -> float:
    # E[M_r] = ∫_0^∞ (1 − Φ^r) dx − ∫_{−∞}^0 Φ^r dx, and ∫_{−∞}^{X_LO} Φ^r dx < 1e-20.
    from scipy import integrate  # kept off the import path (≈ 0.1 s)

    negative, _ = integrate.quad(
        lambda x: math.exp(r * special.log_ndtr(x)), _X_LO, 0.0, epsabs=1e-14, epsrel=1e-12
    )
    return _tail_integral_quad(0.0, r) - float(negative)


def expected_max_std_normal(ratio: float | npt.ArrayLike) -> FloatArray:
    """m_r = E[max of r iid standard normals], by adaptive quadrature (cached per r).

    Parameters
    ----------
    ratio : float or array-like
        r >= 1, number of Attention workers (real values allowed: Φ(x)^r is defined for any r).

    Returns
    -------
    ndarray of float
        m_r, dimensionless; m_1 = 0, m_2 = 1/sqrt(π), m_3 = 3/(2·sqrt(π)); ~sqrt(2·ln r) for
        large r.

    Notes
    -----
    m_r = ∫_0^∞ (1 − Φ(x)^r) dx − ∫_{−∞}^0 Φ(x)^r dx (design §4), integrated with Φ^r written
    as exp(r·log Φ) so that r in the thousands stays accurate.

    Examples
    --------
    >>> round(float(expected_max_std_normal(2)), 12) == round(1 / 3.141592653589793**0.5, 12)
    True
    """
    r = np.asarray(ratio, dtype=np.float64)
    if np.any(~np.isfinite(r)) or np.any(r < 1):
        from afdsizer.errors import InputError

        raise InputError(f"ratio (r, Attention workers) must be >= 1 for m_r, got {ratio!r}")
    return np.asarray(np.vectorize(_m_quad, otypes=[np.float64])(r), dtype=np.float64)


def _expected_max_std_normal_fast(ratio: npt.ArrayLike) -> FloatArray:
    """m_r by the vectorised Gauss–Legendre rule (fast path of :func:`expected_max_std_normal`).

    m_r = ∫_z^∞ (1 − Φ^r) dx + z for any z <= −9, since ∫_{−∞}^{−9} Φ(x)^r dx < 1e-20.
    """
    r = np.asarray(ratio, dtype=np.float64)
    return np.asarray(_tail_integral(_X_LO, r) + _X_LO, dtype=np.float64)


def expected_max_above_floor(
    floor_s: npt.ArrayLike, mean_s: npt.ArrayLike, std_s: npt.ArrayLike, ratio: npt.ArrayLike
) -> FloatArray:
    """E[max(G, μ + σ·max_{j<=r} Z_j)] for iid standard normals Z_j; vectorised.

    Parameters
    ----------
    floor_s : array-like
        G, the deterministic competitor (e.g. max(t_C, t_F)), s.
    mean_s : array-like
        μ, mean of one worker's time, s.
    std_s : array-like
        σ >= 0, std of one worker's time, s; 0 gives max(G, μ).
    ratio : array-like
        r >= 1, number of workers.

    Returns
    -------
    ndarray of float
        G + σ·∫_z^∞ (1 − Φ(x)^r) dx with z = (G − μ)/σ, s.

    Examples
    --------
    >>> float(expected_max_above_floor(1.0, 0.5, 0.0, 8))
    1.0
    """
    G, mu, sd, r = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (floor_s, mean_s, std_s, ratio))
    )
    out: FloatArray = np.array(np.maximum(G, mu), dtype=np.float64)
    # A σ far below the step time's scale changes E[τ] by less than rounding, and dividing by it
    # overflows z; such steps are deterministic here.
    noisy = sd > _NEGLIGIBLE_RELATIVE_STD * np.maximum(np.abs(G), np.abs(mu))
    if np.any(noisy):
        z = (G[noisy] - mu[noisy]) / sd[noisy]
        out[noisy] = G[noisy] + sd[noisy] * _tail_integral(z, r[noisy])
    return out


_NEGLIGIBLE_RELATIVE_STD = 1e-12
"""σ_A / max(G, μ_A) below which the barrier term (≤ σ_A·m_r) is treated as exactly zero."""


def _step_parts(
    coefficients: CostCoefficients,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: npt.ArrayLike,
    ratio: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """(B, r, μ_A, σ_A, G) broadcast together; times in s."""
    check_theta(theta_tokens)
    check_sigma(slot_load_std_tokens)
    B, r = np.broadcast_arrays(
        np.asarray(batch, dtype=np.float64), np.asarray(ratio, dtype=np.float64)
    )
    mu_attn = coefficients.attention_time_s(B * theta_tokens)
    sd_attn = coefficients.beta_attn_s_per_token * np.sqrt(B) * slot_load_std_tokens
    t_comm = coefficients.comm_time_s(B, r)
    t_ffn = coefficients.ffn_time_s(r * B)
    return B, r, mu_attn, sd_attn, np.maximum(t_comm, t_ffn)


def expected_step_time_s(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Barrier-aware expected step time E[τ] = E[max(G, μ_A + σ_A·M_r)], s.

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β, γ of the three terms.
    theta_tokens : float
        θ, mean slot load, tokens (> 0).
    slot_load_std_tokens : float
        σ, std of one slot's stationary load, tokens (>= 0); 0 gives the mean-field τ.
    batch : float or array-like
        B, slots per Attention instance.
    ratio : float or array-like
        r >= 1, Attention instances per FFN instance; broadcast against ``batch``.

    Returns
    -------
    ndarray of float
        E[τ] in seconds.

    Notes
    -----
    μ_A = α_A + β_A·B·θ, σ_A = β_A·sqrt(B)·σ, G = max(t_C(r), t_F(r)) (docs/design.md §4).

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> tau = expected_step_time_s(c, theta_tokens=1000.0, slot_load_std_tokens=800.0,
    ...     batch=100, ratio=[1, 16])
    >>> [round(float(t) * 1e3, 3) for t in tau]  # ms; mean field gives 2.0 and 2.1
    [2.0, 2.144]
    """
    _, r, mu_attn, sd_attn, G = _step_parts(
        coefficients, theta_tokens, slot_load_std_tokens, batch, ratio
    )
    return expected_max_above_floor(G, mu_attn, sd_attn, r)


def throughput_barrier(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Barrier-aware throughput per instance r·B / ((r + 1)·E[τ]), tokens/s per instance.

    Parameters are those of :func:`expected_step_time_s`; vectorised over ``batch`` and ``ratio``.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> lam = throughput_barrier(c, theta_tokens=1000.0, slot_load_std_tokens=800.0, batch=100,
    ...     ratio=[8, 16])
    >>> bool(lam[1] > lam[0])
    True
    """
    tau = expected_step_time_s(
        coefficients,
        theta_tokens=theta_tokens,
        slot_load_std_tokens=slot_load_std_tokens,
        batch=batch,
        ratio=ratio,
    )
    B, r = np.broadcast_arrays(
        np.asarray(batch, dtype=np.float64), np.asarray(ratio, dtype=np.float64)
    )
    return np.asarray(r * B / ((r + 1.0) * tau), dtype=np.float64)


def attention_idle_fraction(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Idle fraction of an Attention worker, 1 − E[t_A,w]/E[τ] (barrier and FFN waits).

    Parameters are those of :func:`expected_step_time_s`; σ = 0 gives the mean-field
    1 − t_A/τ.

    Returns
    -------
    ndarray of float
        Fraction in [0, 1).
    """
    _, r, mu_attn, sd_attn, G = _step_parts(
        coefficients, theta_tokens, slot_load_std_tokens, batch, ratio
    )
    tau = expected_max_above_floor(G, mu_attn, sd_attn, r)
    return np.asarray(1.0 - mu_attn / tau, dtype=np.float64)


def ffn_idle_fraction(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: float | npt.ArrayLike,
    ratio: float | npt.ArrayLike,
) -> FloatArray:
    """Idle fraction of the FFN instance, 1 − t_F(r)/E[τ].

    Parameters are those of :func:`expected_step_time_s`; σ = 0 gives the mean-field
    1 − t_F/τ.

    Returns
    -------
    ndarray of float
        Fraction in [0, 1).
    """
    B, r, mu_attn, sd_attn, G = _step_parts(
        coefficients, theta_tokens, slot_load_std_tokens, batch, ratio
    )
    tau = expected_max_above_floor(G, mu_attn, sd_attn, r)
    t_ffn = coefficients.ffn_time_s(r * B)
    return np.asarray(1.0 - t_ffn / tau, dtype=np.float64)


def barrier_attention_fixed_point(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
) -> float:
    """Barrier-aware r_A: the fixed point r = (μ_A + σ_A·m_r − α_F)/(β_F·B).

    The slowest of r workers takes μ_A + σ_A·m_r on average, which grows with r, so the ratio at
    which the FFN catches up with Attention solves a fixed-point equation instead of the
    mean-field r_A = (t_A − α_F)/(β_F·B). It is unique: the right side grows like
    sqrt(2·ln r) while the left grows like r.

    Parameters
    ----------
    coefficients : CostCoefficients
    theta_tokens : float
        θ, tokens.
    slot_load_std_tokens : float
        σ, tokens; 0 gives the mean-field r_A.
    batch : int
        B, slots per Attention instance.

    Returns
    -------
    float
        The fixed point r (>= 1), or the mean-field r_A when that is already below 1 (m_1 = 0).

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> r = barrier_attention_fixed_point(c, theta_tokens=1000.0, slot_load_std_tokens=800.0,
    ...     batch=100)
    >>> round(r, 2)  # mean field: r_A = 15
    16.42
    """
    check_theta(theta_tokens)
    check_sigma(slot_load_std_tokens)
    B = float(batch)
    mu_attn = float(coefficients.attention_time_s(B * theta_tokens))
    sd_attn = coefficients.beta_attn_s_per_token * math.sqrt(B) * slot_load_std_tokens
    slope = coefficients.beta_ffn_s_per_token * B

    def excess(r: float) -> float:
        return r - (mu_attn + sd_attn * _m_quad(r) - coefficients.alpha_ffn_s) / slope

    if excess(1.0) >= 0:
        return (mu_attn - coefficients.alpha_ffn_s) / slope
    hi = 2.0
    while excess(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(excess, hi / 2.0, hi, xtol=1e-10, rtol=1e-12))
