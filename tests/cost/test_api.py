"""load_coefficients and cost_coefficients with files and profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import afdsizer.cost as cost
from afdsizer.cost import COEFFICIENT_KEYS, cost_coefficients, load_coefficients
from afdsizer.errors import DataFileError, InputError

SIX = {
    "alpha_attn_s": 1e-3,
    "beta_attn_s_per_token": 1e-8,
    "alpha_comm_s": 2e-4,
    "beta_comm_s_per_token": 1e-6,
    "alpha_ffn_s": 3e-3,
    "beta_ffn_s_per_token": 2e-6,
}


def test_public_names_sorted_and_complete() -> None:
    """__all__ is sorted isort-style (constants, classes, functions; ruff RUF022), all exist."""

    def group(name: str) -> int:
        return 0 if name.isupper() else 1 if name[0].isupper() else 2

    assert cost.__all__ == sorted(cost.__all__, key=lambda n: (group(n), n))
    assert all(hasattr(cost, name) for name in cost.__all__)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_flat_files(tmp_path: Path, suffix: str) -> None:
    """A JSON or YAML file with the six keys loads; its path becomes the source."""
    path = tmp_path / f"c{suffix}"
    text = json.dumps(SIX) if suffix == ".json" else yaml.safe_dump(SIX | {"kv_capacity_tokens": 5})
    path.write_text(text)
    c = load_coefficients(path)
    assert {k: getattr(c, k) for k in COEFFICIENT_KEYS} == SIX
    assert c.source == str(path)


def test_profile_layout_and_capacity_fill(tmp_path: Path) -> None:
    """A profile keeps its coefficients under `coefficients`; a missing KV capacity is filled."""
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"afdsizer_profile": 1, "coefficients": SIX, "model": "x"}))
    c = cost_coefficients(model="llama-3.1-8b", hardware="h100-sxm", profile=path)
    assert c.alpha_ffn_s == SIX["alpha_ffn_s"]
    roof = cost_coefficients(model="llama-3.1-8b", hardware="h100-sxm")
    assert c.kv_capacity_tokens == roof.kv_capacity_tokens


def test_file_errors(tmp_path: Path) -> None:
    """Missing keys, bad values, broken JSON and non-mappings give one-line errors."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({k: v for k, v in SIX.items() if k != "alpha_ffn_s"}))
    with pytest.raises(InputError, match=r"lack key\(s\) alpha_ffn_s"):
        load_coefficients(path)
    path.write_text(json.dumps(SIX | {"beta_ffn_s_per_token": -1}))
    with pytest.raises(InputError, match="beta_ffn_s_per_token must be a finite number > 0"):
        load_coefficients(path)
    path.write_text("{")
    with pytest.raises(DataFileError, match=r"is not JSON \(line 1"):
        load_coefficients(path)
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="must hold a mapping"):
        load_coefficients(path)
