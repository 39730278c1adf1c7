"""CostCoefficients: validation at construction and the affine per-step times."""

from __future__ import annotations

import math

import pytest

from afdsizer.cost import COEFFICIENT_KEYS, CostCoefficients
from afdsizer.errors import InputError

GOOD = {
    "alpha_attn_s": 1e-3,
    "beta_attn_s_per_token": 2e-8,
    "alpha_comm_s": 3e-4,
    "beta_comm_s_per_token": 1e-6,
    "alpha_ffn_s": 5e-3,
    "beta_ffn_s_per_token": 4e-6,
}


def test_affine_times_by_hand() -> None:
    """t_A, t_C and t_F are the affine forms of design §2, checked on hand-worked numbers."""
    c = CostCoefficients(**GOOD, gamma_comm_s_per_token=1e-7)
    assert math.isclose(c.attention_time_s(100_000), 1e-3 + 2e-8 * 100_000)  # 3.0 ms
    assert math.isclose(c.comm_time_s(128, 4), 3e-4 + 1e-6 * 128 + 1e-7 * 4 * 128)
    assert math.isclose(c.ffn_time_s(512), 5e-3 + 4e-6 * 512)


@pytest.mark.parametrize("key", COEFFICIENT_KEYS)
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_coefficient_rejected(key: str, bad: float) -> None:
    """Each of the six coefficients must be a finite number > 0; the message names it."""
    with pytest.raises(InputError, match=f"{key} must be a finite number > 0"):
        CostCoefficients(**{**GOOD, key: bad})


def test_from_mapping_names_missing_keys() -> None:
    """A mapping without a required key fails with the key's name and the source."""
    partial = {k: v for k, v in GOOD.items() if k != "alpha_ffn_s"}
    with pytest.raises(InputError, match=r"coeffs\.json lack key\(s\) alpha_ffn_s"):
        CostCoefficients.from_mapping(partial, source="coeffs.json")


def test_round_trip_through_dict() -> None:
    """to_dict → from_mapping gives back an equal value."""
    c = CostCoefficients(**GOOD, kv_capacity_tokens=1e6, source="hand")
    assert CostCoefficients.from_mapping(c.to_dict()) == c
