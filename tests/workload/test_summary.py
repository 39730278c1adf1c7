"""Streaming summary against in-memory numpy oracles, windows, and streaming validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import REL_TOL_CLOSED_FORM, TRACES, require_shared

from afdsizer.errors import InputError, TraceError
from afdsizer.workload import (
    bundled_trace_path,
    estimate_slot_load,
    load_trace,
    parse_window,
    summarize_trace,
)

CONV = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
SHAREGPT = TRACES / "dataset_length_stats" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"


@pytest.mark.parametrize("path", [CONV, SHAREGPT], ids=["azure-conv", "sharegpt"])
def test_streamed_summary_equals_in_memory_numpy(path: Path) -> None:
    """Every streamed figure equals numpy on the loaded arrays (θ, CI, σ, percentiles, corr)."""
    trace = load_trace(require_shared(path))
    s = summarize_trace(path)
    est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
    P, D = trace.prompt_tokens.astype(float), trace.decode_tokens.astype(float)
    assert s.rows == trace.n_requests
    assert s.slot_load.theta_tokens == pytest.approx(est.theta_tokens, rel=REL_TOL_CLOSED_FORM)
    assert s.slot_load.theta_ci_tokens == pytest.approx(est.theta_ci_tokens, rel=1e-9)
    assert s.slot_load.sigma2_tokens2 == pytest.approx(est.sigma2_tokens2, rel=1e-9)
    for q in (50, 90, 99):
        assert s.prompt.percentiles_tokens[q] == pytest.approx(np.percentile(P, q))
        assert s.decode.percentiles_tokens[q] == pytest.approx(np.percentile(D, q))
    assert s.prompt.mean_tokens == pytest.approx(P.mean())
    assert (s.decode.min_tokens, s.decode.max_tokens) == (D.min(), D.max())
    assert s.corr_prompt_decode == pytest.approx(np.corrcoef(P, D)[0, 1], abs=1e-12)


def test_readme_arrival_figures() -> None:
    """Azure conv: span 3,502 s and 5.53 requests/s, as the traces README prints them."""
    s = summarize_trace(require_shared(CONV))
    assert s.span_s is not None
    assert round(s.span_s) == 3_502
    assert s.arrival_rate_per_s == pytest.approx(5.53, abs=0.005)
    assert round(s.corr_prompt_decode, 2) == -0.11


def test_no_timestamps_no_arrivals_and_no_windows() -> None:
    """Length-only traces have no span or rate, and refuse --window with a clear error."""
    s = summarize_trace(require_shared(SHAREGPT))
    assert (s.span_s, s.arrival_rate_per_s, s.windows) == (None, None, ())
    with pytest.raises(InputError, match="needs arrival times"):
        summarize_trace(SHAREGPT, window_s=60.0)


@pytest.mark.parametrize("window_s", [300.0, 600.0, 1_000.0])
def test_windows_equal_estimates_on_arrival_slices(window_s: float) -> None:
    """θ per window equals the estimator on the requests arriving in [start, end)."""
    trace = load_trace(bundled_trace_path())
    s = summarize_trace(bundled_trace_path(), window_s=window_s)
    assert trace.arrival_s is not None
    assert sum(w.rows for w in s.windows) == s.rows
    assert len(s.windows) == math.floor(trace.arrival_s.max() / window_s) + 1
    for w in s.windows:
        inside = (trace.arrival_s >= w.start_s) & (trace.arrival_s < w.end_s)
        est = estimate_slot_load(trace.prompt_tokens[inside], trace.decode_tokens[inside])
        assert w.rows == int(inside.sum())
        assert w.slot_load.theta_tokens == pytest.approx(est.theta_tokens, rel=1e-9)
        assert w.slot_load.theta_ci_tokens == pytest.approx(est.theta_ci_tokens, rel=1e-9)
        assert w.mean_decode_tokens == pytest.approx(trace.decode_tokens[inside].mean())


def test_bootstrap_summary_is_seeded() -> None:
    """ci='bootstrap' gives the estimator's bootstrap interval, reproducible for a seed."""
    a = summarize_trace(bundled_trace_path("azure_code_2023"), ci="bootstrap", n_bootstrap=100)
    b = summarize_trace(bundled_trace_path("azure_code_2023"), ci="bootstrap", n_bootstrap=100)
    assert a == b
    assert a.slot_load.ci_method == "bootstrap"
    low, high = a.slot_load.theta_ci_tokens
    assert low < a.slot_load.theta_tokens < high


