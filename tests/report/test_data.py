"""The frozen report values validate their shapes once, at construction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from afdsizer.errors import InputError
from afdsizer.report import (
    RatioCurves,
    RecommendationSummary,
    RegimeMap,
    ReportData,
    WorkloadSummary,
)


def test_values_are_frozen_and_arrays_read_only(standin_data: ReportData) -> None:
    """Fields cannot be reassigned and curve arrays cannot be written in place."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        standin_data.title = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        standin_data.curves.ratios[0] = 5.0


def test_ratio_curves_need_equal_lengths(standin_data: ReportData) -> None:
    """A curve shorter than the ratios is refused, naming the lengths."""
    fields = {f.name: getattr(standin_data.curves, f.name) for f in dataclasses.fields(RatioCurves)}
    fields["ffn_idle"] = fields["ffn_idle"][:-1]
    with pytest.raises(InputError, match="RatioCurves arrays must have equal lengths"):
        RatioCurves(**fields)


def test_ratio_curves_need_one_ratio(standin_data: ReportData) -> None:
    """Empty curves are refused."""
    empty = {f.name: np.array([]) for f in dataclasses.fields(RatioCurves)}
    with pytest.raises(InputError, match="at least one ratio, got 0"):
        RatioCurves(**empty)


def test_sim_points_need_equal_lengths(standin_data: ReportData) -> None:
    """Simulated columns must align with the ratios."""
    assert standin_data.sim is not None
    with pytest.raises(InputError, match="SimPoints arrays must have equal lengths"):
        dataclasses.replace(standin_data.sim, barrier_idle=np.array([0.1]))


def test_workload_needs_matching_lengths() -> None:
    """P and D must be non-empty and of equal length."""
    with pytest.raises(InputError, match="equal length, got shapes \\(3,\\) and \\(2,\\)"):
        WorkloadSummary(
            prompt_tokens=[1, 2, 3],
            decode_tokens=[1, 2],
            theta_tokens=1.0,
            theta_ci_tokens=(0.5, 1.5),
            slot_load_std_tokens=1.0,
            confidence=0.95,
            source="x",
        )


def test_regime_map_checks_shape_and_codes() -> None:
    """Grids must be (n_batch, n_theta) and regime codes must index REGIMES."""
    good = {
        "theta_tokens": [1.0, 2.0],
        "batches": [8],
        "r_int": [[1, 2]],
        "r_star_mean_field": [[1.0, 2.0]],
        "regime_codes": [[0, 2]],
    }
    RegimeMap(**good)
    with pytest.raises(InputError, match=r"shape \(n_batch, n_theta\) = \(1, 2\)"):
        RegimeMap(**{**good, "r_int": [[1, 2, 3]]})
    with pytest.raises(InputError, match="regime_codes must index REGIMES"):
        RegimeMap(**{**good, "regime_codes": [[0, 3]]})


def test_recommendation_summary_from_any_record(standin_data: ReportData) -> None:
    """from_recommendation copies the shown fields from a record with more fields, typed."""
    rec = standin_data.recommendation
    wider = type("Rec", (), {**dataclasses.asdict(rec), "r_int": np.int64(rec.r_int), "extra": 1})
    copy = RecommendationSummary.from_recommendation(wider)
    assert copy == rec
    assert type(copy.r_int) is int
    with pytest.raises(InputError, match="r_int must be >= 1, got 0"):
        dataclasses.replace(rec, r_int=0)
