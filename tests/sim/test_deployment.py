"""Deployments in the simulator: DP workers, GPUs per bundle, the microbatch pipeline's costs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.sim import SimConfig, simulate

from ._helpers import ATTENTION_BOUND, BALANCED


def _lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 3000, n), rng.integers(1, 120, n)


@pytest.mark.parametrize("pipeline", ["overlapped", "microbatch"])
def test_dp_instances_are_their_workers(pipeline: str) -> None:
    """r DP instances of k GPUs = r·k TP instances of B/k slots, step for step; per GPU alike.

    The kernel state is the same (r·k workers of B/k slots); only the counting differs:
    Λ per instance divides by r + 1 against r·k + 1, per GPU both divide by r·k + g_F.
    """
    p, d = _lengths(300, 1)
    r, k, b, g_f = 3, 4, 8, 8
    common = dict(steps=3000, seed=5, pipeline=pipeline, microbatches=2, layers=6,
                  jitter_cv=0.2, record_series=True, ffn_gpus=g_f)  # fmt: skip
    dp = simulate(p, d, BALANCED, SimConfig(ratio=r, batch=k * b, workers_per_instance=k,
                                            attn_gpus=k, **common))  # type: ignore[arg-type]  # fmt: skip
    tp = simulate(p, d, BALANCED, SimConfig(ratio=r * k, batch=b, attn_gpus=1, **common))  # type: ignore[arg-type]
    assert dp.series is not None and tp.series is not None
    np.testing.assert_array_equal(dp.series.step_time_s, tp.series.step_time_s)
    np.testing.assert_array_equal(dp.series.load_tokens, tp.series.load_tokens)
    assert dp.tokens_per_s == tp.tokens_per_s
    assert dp.gpus_per_bundle == tp.gpus_per_bundle == r * k + g_f
    assert dp.throughput_per_gpu == tp.throughput_per_gpu
    assert dp.throughput_per_instance == pytest.approx(
        tp.throughput_per_instance * (r * k + 1) / (r + 1), rel=1e-12
    )


@pytest.mark.parametrize(("g_a", "g_f", "k"), [(1, 8, 1), (2, 4, 1), (4, 8, 4)])
def test_per_gpu_throughput_identity(g_a: int, g_f: int, k: int) -> None:
    """throughput_per_gpu × gpus_per_bundle = tokens/s, and gpus_per_bundle = r·g_A + g_F."""
    p, d = _lengths(100, 2)
    r = 5
    res = simulate(
        p, d, ATTENTION_BOUND,
        SimConfig(ratio=r, batch=16, steps=1500, attn_gpus=g_a, ffn_gpus=g_f,
                  workers_per_instance=k),
    )  # fmt: skip
    assert res.gpus_per_bundle == r * g_a + g_f
    assert res.throughput_per_gpu * res.gpus_per_bundle == pytest.approx(res.tokens_per_s)
    assert res.throughput_per_instance * (r + 1) == pytest.approx(res.tokens_per_s)


@pytest.mark.parametrize(("m", "k", "layers"), [(1, 1, 5), (2, 1, 7), (3, 2, 4), (2, 4, 61)])
def test_microbatch_step_pays_fixed_costs_per_microbatch(m: int, k: int, layers: int) -> None:
    """Fixed lengths, all slots in step: each step is the equal-microbatch flow-shop makespan.

    Hand-derived oracle: every microbatch of b/m slots at phase q (the q-th decode step of the
    slots' requests) costs, per layer, a = (α_A + β_A·(b/m)(P + q))/L, c = (α_C + β_C·b/m +
    γ_C·N/m)/L and f = (α_F + β_F·N/m)/L with N = r·B tokens: the fixed costs are paid by each
    of the m microbatches. With S = a + c + f and p = max(a, c, f) the makespan of the m·L jobs
    through A → C → F (a job's next-layer A after its F) is max(S + (m·L − 1)·p, L·S + (m − 1)·p).
    """
    P, D, r, b = 900, 12, 3, 12
    B = k * b
    cfg = SimConfig(ratio=r, batch=B, steps=60, warmup_steps=0, pipeline="microbatch",
                    microbatches=m, layers=layers, workers_per_instance=k, attn_gpus=k,
                    record_series=True)  # fmt: skip
    c = BALANCED
    s = simulate([P], [D], c, cfg).series
    assert s is not None
    n = r * B
    for i in range(cfg.steps):
        q = i % D
        assert s.load_tokens[i] == n * (P + q)
        a = (c.alpha_attn_s + c.beta_attn_s_per_token * (b // m) * (P + q)) / layers
        cc = (c.alpha_comm_s + c.beta_comm_s_per_token * (b // m)
              + c.gamma_comm_s_per_token * (n // m)) / layers  # fmt: skip
        f = (c.alpha_ffn_s + c.beta_ffn_s_per_token * (n // m)) / layers
        total, peak = a + cc + f, max(a, cc, f)
        expected = max(total + (m * layers - 1) * peak, layers * total + (m - 1) * peak)
        assert s.step_time_s[i] == pytest.approx(expected, rel=1e-12)
        assert s.ffn_s[i] == pytest.approx(m * f * layers, rel=1e-12)  # t_F = m·F(r)


def test_from_deployment_maps_pipeline_gpus_and_workers() -> None:
    """The paper's deployment is the overlapped bundle; m >= 2 is the microbatch flow shop."""
    paper = SimConfig.from_deployment(Deployment(), ratio=4, batch=64, steps=500, seed=3)
    base = Deployment()
    assert (paper.pipeline, paper.groups_per_worker) == ("overlapped", 1)
    assert (paper.attn_gpus, paper.ffn_gpus, paper.workers_per_instance) == (
        base.attn_gpus, base.ffn_gpus, 1,
    )  # fmt: skip
    assert (paper.ratio, paper.batch, paper.steps, paper.seed) == (4, 64, 500, 3)

    dp = Deployment(attn_gpus=4, attn_parallel="dp", ffn_gpus=8, microbatches=3, layers=94)
    cfg = SimConfig.from_deployment(dp, ratio=2, batch=96)
    assert (cfg.pipeline, cfg.microbatches, cfg.layers) == ("microbatch", 3, 94)
    assert (cfg.workers_per_instance, cfg.slots_per_worker) == (4, 24)
    assert cfg.gpus_per_bundle == dp.gpus_per_bundle(2) == 16

    by_gpu = Deployment(attn_gpus=2, attn_parallel="dp", batch_per_gpu=32, microbatches=2)
    cfg = SimConfig.from_deployment(by_gpu, ratio=1, layers=8)
    assert (cfg.batch, cfg.slots_per_worker, cfg.layers) == (64, 32, 8)
    tp = SimConfig.from_deployment(Deployment(attn_gpus=2), ratio=1, batch=8)
    assert tp.workers_per_instance == 1


@pytest.mark.parametrize(
    ("deployment", "batch", "fragment"),
    [
        (Deployment(), None, "give batch"),
        (Deployment(microbatches=2), 8, "needs layers"),
        (Deployment(microbatches=2, pipeline="overlapped"), 8, "one microbatch"),
        (Deployment(microbatches=3, layers=4), 8, "microbatches must divide batch"),
        (
            Deployment(attn_gpus=4, attn_parallel="dp"),
            6,
            r"workers_per_instance \(4\) must divide batch \(6\)",
        ),
    ],
)
def test_from_deployment_refusals(deployment: Deployment, batch: int | None, fragment: str) -> None:
    """What the simulator cannot run is refused with a line naming the missing piece."""
    with pytest.raises(InputError, match=fragment):
        SimConfig.from_deployment(deployment, ratio=2, batch=batch)


def test_workers_per_instance_checks() -> None:
    """k is 1 or the instance's GPUs; microbatches divide the worker's slots."""
    with pytest.raises(InputError, match=r"must be 1 \(TP attention\) or attn_gpus = 2"):
        SimConfig(ratio=1, batch=8, workers_per_instance=4, attn_gpus=2)
    with pytest.raises(InputError, match=r"divide batch / workers_per_instance \(4\), got 3"):
        SimConfig(ratio=1, batch=8, workers_per_instance=2, attn_gpus=2,
                  pipeline="microbatch", microbatches=3)  # fmt: skip
    with pytest.raises(InputError, match="ffn_gpus must be an integer >= 1"):
        SimConfig(ratio=1, batch=8, ffn_gpus=0)
    cfg = SimConfig(ratio=1, batch=8, workers_per_instance=2, attn_gpus=2)
    assert dataclasses.replace(cfg, ratio=3).gpus_per_bundle == 3 * 2 + cfg.ffn_gpus


def test_dp_kv_capacity_is_per_worker() -> None:
    """Under DP the KV capacity bounds each GPU's B/k slots, and the error names B/k."""
    with pytest.raises(InputError, match=r"batch B/k = 8 slots does not fit.*use B <= 14"):
        simulate(
            [40], [10], BALANCED,
            SimConfig(ratio=1, batch=16, workers_per_instance=2, attn_gpus=2,
                      kv_capacity_tokens=399.0),
        )  # fmt: skip
    ok = simulate(
        [40], [10], BALANCED,
        SimConfig(ratio=1, batch=16, steps=50, workers_per_instance=2, attn_gpus=2,
                  kv_capacity_tokens=500.0),
    )  # fmt: skip
    assert ok.slot_occupancy == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pipeline": "microbatch", "microbatches": 2, "layers": 3},
        {"refill": "replay", "kv_capacity_tokens": 900.0},
        {"workers_per_instance": 2, "attn_gpus": 2, "jitter_cv": 0.3},
    ],
    ids=["overlapped", "microbatch", "replay_kv", "dp_jitter"],
)
def test_stagger_kernel_matches_reference(options: dict[str, object]) -> None:
    """Staggered starts: the compiled kernel and the reference agree exactly."""
    from ._helpers import assert_same_result

    p, d = _lengths(40, 3)
    p = p % 300
    cfg = SimConfig(ratio=3, batch=4, steps=250, seed=11, stagger=True, record_series=True,
                    **options)  # type: ignore[arg-type]  # fmt: skip
    assert_same_result(simulate(p, d, BALANCED, cfg), simulate(p, d, BALANCED, cfg,
                                                               engine="reference"))  # fmt: skip


