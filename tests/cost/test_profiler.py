"""The PyTorch profiler on the CPU with tiny shapes, round-tripped through the fitter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from afdsizer.cost import cost_coefficients, load_model_spec
from afdsizer.cost._calibrate import calibrate, write_profile
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._profile_csv import read_profile_csv, write_profile_csv
from afdsizer.errors import InputError

pytest.importorskip("torch")

from afdsizer.cost._profiler import profile_model

DATA = Path(__file__).parent / "data"
GRID = {"batch_sizes": [1, 4, 16], "context_tokens": [32, 128], "ffn_tokens": [8, 32, 128]}
TINY_FIT = CostFitter(
    attention_batch_range=(1, 16), attention_context_range=(1, 1e6), ffn_tokens_range=(1, 1e6)
)


@pytest.mark.parametrize(
    ("config", "kinds"),
    [("tiny_llama.json", {"attention", "ffn_dense"}), ("tiny_deepseek.json", None)],
)
def test_profile_rows_cover_the_grid(config: str, kinds: set[str] | None) -> None:
    """One attention row per (B, s) and one FFN row per N and layer kind, all positive."""
    model = load_model_spec(DATA / config)
    rows = profile_model(model, **GRID, warmup=1, repeats=2, device="cpu", seed=3)
    expected = kinds or {"attention", "ffn_dense", "ffn_moe"}
    assert {r["kind"] for r in rows} == expected
    attn = [(r["batch_size"], r["context_tokens"]) for r in rows if r["kind"] == "attention"]
    grid = [(b, s) for b in GRID["batch_sizes"] for s in GRID["context_tokens"]]
    assert sorted(attn) == sorted(grid)
    for kind in expected - {"attention"}:
        assert [r["tokens"] for r in rows if r["kind"] == kind] == GRID["ffn_tokens"]
    assert all(r["layer_time_s"] > 0 and r["device"] == "cpu" for r in rows)
    assert all(r["dtype"] == "float32" for r in rows)


def test_profile_round_trips_through_the_fitter(tmp_path: Path) -> None:
    """profile → CSV → calibrate → profile.yaml → cost_coefficients gives the fitted numbers."""
    config = DATA / "tiny_deepseek.json"
    model = load_model_spec(config)
    rows = profile_model(model, **GRID, warmup=1, repeats=2, device="cpu")
    csv_path = tmp_path / "prof.csv"
    write_profile_csv(rows, csv_path)
    result = calibrate(model=config, profile_csv=csv_path, hardware="h100-sxm", fitter=TINY_FIT)
    c = result.coefficients
    # The per-step points are layers × the measured one-layer medians.
    meas = read_profile_csv(csv_path, model)
    first = next(r for r in rows if r["kind"] == "attention")
    i = np.flatnonzero(
        (meas.attention_batch == first["batch_size"])
        & (meas.attention_load_tokens == first["batch_size"] * first["context_tokens"])
    )
    assert meas.attention_time_s[i[0]] == pytest.approx(3 * first["layer_time_s"])
    # The reported FFN error is the fit's error on those points.
    rel = np.abs(c.ffn_time_s(meas.ffn_tokens) - meas.ffn_time_s) / meas.ffn_time_s
    assert result.fit["ffn_fit_median_rel_error"] == pytest.approx(float(np.median(rel)))
    # Communication is not measured by the profiler: it comes from the roofline, and says so.
    roof = cost_coefficients(model=config, hardware="h100-sxm")
    assert c.alpha_comm_s == roof.alpha_comm_s and result.comm_source == "roofline (h100-sxm)"
    yaml_path = tmp_path / "profile.yaml"
    write_profile(result, yaml_path)
    again = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm", profile=yaml_path)
    assert again.alpha_attn_s == c.alpha_attn_s and again.beta_ffn_s_per_token == (
        c.beta_ffn_s_per_token
    )
    assert again.kv_capacity_tokens == c.kv_capacity_tokens


def test_large_caches_skipped_and_bad_inputs_rejected() -> None:
    """KV caches above max_kv_bytes are skipped; bad grids and shards are InputErrors."""
    model = load_model_spec(DATA / "tiny_llama.json")
    rows = profile_model(
        model, batch_sizes=[1, 64], context_tokens=[8], ffn_tokens=[4], device="cpu",
        repeats=1, warmup=0, max_kv_bytes=8 * 2 * 16 * 2 * 4,
    )  # fmt: skip
    assert [r["batch_size"] for r in rows if r["kind"] == "attention"] == [1]
    with pytest.raises(InputError, match="batch_sizes must be a non-empty list"):
        profile_model(model, batch_sizes=[], context_tokens=[8], ffn_tokens=[4])
    with pytest.raises(InputError, match="attn_gpus=3 must divide the 4 attention heads"):
        profile_model(model, batch_sizes=[1], context_tokens=[8], ffn_tokens=[4], attn_gpus=3)
    moe = load_model_spec(DATA / "tiny_deepseek.json")
    with pytest.raises(InputError, match="ffn_gpus=3 must divide the 8 experts"):
        profile_model(moe, batch_sizes=[1], context_tokens=[8], ffn_tokens=[4], ffn_gpus=3)
