"""How the optimal ratio moves with θ and B: a small grid for reports and drifting loads."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory._joint import best_integer_ratio
from afdsizer.theory._meanfield import Regime, mean_field_rule
from afdsizer.theory._validate import check_batch, check_sigma, check_theta

__all__ = ["SensitivityGrid", "sensitivity_grid"]

DEFAULT_THETA_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
"""Multiples of θ on the grid's first axis."""
DEFAULT_BATCH_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Multiples of B on the grid's second axis (rounded, >= 1)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SensitivityGrid:
    """r* over a grid of θ (rows) × B (columns).

    Attributes
    ----------
    theta_tokens : ndarray of float, shape (n_theta,)
        θ values, tokens.
    slot_load_std_tokens : ndarray of float, shape (n_theta,)
        σ used with each θ (σ scaled with θ, keeping σ/θ fixed), tokens.
    batch : ndarray of int, shape (n_batch,)
        B values.
    r_star_mean_field : ndarray of float, shape (n_theta, n_batch)
        Mean-field closed-form r*.
    r_int : ndarray of int, shape (n_theta, n_batch)
        Best integer r under the barrier model.
    regime : tuple of tuple of str
        Mean-field regime per cell, same shape.
    """

    theta_tokens: npt.NDArray[np.float64]
    slot_load_std_tokens: npt.NDArray[np.float64]
    batch: npt.NDArray[np.int64]
    r_star_mean_field: npt.NDArray[np.float64]
    r_int: npt.NDArray[np.int64]
    regime: tuple[tuple[Regime, ...], ...]


def sensitivity_grid(
    coefficients: CostCoefficients,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    batch: int,
    theta_factors: tuple[float, ...] = DEFAULT_THETA_FACTORS,
    batch_factors: tuple[float, ...] = DEFAULT_BATCH_FACTORS,
) -> SensitivityGrid:
    """Mean-field r* and barrier-aware integer r on a θ × B grid around (θ, B).

    Parameters
    ----------
    coefficients : CostCoefficients
    theta_tokens : float
        θ at the centre, tokens.
    slot_load_std_tokens : float
        σ at the centre, tokens; scaled with θ on the grid (a load that drifts keeps its shape).
    batch : int
        B at the centre.
    theta_factors, batch_factors : tuple of float
        Multiples of θ and of B (B rounded, duplicates dropped).

    Returns
    -------
    SensitivityGrid

    Notes
    -----
    In the Attention regime r* ≈ (α_A + β_A·B·θ − α_F)/(β_F·B) grows linearly in θ; in the FFN
    regime r_peak = sqrt(α_F/(β_F·B)) does not depend on θ (docs/design.md §4).

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-8, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-4, beta_ffn_s_per_token=1e-6)
    >>> grid = sensitivity_grid(c, theta_tokens=1000.0, slot_load_std_tokens=800.0, batch=100,
    ...     theta_factors=(1.0, 2.0), batch_factors=(1.0,))
    >>> [round(float(r), 2) for r in grid.r_star_mean_field[:, 0]]
    [15.0, 25.0]
    """
    theta = check_theta(theta_tokens)
    sigma = check_sigma(slot_load_std_tokens)
    B = check_batch(batch)
    if not theta_factors or not batch_factors or min(*theta_factors, *batch_factors) <= 0:
        raise InputError(
            f"theta_factors and batch_factors must be non-empty and > 0, got {theta_factors!r} "
            f"and {batch_factors!r}"
        )
    thetas = theta * np.asarray(theta_factors, dtype=np.float64)
    sigmas = sigma * np.asarray(theta_factors, dtype=np.float64)
    batches = np.unique(np.maximum(1, np.round(B * np.asarray(batch_factors))).astype(np.int64))
    r_mf = np.empty((thetas.size, batches.size))
    r_int = np.empty((thetas.size, batches.size), dtype=np.int64)
    regimes: list[tuple[Regime, ...]] = []
    for i, (th, sd) in enumerate(zip(thetas, sigmas, strict=True)):
        row: list[Regime] = []
        for j, b in enumerate(batches):
            rule = mean_field_rule(coefficients, theta_tokens=float(th), batch=int(b))
            r_mf[i, j] = rule.r_star
            row.append(rule.regime)
            r_int[i, j] = best_integer_ratio(
                coefficients, theta_tokens=float(th), slot_load_std_tokens=float(sd), batch=int(b)
            )
        regimes.append(tuple(row))
    return SensitivityGrid(
        theta_tokens=thetas,
        slot_load_std_tokens=sigmas,
        batch=batches,
        r_star_mean_field=r_mf,
        r_int=r_int,
        regime=tuple(regimes),
    )
