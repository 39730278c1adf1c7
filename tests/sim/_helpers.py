"""Shared helpers for the simulator tests: coefficient sets and result comparison."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.sim import SimResult

ATTENTION_BOUND = CostCoefficients(
    alpha_attn_s=2e-3,
    beta_attn_s_per_token=1e-7,
    alpha_comm_s=1e-4,
    beta_comm_s_per_token=1e-7,
    alpha_ffn_s=1e-4,
    beta_ffn_s_per_token=1e-7,
)
"""Attention dominates every step (FFN and communication far below α_A)."""

BALANCED = CostCoefficients(
    alpha_attn_s=1e-3,
    beta_attn_s_per_token=1e-8,
    alpha_comm_s=2e-4,
    beta_comm_s_per_token=1e-6,
    alpha_ffn_s=4e-3,
    beta_ffn_s_per_token=2e-5,
    gamma_comm_s_per_token=1e-7,
)
"""Attention, communication and FFN all bind somewhere in the small test sizes."""


def read_trace(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(P, D) of an Azure 2023 CSV, read with polars (independent of afdsizer.workload)."""
    import polars as pl

    df = pl.read_csv(path)
    return (
        df["ContextTokens"].to_numpy().astype(np.int64),
        df["GeneratedTokens"].to_numpy().astype(np.int64),
    )


def theta_from_arrays(prompt: npt.NDArray[np.int64], decode: npt.NDArray[np.int64]) -> float:
    """θ = E[P·D + D(D−1)/2] / E[D] from the raw arrays (docs/design.md §3), exact in floats."""
    p = prompt.astype(np.float64)
    d = decode.astype(np.float64)
    return float(np.mean(p * d + d * (d - 1) / 2) / np.mean(d))


def assert_same_result(a: SimResult, b: SimResult) -> None:
    """Every field equal exactly (nan equal to nan), series arrays included."""
    for field in dataclasses.fields(SimResult):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "series":
            assert (x is None) == (y is None)
            if x is not None:
                for sf in dataclasses.fields(x):
                    np.testing.assert_array_equal(getattr(x, sf.name), getattr(y, sf.name))
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), field.name
        else:
            assert x == y, (field.name, x, y)
