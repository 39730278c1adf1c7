"""SimConfig validation and the input checks of simulate (one-line errors naming the value)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from afdsizer.errors import InputError
from afdsizer.sim import DEFAULT_WARMUP_FRAC, SimConfig, simulate

from ._helpers import BALANCED


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(ratio=0, batch=4), "ratio must be an integer >= 1, got 0"),
        (dict(ratio=2, batch=0), "batch must be an integer >= 1, got 0"),
        (dict(ratio=2, batch=4, steps=0), "steps must be an integer >= 1, got 0"),
        (dict(ratio=2, batch=4, steps=-5), "steps must be an integer >= 1, got -5"),
        (dict(ratio=1.5, batch=4), "ratio must be an integer >= 1, got 1.5"),
        (dict(ratio=True, batch=4), "ratio must be an integer >= 1, got True"),
        (dict(ratio=1, batch=4, steps=10, warmup_steps=10), "warmup_steps must be < steps"),
        (dict(ratio=1, batch=4, warmup_steps=-1), "warmup_steps must be an integer >= 0"),
        (dict(ratio=1, batch=4, seed=-1), "seed must be an integer >= 0"),
        (dict(ratio=1, batch=4, pipeline="pipelined"), "pipeline must be one of overlapped"),
        (
            dict(ratio=1, batch=5, pipeline="microbatch", microbatches=2),
            "microbatches must divide batch (5), got 2",
        ),
        (dict(ratio=1, batch=4, layers=0), "layers must be an integer >= 1"),
        (dict(ratio=1, batch=4, jitter_cv=-0.1), "jitter_cv must be a finite number >= 0"),
        (dict(ratio=1, batch=4, jitter_dist="normal"), "jitter_dist must be one of"),
        (dict(ratio=1, batch=4, refill="shuffle"), "refill must be one of resample, replay"),
        (dict(ratio=1, batch=4, arrivals="open"), "arrivals must be one of closed"),
        (dict(ratio=1, batch=4, arrivals="poisson"), "arrival_rate_per_s must be > 0"),
        (
            dict(ratio=1, batch=4, arrivals="poisson", arrival_rate_per_s=0.0),
            "arrival_rate_per_s must be > 0 requests/s",
        ),
        (dict(ratio=1, batch=4, trace_time_scale=0), "trace_time_scale must be a finite"),
        (dict(ratio=1, batch=4, kv_capacity_tokens=0), "kv_capacity_tokens must be > 0"),
        (dict(ratio=1, batch=4, batch_means=1), "batch_means must be an integer >= 2"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict[str, object], fragment: str) -> None:
    """Each broken field gives an InputError naming it, the rule and the value."""
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        SimConfig(**kwargs)  # type: ignore[arg-type]


@given(steps=st.integers(1, 10**9))
def test_default_warmup_is_a_tenth(steps: int) -> None:
    """Without warmup_steps, the first ⌊steps·0.1⌋ steps are warm-up, always < steps."""
    cfg = SimConfig(ratio=1, batch=1, steps=steps)
    assert cfg.effective_warmup_steps == int(steps * DEFAULT_WARMUP_FRAC)
    assert 0 <= cfg.effective_warmup_steps < steps


def test_config_is_frozen_and_replaceable() -> None:
    """Frozen value object; dataclasses.replace re-validates."""
    cfg = SimConfig(ratio=2, batch=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ratio = 3  # type: ignore[misc]
    assert dataclasses.replace(cfg, ratio=3).ratio == 3
    with pytest.raises(InputError, match="ratio must be"):
        dataclasses.replace(cfg, ratio=0)


CFG = SimConfig(ratio=2, batch=4, steps=20)


@pytest.mark.parametrize(
    ("prompt", "decode", "fragment"),
    [
        ([1, 2], [1], "same length, got 2 and 1"),
        ([], [], "non-empty 1-D array"),
        ([[1, 2]], [[1, 2]], "non-empty 1-D array"),
        ([1, 2], [1, 0], r"decode_tokens must be >= 1 tokens, got 0 at index 1"),
        ([-1, 2], [1, 1], r"prompt_tokens must be >= 0 tokens, got -1 at index 0"),
        ([1.5, 2], [1, 1], r"prompt_tokens must hold integers \(tokens\), got 1.5"),
        (["a"], [1], "must hold integers"),
    ],
)
def test_bad_lengths_are_rejected(prompt: object, decode: object, fragment: str) -> None:
    """Malformed length arrays give one clear line."""
    with pytest.raises(InputError, match=fragment):
        simulate(prompt, decode, BALANCED, CFG)  # type: ignore[arg-type]


def test_batch_larger_than_memory_allows() -> None:
    """B·min(P+D) above the KV capacity is refused, with the largest B that fits."""
    with pytest.raises(InputError, match=r"batch B=64 does not fit in KV memory.*use B <= 20"):
        simulate(
            [40, 500], [10, 100], BALANCED,
            SimConfig(ratio=1, batch=64, kv_capacity_tokens=1000.0),
        )  # fmt: skip


def test_request_larger_than_memory() -> None:
    """A request whose final context exceeds the capacity could never be admitted."""
    with pytest.raises(InputError, match=r"final context P\+D of 1 request\(s\) \(largest 2100"):
        simulate(
            [40, 2000], [10, 100], BALANCED, SimConfig(ratio=1, batch=2, kv_capacity_tokens=1000.0)
        )


def test_trace_arrivals_need_timestamps() -> None:
    """Open loop from the trace needs sorted, finite timestamps spanning some time."""
    cfg = SimConfig(ratio=1, batch=2, steps=10, arrivals="trace")
    with pytest.raises(InputError, match="needs arrival_s"):
        simulate([1, 2], [1, 1], BALANCED, cfg)
    with pytest.raises(InputError, match="non-decreasing"):
        simulate([1, 2], [1, 1], BALANCED, cfg, arrival_s=[1.0, 0.0])
    with pytest.raises(InputError, match=r"arrival_s must have shape \(2,\)"):
        simulate([1, 2], [1, 1], BALANCED, cfg, arrival_s=[0.0])
    with pytest.raises(InputError, match="span a positive time"):
        simulate([1, 2], [1, 1], BALANCED, cfg, arrival_s=np.zeros(2))


def test_unknown_engine() -> None:
    """engine is 'kernel' or 'reference'."""
    with pytest.raises(InputError, match="engine must be 'kernel' or 'reference'"):
        simulate([1], [1], BALANCED, CFG, engine="gpu")  # type: ignore[arg-type]