def _write_csv(path: Path, prompt: list[str], decode: list[str]) -> Path:
    rows = "".join(f"{p},{d}\n" for p, d in zip(prompt, decode, strict=True))
    path.write_text("num_prefill_tokens,num_decode_tokens\n" + rows)
    return path


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**5), st.integers(1, 10**4)), min_size=3, max_size=40),
    st.integers(0, 39),
    st.sampled_from(["x", "-1", "0.5", "nan"]),
)
def test_streaming_validation_names_the_line(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, int]], bad: int, cell: str
) -> None:
    """The streamed path names the same line as the in-memory loader, and drops like it."""
    bad %= len(rows)
    prompt = [str(p) for p, _ in rows]
    prompt[bad] = cell
    path = _write_csv(tmp_path_factory.mktemp("s") / "t.csv", prompt, [str(d) for _, d in rows])
    with pytest.raises(TraceError, match=rf"t\.csv line {bad + 2}, column 'num_prefill_tokens'"):
        summarize_trace(path)
    s = summarize_trace(path, drop_invalid=True)
    kept = [r for i, r in enumerate(rows) if i != bad]
    est = estimate_slot_load([p for p, _ in kept], [d for _, d in kept])
    assert (s.rows, s.dropped_rows) == (len(kept), 1)
    assert s.slot_load.theta_tokens == pytest.approx(est.theta_tokens, rel=1e-9)


def test_large_generated_trace_streams(tmp_path: Path) -> None:
    """A 200k-row generated Mooncake-style JSONL streams to the exact θ of its pairs."""
    rng = np.random.default_rng(11)
    n = 200_000
    P = rng.integers(0, 30_000, size=n)
    D = rng.geometric(1 / 200, size=n)
    path = tmp_path / "big.jsonl"
    pl.DataFrame(
        {"timestamp": np.arange(n) * 7, "input_length": P, "output_length": D}
    ).write_ndjson(path)
    s = summarize_trace(path, window_s=120.0)
    theta = float(np.sum(P * D + D * (D - 1) / 2) / np.sum(D))
    assert s.slot_load.theta_tokens == pytest.approx(theta, rel=REL_TOL_CLOSED_FORM)
    assert s.span_s == pytest.approx((n - 1) * 7 / 1000)
    assert s.windows[0].arrival_rate_per_s == pytest.approx(1000 / 7, rel=1e-3)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("10min", 600.0), ("10m", 600.0), ("1h", 3600.0), ("1.5h", 5400.0),
     ("500ms", 0.5), ("90", 90.0), (" 2 d ", 172_800.0), ("10MIN", 600.0)],
)  # fmt: skip
def test_parse_window(text: str, seconds: float) -> None:
    """Window strings with units parse to seconds."""
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10 parsecs", "-5s", "0s", "1h30"])
def test_parse_window_rejects(text: str) -> None:
    """Bad window strings raise InputError quoting the value."""
    with pytest.raises(InputError, match="--window must be"):
        parse_window(text)


def test_windows_of_an_unsorted_trace(tmp_path: Path) -> None:
    """A straggler earlier than the first rows gets its own window; slices still match."""
    n = 10_050
    t = np.arange(n, dtype=float)
    t[-1] = -95.0  # late row with the earliest clock, beyond the rows sampled first
    rng = np.random.default_rng(2)
    P, D = rng.integers(0, 500, size=n), rng.integers(1, 60, size=n)
    path = tmp_path / "u.csv"
    pl.DataFrame({"t": t, "p": P, "d": D}).write_csv(path)
    s = summarize_trace(path, prompt_col="p", decode_col="d", time_col="t", window_s=60.0)
    arrival = t - t.min()
    assert s.windows[0].start_s == pytest.approx(-60.0 + 95.0 - 60.0)
    assert sum(w.rows for w in s.windows) == n
    for w in s.windows:
        inside = (arrival >= w.start_s) & (arrival < w.end_s)
        assert w.rows == int(inside.sum())
        est = estimate_slot_load(P[inside], D[inside])
        assert w.slot_load.theta_tokens == pytest.approx(est.theta_tokens, rel=1e-9)


def test_bootstrap_windows_agree_with_delta_windows() -> None:
    """Per-window bootstrap intervals sit on the same θ with widths near the delta ones."""
    delta = summarize_trace(bundled_trace_path(), window_s=1_200.0)
    boot = summarize_trace(bundled_trace_path(), window_s=1_200.0, ci="bootstrap", n_bootstrap=200)
    assert len(boot.windows) == len(delta.windows) == 3
    for b, d in zip(boot.windows, delta.windows, strict=True):
        assert b.slot_load.ci_method == "bootstrap"
        assert b.slot_load.theta_tokens == pytest.approx(d.slot_load.theta_tokens, rel=1e-12)
        assert b.slot_load.theta_se_tokens == pytest.approx(d.slot_load.theta_se_tokens, rel=0.3)
