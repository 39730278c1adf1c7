"""Whole-grid checks: cell count from the axes, size and time limits, cross-field rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.errors import InputError
from afdsizer.sweep import SweepSpec, check_sweep, count_cells, enumerate_cells, run_sweep


def _axis(values: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=1, max_size=max_size, unique=True)


_sim = st.none() | st.fixed_dictionaries(
    {
        "steps": st.just(100),
        "pipeline": _axis(st.sampled_from(["overlapped", "serial", "microbatch"])),
        "microbatches": _axis(st.sampled_from([2, 4, 8])),
        "jitter_cv": _axis(st.sampled_from([0.0, 0.1, 0.3])),
        "refill": _axis(st.sampled_from(["resample", "replay"])),
    }
)
_specs = st.builds(
    lambda traces, coeffs, models, batch, ratio, seeds, sim: SweepSpec(
        traces=traces,
        coefficients=coeffs,
        models=models,
        hardware=["h100-sxm"] if models else [],
        batch=batch,
        ratio=ratio,
        seeds=seeds,
        simulate=sim,
    ),
    _axis(st.sampled_from(["a.csv", "b.csv", "c.csv"])),
    _axis(st.sampled_from(["c1.json", "c2.json"])),
    st.lists(st.sampled_from(["m1", "m2"]), max_size=2, unique=True),
    _axis(st.integers(1, 512)),
    _axis(st.sampled_from(["auto", 1, 2, 4, 8])),
    _axis(st.integers(0, 9)),
    _sim,
)


@settings(max_examples=60, deadline=None)
@given(_specs)
def test_count_cells_equals_the_listed_cells(spec: SweepSpec) -> None:
    """Oracle: enumerate_cells, which lists them one by one."""
    assert count_cells(spec) == len(enumerate_cells(spec))


def _spec(**overrides: Any) -> SweepSpec:
    base: dict[str, Any] = {"traces": ["t.csv"], "coefficients": ["c.json"], "batch": [16]}
    return SweepSpec.model_validate(base | overrides)


def test_a_billion_cells_is_refused_with_the_option_that_raises_the_limit() -> None:
    axis = list(range(1, 1001))
    spec = _spec(batch=axis, ratio=axis, seeds=list(range(1000)), simulate={"steps": 10})
    with pytest.raises(InputError, match=r"1,000,000,000 cells, over the limit .*--max-cells"):
        check_sweep(spec, "s.yaml", workers=2)
    # Raising --max-cells passes the count, not the driver's memory for listing them.
    with pytest.raises(InputError, match="on the driver"):
        check_sweep(spec, "s.yaml", workers=2, max_cells=10**9)


def test_steps_of_a_trillion_are_refused_by_memory() -> None:
    spec = _spec(ratio=[2], simulate={"steps": 10**12})
    with pytest.raises(
        InputError, match=r"simulate\.steps 1,000,000,000,000 needs about 14\.6 TiB"
    ):
        check_sweep(spec, "s.yaml", workers=1)


def test_time_limit_scales_with_workers() -> None:
    """12 × 1e8 × (0.1 µs + 4096 × 15 ns) = 20.5 h: refused on 1 worker at 10 h, not on 4."""
    spec = _spec(batch=[256], ratio=[16], seeds=list(range(12)), simulate={"steps": 10**8})
    with pytest.raises(InputError, match="on 1 worker"):
        check_sweep(spec, "s.yaml", workers=1, max_hours=10)
    check_sweep(spec, "s.yaml", workers=4, max_hours=10)


@pytest.mark.parametrize(
    ("sim", "word"),
    [
        ({"steps": 100, "pipeline": ["microbatch"], "microbatches": [3]},
         "microbatches must divide"),
        ({"steps": 100, "pipeline": ["overlapped", "microbatch"], "microbatches": [2, 5]},
         "microbatches 5"),
    ],
)  # fmt: skip
def test_cross_field_rules_fail_before_any_cell(sim: dict[str, Any], word: str) -> None:
    with pytest.raises(InputError, match=word):
        check_sweep(_spec(batch=[16, 32], ratio=[2], simulate=sim), "s.yaml", workers=1)


def test_deployment_pipeline_rules_are_checked_with_a_way_out() -> None:
    """The default simulate.pipeline (the deployment's) refuses what its bundle cannot run —
    3 microbatches of 16 slots, or overlap with m = 2 — and names the simulator's own."""
    bad = [
        _spec(batch=[16], ratio=[2], microbatches=3, simulate={"steps": 100}),
        _spec(batch=[16], ratio=[2], microbatches=2, pipeline="overlapped",
              simulate={"steps": 100}),
    ]  # fmt: skip
    for spec in bad:
        with pytest.raises(InputError, match=r"simulate\.pipeline: \[overlapped\]"):
            check_sweep(spec, "s.yaml", workers=1)
    fine = _spec(batch=[16], ratio=[2], microbatches=2, pipeline="overlapped",
                 simulate={"steps": 100, "pipeline": ["overlapped"]})  # fmt: skip
    check_sweep(fine, "s.yaml", workers=1)


def test_run_sweep_refuses_before_writing(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    """The refusal comes before the output directory exists."""
    spec = write_spec(simulate={"steps": 100, "pipeline": ["microbatch"], "microbatches": [3]})
    with pytest.raises(InputError, match="microbatches"):
        run_sweep(spec, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()
