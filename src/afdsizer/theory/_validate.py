"""Boundary checks shared by the theory stage's public functions (one-line InputError each)."""

from __future__ import annotations

import math
import numbers

from afdsizer.errors import InputError

__all__ = ["check_batch", "check_prices", "check_quantile", "check_sigma", "check_theta"]


def check_theta(theta_tokens: float) -> float:
    """θ must be a finite number > 0 (tokens)."""
    if not isinstance(theta_tokens, numbers.Real) or not (
        math.isfinite(theta_tokens) and theta_tokens > 0
    ):
        raise InputError(
            f"theta_tokens (θ, mean slot load) must be a finite number > 0 tokens, "
            f"got {theta_tokens!r}"
        )
    return float(theta_tokens)


def check_sigma(slot_load_std_tokens: float) -> float:
    """σ must be a finite number >= 0 (tokens)."""
    if not isinstance(slot_load_std_tokens, numbers.Real) or not (
        math.isfinite(slot_load_std_tokens) and slot_load_std_tokens >= 0
    ):
        raise InputError(
            f"slot_load_std_tokens (σ, std of one slot's load) must be a finite number >= 0 "
            f"tokens, got {slot_load_std_tokens!r}"
        )
    return float(slot_load_std_tokens)


def check_batch(batch: int) -> int:
    """B must be an integer >= 1 (slots per Attention instance)."""
    ok = isinstance(batch, numbers.Integral) or (
        isinstance(batch, float) and float(batch).is_integer()
    )
    if isinstance(batch, bool) or not ok or batch < 1:
        raise InputError(
            f"batch (B, slots per Attention instance) must be an integer >= 1, got {batch!r}"
        )
    return int(batch)


def check_quantile(kv_quantile: float) -> float:
    """The KV quantile must lie in [0.5, 1): below the median the bound would not grow with B."""
    if not isinstance(kv_quantile, numbers.Real) or not 0.5 <= kv_quantile < 1:
        raise InputError(f"kv_quantile must lie in [0.5, 1), got {kv_quantile!r}")
    return float(kv_quantile)


def check_prices(
    price_attn_per_h: float | None, price_ffn_per_h: float | None
) -> tuple[float, float]:
    """Instance weights (w_A, w_F): the two hourly prices, or (1, 1) when neither is given."""
    if price_attn_per_h is None and price_ffn_per_h is None:
        return 1.0, 1.0
    if price_attn_per_h is None or price_ffn_per_h is None:
        raise InputError(
            "price_attn_per_h and price_ffn_per_h go together (price per instance-hour); "
            f"got {price_attn_per_h!r} and {price_ffn_per_h!r}"
        )
    for name, value in (
        ("price_attn_per_h", price_attn_per_h),
        ("price_ffn_per_h", price_ffn_per_h),
    ):
        if not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a finite price per instance-hour > 0, got {value!r}")
    return float(price_attn_per_h), float(price_ffn_per_h)