def test_stagger_spreads_fixed_lengths_over_their_phases() -> None:
    """Fixed (P, D): staggered slots start at uniform phases and keep θ exactly per cycle.

    Aligned, every slot is at the same phase: the bundle's load swings by r·B·(D − 1) tokens
    over each cycle. Staggered, slot s sits at its own phase e_s ~ U{0 … D−1}: the load at step
    0 is r·B·P + Σ e_s (mean (D − 1)/2 per slot), and over whole cycles the mean slot load is
    still θ = P + (D − 1)/2.
    """
    P, D, r, B = 500, 101, 16, 256
    cfg = SimConfig(ratio=r, batch=B, steps=20 * D, warmup_steps=D, record_series=True)
    aligned = simulate([P], [D], ATTENTION_BOUND, cfg)
    staggered = simulate([P], [D], ATTENTION_BOUND, dataclasses.replace(cfg, stagger=True))
    assert aligned.series is not None and staggered.series is not None
    n = r * B
    mean_phase = staggered.series.load_tokens[0] / n - P
    assert mean_phase == pytest.approx((D - 1) / 2, abs=5 * ((D * D - 1) / 12 / n) ** 0.5)
    assert staggered.mean_slot_load == pytest.approx(P + (D - 1) / 2, rel=1e-12)
    assert aligned.mean_slot_load == pytest.approx(P + (D - 1) / 2, rel=1e-12)
    swing = np.ptp(aligned.series.load_tokens)
    assert swing == n * (D - 1)
    assert np.ptp(staggered.series.load_tokens) < 0.05 * swing
    assert aligned.barrier_idle == 0.0
    assert staggered.barrier_idle > 0.0  # the workers' loads now differ


def test_stagger_needs_closed_loop() -> None:
    """Open loops start empty: a staggered start is refused there."""
    with pytest.raises(InputError, match="stagger needs the closed loop"):
        SimConfig(ratio=1, batch=2, stagger=True, arrivals="poisson", arrival_rate_per_s=1.0)
