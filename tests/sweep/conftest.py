"""Fixtures of the sweep tests: small specs written to a temporary folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

COEFFS = {
    "alpha_attn_s": 2.0e-3,
    "beta_attn_s_per_token": 4.0e-8,
    "alpha_comm_s": 1.0e-3,
    "beta_comm_s_per_token": 2.0e-6,
    "alpha_ffn_s": 6.0e-3,
    "beta_ffn_s_per_token": 1.5e-5,
}
"""A hand-made cost case (s, s/token); Attention-bound at B = 64 on the bundled conv trace."""

TRACE_CSV = "ContextTokens,GeneratedTokens\n100,10\n300,5\n50,40\n1000,2\n20,20\n"
"""A five-request trace in the generic two-column format."""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A folder with a trace and two coefficient files beside where specs are written."""
    (tmp_path / "trace.csv").write_text(TRACE_CSV)
    (tmp_path / "coeffs.json").write_text(json.dumps(COEFFS))
    slower = {**COEFFS, "alpha_ffn_s": 9.0e-3}
    (tmp_path / "coeffs_slow.yaml").write_text(yaml.safe_dump(slower))
    return tmp_path


@pytest.fixture
def write_spec(spec_dir: Path) -> Callable[..., Path]:
    """Write a spec (base: one trace, one coefficient file, two B, two r) with overrides."""

    def _write(name: str = "spec.yaml", **overrides: Any) -> Path:
        data: dict[str, Any] = {
            "traces": ["trace.csv"],
            "coefficients": ["coeffs.json"],
            "batch": [16, 64],
            "ratio": [2, 8],
        }
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        path = spec_dir / name
        path.write_text(yaml.safe_dump(data))
        return path

    return _write
