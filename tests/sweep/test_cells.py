"""Cells: the grid is the full product of the axes, keys are stable, seeds give common numbers."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.sweep import SimulateSpec, SweepCell, SweepSpec, cell_sim_seed, enumerate_cells


def _spec(**overrides: object) -> SweepSpec:
    base: dict[str, object] = {
        "traces": ["a.csv", "b.csv"],
        "models": ["m1"],
        "hardware": ["h1", "h2"],
        "coefficients": ["c.json"],
        "batch": [16, 64],
        "ratio": ["auto", 3],
        "seeds": [0, 7],
        "simulate": SimulateSpec(pipeline=["overlapped", "microbatch"], microbatches=[2, 4]),
    }
    base.update(overrides)
    return SweepSpec.model_validate(base)


@settings(max_examples=40, deadline=None)
@given(
    n_traces=st.integers(1, 3),
    n_batch=st.integers(1, 3),
    n_ratio=st.integers(1, 3),
    n_seeds=st.integers(1, 3),
    n_jitter=st.integers(1, 2),
    simulate=st.booleans(),
)
def test_grid_is_the_full_product(
    n_traces: int, n_batch: int, n_ratio: int, n_seeds: int, n_jitter: int, simulate: bool
) -> None:
    """Cells = brute-force product of the axes; seeds and simulator axes only when simulating."""
    spec = _spec(
        traces=[f"t{i}" for i in range(n_traces)],
        batch=list(range(1, n_batch + 1)),
        ratio=list(range(1, n_ratio + 1)),
        seeds=list(range(n_seeds)),
        simulate=SimulateSpec(jitter_cv=[0.1 * j for j in range(n_jitter)]) if simulate else None,
    )
    cells = enumerate_cells(spec)
    n_cost = 1 * 2 + 1  # models × hardware + coefficient files
    brute = list(
        itertools.product(
            spec.traces,
            range(n_cost),
            spec.batch,
            spec.ratio,
            spec.seeds if simulate else [None],
            range(n_jitter) if simulate else [None],
        )
    )
    assert len(cells) == len(brute)
    assert len({c.key for c in cells}) == len(cells)
    assert {(c.trace, c.batch, c.ratio, c.seed) for c in cells} == {
        (t, b, r, s) for t, _, b, r, s, _ in brute
    }


def test_microbatch_count_only_varies_the_microbatch_pipeline() -> None:
    """Microbatch counts multiply only ``pipeline: microbatch`` cells (no duplicate cells)."""
    cells = enumerate_cells(_spec(traces=["a"], hardware=["h1"], coefficients=[], batch=[8]))
    per_pipeline = {
        p: sorted({c.microbatches or 0 for c in cells if c.pipeline == p})
        for p in ("overlapped", "microbatch")
    }
    assert per_pipeline == {"overlapped": [0], "microbatch": [2, 4]}


def test_auto_ratio_is_none_and_theory_only_cells_have_no_seed() -> None:
    """``ratio: auto`` gives ratio None; a theory-only sweep collapses the seed axis."""
    cells = enumerate_cells(_spec(simulate=None))
    assert {c.ratio for c in cells} == {None, 3}
    assert {c.seed for c in cells} == {None}
    assert not any(c.simulate for c in cells)


def test_keys_do_not_depend_on_grid_order() -> None:
    """Reordering every axis gives the same cells with the same keys."""
    forward = {c.key: c for c in enumerate_cells(_spec())}
    reverse = _spec(
        traces=["b.csv", "a.csv"],
        hardware=["h2", "h1"],
        batch=[64, 16],
        ratio=[3, "auto"],
        seeds=[7, 0],
        simulate=SimulateSpec(pipeline=["microbatch", "overlapped"], microbatches=[4, 2]),
    )
    backward = {c.key: c for c in enumerate_cells(reverse)}
    assert forward == backward


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trace", "x"),
        ("model", "m9"),
        ("kv_dtype", "fp8"),
        ("attn_gpus", 2),
        ("batch", 17),
        ("ratio", 5),
        ("seed", 1),
        ("steps", 3),
        ("jitter_cv", 0.5),
        ("refill", "replay"),
        ("batch", None),
        ("attn_parallel", "dp"),
        ("deploy_microbatches", 2),
        ("deploy_pipeline", "microbatch"),
        ("objective", "instance"),
        ("tpot_target_s", 0.05),
    ],
)
def test_key_changes_with_every_field(field: str, value: object) -> None:
    """Any change to a cell's fields changes its key (resume never confuses two cells)."""
    cell = enumerate_cells(_spec())[0]
    assert dataclasses.replace(cell, **{field: value}).key != cell.key


def test_sim_seed_gives_common_random_numbers_across_r_b_and_cost() -> None:
    """Cells differing only in r, B, cost or simulator options share a seed; seed and trace
    axes change it."""
    cells = enumerate_cells(_spec())
    by_stream: dict[tuple[str, int | None], set[int]] = {}
    for c in cells:
        by_stream.setdefault((c.trace, c.seed), set()).add(cell_sim_seed(c))
    assert all(len(seeds) == 1 for seeds in by_stream.values())
    distinct = {next(iter(s)) for s in by_stream.values()}
    assert len(distinct) == len(by_stream) == 4


def test_sim_seed_is_a_valid_generator_seed_and_stable() -> None:
    """The seed is a non-negative 63-bit int, the same on every call (no global state)."""
    cell = SweepCell(
        trace="bundled:azure_conv_2023",
        model=None,
        hardware=None,
        coefficients="c.json",
        kv_dtype="bf16",
        attn_gpus=1,
        ffn_gpus=1,
        batch=8,
        ratio=2,
        seed=5,
        simulate=True,
    )
    seed = cell_sim_seed(cell)
    assert 0 <= seed < 2**63
    assert seed == cell_sim_seed(dataclasses.replace(cell))
    a = np.random.default_rng(seed).random(3)
    b = np.random.default_rng(cell_sim_seed(dataclasses.replace(cell, batch=64))).random(3)
    np.testing.assert_array_equal(a, b)


def test_deployment_keys_left_out_take_deployment_defaults() -> None:
    """A spec that names no deployment key sizes every cell for ``Deployment()``; keys given
    replace exactly those fields."""
    from afdsizer.deployment import Deployment

    plain = enumerate_cells(_spec(simulate=None, batch=["auto"]))[0]
    assert plain.deployment() == Deployment()
    given = enumerate_cells(
        _spec(simulate=None, batch=[32], ffn_gpus=2, microbatches=2, objective="instance")
    )[0]
    assert given.deployment() == Deployment(
        batch=32, ffn_gpus=2, microbatches=2, objective="instance"
    )


def test_spec_refuses_bad_deployment_keys() -> None:
    """A deployment key out of its range fails the spec up front, naming the key; so does
    ``batch: auto`` with a simulation (the simulator needs B)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="microbatches"):
        _spec(microbatches=0)
    with pytest.raises(ValidationError, match="attn_parallel"):
        _spec(attn_parallel="xp")
    with pytest.raises(ValidationError, match="batch: auto is for theory-only sweeps"):
        _spec(batch=["auto"])
