"""Kernel choice: flat floors are flagged and passed over; the fastest real kernel is chosen."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from afdsizer.cost._kernels import (
    DEGENERATE_MAX_GROWTH,
    DEGENERATE_MIN_WORK_RATIO,
    KernelCurve,
    choose_kernel,
    is_degenerate,
)
from afdsizer.errors import InputError

WORK = np.geomspace(1, 32768, 16)


def _curve(name: str, fixed_s: float, per_work_s: float) -> KernelCurve:
    return KernelCurve(kernel=name, work=WORK, time_s=fixed_s + per_work_s * WORK)


CURVES = {
    "real": _curve("real", 8e-6, 3e-8),  # 8 µs launch, then grows ~120x
    "floor": _curve("floor", 3e-4, 1e-9),  # the 0.3 ms dispatch floor of issue 12
    "slow": _curve("slow", 2e-5, 6e-8),  # a real kernel, twice as slow
}


@given(
    fixed=st.floats(1e-6, 1e-3),
    growth=st.floats(1.0, 50.0),
    span=st.floats(2.0, 1e5),
)
def test_degenerate_means_little_growth_over_wide_work(
    fixed: float, growth: float, span: float
) -> None:
    """is_degenerate is exactly: work spans >= 64x and time grows < 2x (brute-force oracle)."""
    work = np.geomspace(1, span, 8)
    time = fixed * np.geomspace(1, growth, 8)
    expected = span >= DEGENERATE_MIN_WORK_RATIO and growth < DEGENERATE_MAX_GROWTH
    curve = KernelCurve(kernel="k", work=work, time_s=time)
    assert is_degenerate(curve) == pytest.approx(expected)


def test_flat_floor_is_not_chosen_even_with_more_rows() -> None:
    """The default passes over the floor (once the busiest kernel) and says so."""
    rows = {"real": 10, "floor": 1000, "slow": 10}
    choice = choose_kernel("attn_gemm", list(CURVES), CURVES.get, rows_of=rows.__getitem__)
    assert choice.kernel == "real" and choice.reason == "fastest"
    assert any("floor" in w and "not used" in w for w in choice.warnings)
    by_name = {c["kernel"]: c for c in choice.candidates}
    assert by_name["floor"]["degenerate"] and not by_name["slow"]["degenerate"]
    assert by_name["slow"]["relative_time"] > 1.0
    assert choice.candidates[0]["kernel"] == "real"


def test_only_a_floor_is_used_with_a_warning() -> None:
    """When every kernel is a floor the fastest is used, flagged as such."""
    choice = choose_kernel("moe", ["floor"], CURVES.get)
    assert choice.kernel == "floor" and choice.reason == "fallback"
    assert "flat floor" in choice.warnings[0]


def test_named_kernel_is_taken_and_checked() -> None:
    """A kernel named by the user is used even when degenerate; unknown names are refused."""
    choice = choose_kernel("attn_gemm", list(CURVES), CURVES.get, wanted="floor")
    assert choice.kernel == "floor" and choice.reason == "given"
    assert "flat floor" in choice.warnings[0]
    with pytest.raises(InputError, match="kernel_source 'fa9' has no attn_gemm rows; available"):
        choose_kernel("attn_gemm", list(CURVES), CURVES.get, wanted="fa9")
    with pytest.raises(InputError, match="no moe kernel has measured rows covering the fit range"):
        choose_kernel("moe", ["x"], lambda k: None, work_range=(128, 4096))
