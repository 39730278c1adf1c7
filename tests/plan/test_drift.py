"""Per-window planning of a timestamped trace against one fixed layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan import PlanSpace
from afdsizer.plan._drift import parse_window_s, plan_drift
from afdsizer.workload import Trace

SPACE = PlanSpace(attn_gpus=(1, 2), ffn_gpus=(1, 2, 4), slots_per_microbatch=(4, 16, 64),
                  max_ratio=16)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10min", 600.0), ("600s", 600.0), ("1h", 3600.0), ("90", 90.0), ("0.5m", 30.0)],
)
def test_window_lengths_parse(text: str, seconds: float) -> None:
    """Units s, min, h (and bare seconds)."""
    assert parse_window_s(text) == seconds


@pytest.mark.parametrize("text", ["ten", "10 days", "-5s", "0"])
def test_bad_windows_are_refused(text: str) -> None:
    """Anything else is one line naming --window."""
    with pytest.raises(InputError, match="--window"):
        parse_window_s(text)


def _two_phase_trace(seed: int = 0) -> Trace:
    """Ten minutes of short chats at 2 req/s, then ten of long documents at 8 req/s."""
    rng = np.random.default_rng(seed)
    t1 = np.sort(rng.uniform(0, 600, 1200))
    t2 = np.sort(rng.uniform(600, 1200, 4800))
    p = np.concatenate([rng.integers(100, 300, t1.size), rng.integers(3000, 6000, t2.size)])
    d = np.concatenate([rng.integers(50, 150, t1.size), rng.integers(200, 400, t2.size)])
    return Trace(prompt_tokens=p.astype(np.int64), decode_tokens=d.astype(np.int64),
                 arrival_s=np.concatenate([t1, t2]))  # fmt: skip


def test_drift_partitions_requests_and_orders_the_policies() -> None:
    """Windows hold every request once; schedule <= fixed layout <= fixed fleet in GPU·h."""
    trace = _two_phase_trace()
    report = plan_drift(trace, window_s=600, model="qwen3-30b-a3b", hardware="h100-sxm",
                        base=Deployment(tpot_target_s=0.05), space=SPACE, refine=0,
                        rate_scale=20.0)  # fmt: skip
    assert sum(w.requests for w in report.windows) == trace.prompt_tokens.size
    assert len(report.windows) == 2
    first, second = report.windows
    assert first.rate_per_s == pytest.approx(20 * 1200 / 600)
    assert second.theta_tokens > 5 * first.theta_tokens
    assert report.gpu_hours_reprovisioned <= report.gpu_hours_fixed_layout + 1e-9
    assert report.gpu_hours_fixed_layout <= report.gpu_hours_fixed_fleet + 1e-9
    for w in report.windows:
        assert w.best_gpus <= w.fixed_gpus  # the window's own best is never worse
    assert 0.0 <= report.loss_fixed_layout <= report.loss_fixed_fleet <= 1.0


def test_drift_needs_timestamps() -> None:
    """A trace without arrival times cannot be windowed."""
    trace = Trace(prompt_tokens=np.array([10, 20]), decode_tokens=np.array([5, 6]))
    with pytest.raises(InputError, match="timestamps"):
        plan_drift(trace, window_s=60, model="qwen3-30b-a3b", hardware="h100-sxm",
                   base=Deployment(), space=SPACE)  # fmt: skip


def test_fixed_layout_is_evaluated_on_each_window_as_size_would(tmp_path: Path) -> None:
    """The fixed layout's bundle throughput per window is size's ratio-table row for its r on
    that window's requests (with its B given), not the whole trace's figure; long-document
    windows run it slower than short-chat ones."""
    import afdsizer

    trace = _two_phase_trace()
    report = plan_drift(trace, window_s=600, model="qwen3-30b-a3b", hardware="h100-sxm",
                        base=Deployment(tpot_target_s=0.05), space=SPACE, refine=0,
                        rate_scale=20.0)  # fmt: skip
    fixed = report.fixed
    assert trace.arrival_s is not None
    t = trace.arrival_s - trace.arrival_s.min()
    for i, w in enumerate(report.windows):
        last = i == len(report.windows) - 1
        inside = (t >= w.start_s) & ((t < w.end_s) | last)
        path = tmp_path / f"window-{i}.csv"
        rows = zip(trace.prompt_tokens[inside], trace.decode_tokens[inside], strict=True)
        path.write_text("ContextTokens,GeneratedTokens\n" + "".join(f"{p},{d}\n" for p, d in rows))
        rec = afdsizer.size(
            trace=path,
            model="qwen3-30b-a3b",
            hardware="h100-sxm",
            attn_gpus=fixed.attn_gpus,
            ffn_gpus=fixed.ffn_gpus,
            attn_parallel=fixed.attn_parallel,
            ffn_parallel=fixed.ffn_parallel,
            microbatches=fixed.microbatches,
            kv_dtype=fixed.kv_dtype,
            batch=w.fixed_batch,
        )
        (row,) = [r for r in rec.ratio_table if r.ratio == fixed.ratio]
        assert w.fixed_tokens_per_s == pytest.approx(row.throughput_per_gpu * row.gpus, rel=1e-9)
    short, long = report.windows
    assert long.fixed_tokens_per_s < short.fixed_tokens_per_s
