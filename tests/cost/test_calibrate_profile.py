"""A profile written by ``calibrate`` drives ``size --profile`` (issue 12, docs/design.md §10).

The profile records what it was fitted for (GPUs, parallelism, dtypes, layers) where the
sizing reads it, ``coefficients_at`` keeps every field but α_F, β_F, and the communication
rows' one-node limit is information in the ``fits`` entry, not a warning on every run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.cost._calibration_data import SAMPLE_H200

from afdsizer.cost import load_coefficients
from afdsizer.cost._crosscheck import coefficients_at

_DP = ("--attn-gpus", "4", "--attn-parallel", "dp", "--ffn-gpus", "8")
"""Four one-GPU Attention workers and an 8-GPU FFN instance: 12 GPUs, more than one node."""


def _calibrate(run_cli: Any, out: Path, model: str, *extra: str) -> dict[str, Any]:
    res = run_cli("calibrate", "--silicon", SAMPLE_H200, "--model", model, "-o", out, *extra,
                  "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "exceed the" not in res.stderr  # the 8-GPU NCCL limit is not a warning
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def test_dp_profile_records_the_deployment_where_size_reads_it(
    run_cli: Any, tmp_path: Path
) -> None:
    """Top level and ``deployment:`` carry GPUs, parallelism, dtypes and L = 32 of Llama-8B."""
    out = tmp_path / "p.yaml"
    _calibrate(run_cli, out, "llama-3.1-8b", *_DP)
    doc = yaml.safe_load(out.read_text())
    dep = doc["deployment"]
    want = {"attn_gpus": 4, "ffn_gpus": 8, "attn_parallel": "dp", "ffn_parallel": "auto",
            "kv_dtype": "bf16", "weight_dtype": "bf16", "layers": 32}  # fmt: skip
    assert {k: dep[k] for k in want} == want
    assert doc["attn_gpus"] == 4 and doc["ffn_gpus"] == 8 and doc["kv_dtype"] == "bf16"
    assert doc["coefficients"]["layers"] == 32


def test_size_runs_on_a_dp_profile_and_refuses_a_contradiction(
    run_cli: Any, tmp_path: Path
) -> None:
    """``size --profile`` takes the profile's deployment; ``--attn-gpus 2`` against it exits 2."""
    out = tmp_path / "p.yaml"
    _calibrate(run_cli, out, "llama-3.1-8b", *_DP)
    res = run_cli("size", "--profile", out, "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["attn_gpus"] == 4 and data["attn_parallel"] == "dp" and data["ffn_gpus"] == 8
    assert data["kv_capacity_tokens"] == load_coefficients(out).kv_capacity_tokens
    bad = run_cli("size", "--profile", out, "--attn-gpus", "2", "--json")
    assert bad.exit_code == 2
    assert "--attn-gpus 2 contradicts profile" in bad.stderr and "attn_gpus = 4" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_nccl_node_limit_is_a_note_in_the_comm_fit(run_cli: Any, tmp_path: Path) -> None:
    """4 + 8 GPUs exceed the sample's 8-GPU NCCL rows: said in the comm entry's ``notes``."""
    data = _calibrate(run_cli, tmp_path / "p.yaml", "llama-3.1-8b", *_DP)
    comm = next(f for f in data["fits"] if f["part"] == "comm")
    assert any("4+8 GPUs exceed the 8-GPU NCCL rows" in n for n in comm["notes"])
    assert not any("NCCL rows" in w for w in data["warnings"])
    inside = _calibrate(run_cli, tmp_path / "q.yaml", "llama-3.1-8b", "--ffn-gpus", "4")
    assert next(f for f in inside["fits"] if f["part"] == "comm")["notes"] == []


@pytest.mark.parametrize("tokens", [300.0, 5000.0])
def test_coefficients_at_keeps_everything_but_the_ffn_line(
    run_cli: Any, tmp_path: Path, tokens: float
) -> None:
    """KV capacity, layers, γ_C, source and the other four coefficients are the profile's."""
    out = tmp_path / "p.yaml"
    _calibrate(run_cli, out, "qwen3-30b-a3b", "--ffn-gpus", "8", "--ffn-ingress")
    base = load_coefficients(out)
    at = coefficients_at(out, tokens)
    assert base.gamma_comm_s_per_token > 0 and base.layers == 48
    assert base.kv_capacity_tokens is not None
    source = yaml.safe_load(out.read_text())["coefficients"]["source"]
    assert at.source == source and source.startswith("calibrated: qwen3-30b-a3b on NVIDIA H200")
    keep = {"alpha_ffn_s", "beta_ffn_s_per_token", "source"}
    for field in dataclasses.fields(base):
        if field.name not in keep:
            assert getattr(at, field.name) == getattr(base, field.name), field.name
    assert (at.alpha_ffn_s, at.beta_ffn_s_per_token) != (
        base.alpha_ffn_s,
        base.beta_ffn_s_per_token,
    )


def test_weight_dtype_option_selects_rows_or_names_what_is_missing(
    run_cli: Any, tmp_path: Path
) -> None:
    """``--weight-dtype fp8`` asks for fp8 GEMM rows, which the sample lacks: one line, exit 2."""
    out = tmp_path / "p.yaml"
    base = ("calibrate", "--silicon", SAMPLE_H200, "--model", "llama-3.1-8b", "-o", out)
    bad = run_cli(*base, "--weight-dtype", "fp8")
    assert bad.exit_code == 2 and "gemm_dtype 'fp8' has no GEMM rows" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not out.exists()
    bad = run_cli(*base, "--weight-dtype", "int4")
    assert bad.exit_code == 2 and "--weight-dtype must be one of" in bad.stderr
    data = _calibrate(run_cli, out, "llama-3.1-8b", "--weight-dtype", "bf16")
    assert data["deployment"]["weight_dtype"] == "bf16"
