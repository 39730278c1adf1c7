"""The deployment model (microbatches, DP workers, per-GPU objective) against independent oracles.

Oracles: the event-by-event flow-shop recurrence written here, the simulator's microbatch mode,
brute-force argmax over r, and the 0.1 paper interface for m = 1.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.sim import SimConfig, simulate
from afdsizer.theory import PipelineShape, PipelineStepModel, pipeline_mean_field_rule, recommend
from afdsizer.workload import Workload

COEFFS = CostCoefficients(
    alpha_attn_s=4e-3,
    beta_attn_s_per_token=1.2e-7,
    alpha_comm_s=1e-3,
    beta_comm_s_per_token=2e-6,
    alpha_ffn_s=6e-3,
    beta_ffn_s_per_token=4e-6,
)


def flow_shop_makespan(a: list[float], c: list[float], f: list[float], layers: int) -> float:
    """The m-microbatch pipeline stepped event by event: A → C → F per layer and microbatch."""
    free_a = free_c = free_f = 0.0
    done = [0.0] * len(a)
    for _ in range(layers):
        for j in range(len(a)):
            free_a = max(free_a, done[j]) + a[j]
            free_c = max(free_c, free_a) + c[j]
            free_f = max(free_f, free_c) + f[j]
            done[j] = free_f
    return free_f


def _coefficients(draw: st.DrawFn) -> CostCoefficients:
    pos = st.floats(1e-5, 1e-2)
    slope = st.floats(1e-9, 1e-5)
    return CostCoefficients(
        alpha_attn_s=draw(pos),
        beta_attn_s_per_token=draw(st.floats(1e-10, 1e-7)),
        alpha_comm_s=draw(pos),
        beta_comm_s_per_token=draw(slope),
        alpha_ffn_s=draw(pos),
        beta_ffn_s_per_token=draw(slope),
        gamma_comm_s_per_token=draw(st.sampled_from([0.0, 1e-8, 1e-6])),
    )


@st.composite
def deployments(draw: st.DrawFn) -> tuple[CostCoefficients, PipelineStepModel, float, float]:
    c = _coefficients(draw)
    m = draw(st.integers(1, 4))
    k = draw(st.sampled_from([1, 2, 4]))
    shape = PipelineShape(
        workers_per_instance=k,
        microbatches=m,
        layers=draw(st.integers(1, 96)),
        kind=draw(st.sampled_from(["overlapped", "microbatch"])),
    )
    batch = k * m * draw(st.integers(1, 64))
    theta = draw(st.floats(10.0, 20_000.0))
    model = PipelineStepModel.build(
        c, batch=batch, shape=shape, theta_tokens=theta, slot_load_std_tokens=0.0
    )
    g_a, g_f = draw(st.integers(1, 8)), draw(st.integers(1, 16))
    return c, model, float(g_a), float(g_f)


def _stage_times(model: PipelineStepModel, r: float) -> tuple[float, float, float]:
    """Per (layer, microbatch) times a, c, f written out from the coefficients."""
    c, s = model.coefficients, model.shape
    b = model.batch / s.workers_per_instance
    tokens = r * model.batch / s.microbatches
    a = model.mb_mean_field_s  # α_A + β_A·(b/m)·θ, no spread
    comm = (
        c.alpha_comm_s
        + c.beta_comm_s_per_token * b / s.microbatches
        + c.gamma_comm_s_per_token * tokens
    )
    ffn = c.alpha_ffn_s + c.beta_ffn_s_per_token * tokens
    return a / s.layers, comm / s.layers, ffn / s.layers


def _brute_step_s(model: PipelineStepModel, r: float) -> float:
    a, c, f = _stage_times(model, r)
    m, L = model.shape.microbatches, model.shape.layers
    if model.shape.kind == "overlapped":
        return m * L * max(a, c, f)
    return flow_shop_makespan([a] * m, [c] * m, [f] * m, L)


@settings(max_examples=150, deadline=None)
@given(deployments(), st.floats(1.0, 500.0))
def test_mean_field_step_equals_the_event_recurrence(case, r) -> None:
    """With no spread the closed-form makespan is exact for the flow shop (equal microbatches)."""
    _, model, _, _ = case
    tau = float(model.step_time_s(np.array([r]))[0])
    assert tau == pytest.approx(_brute_step_s(model, r), rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(deployments())
def test_per_gpu_r_star_is_the_brute_force_argmax(case) -> None:
    """r* of the closed form maximises r·B/((g_A·r + g_F)·τ(r)), τ from the event recurrence."""
    _, model, g_a, g_f = case
    rule = pipeline_mean_field_rule(model, theta_tokens=1.0, w_attn=g_a, w_ffn=g_f)

    def objective(r: float) -> float:
        return r * model.batch / ((g_a * r + g_f) * _brute_step_s(model, r))

    assert math.isfinite(rule.r_star)
    grid = np.geomspace(1e-3, max(10 * rule.r_star, 10.0), 3000)
    best = max(objective(float(r)) for r in grid)
    assert objective(rule.r_star) >= best * (1 - 1e-9)


@settings(max_examples=40, deadline=None)
@given(deployments(), st.sampled_from(["gpu", "instance"]))
def test_integer_ratio_is_the_brute_force_argmax(case, objective) -> None:
    """recommend's r_int maximises the objective over the integers (σ = 0; τ checked above)."""
    c, model, g_a, g_f = case
    s = model.shape
    deployment = Deployment(
        attn_gpus=int(g_a) if s.workers_per_instance == 1 else s.workers_per_instance,
        attn_parallel="dp" if s.workers_per_instance > 1 else "tp",
        ffn_gpus=int(g_f),
        microbatches=s.microbatches,
        pipeline=s.kind,
        layers=s.layers,
        batch=int(model.batch),
        objective=objective,
    )
    w_a, w_f = deployment.objective_weights()
    rec = recommend(c, Workload.from_moments(1000.0, 0.0), deployment)
    flat = PipelineStepModel.build(
        c, batch=int(model.batch), shape=s, theta_tokens=1000.0, slot_load_std_tokens=0.0
    )
    assume(rec.r_int <= 5_000)  # keeps the brute force quick; the rule is the same beyond
    r = np.arange(1.0, 4 * rec.r_int + 50)
    values = r * flat.batch / ((w_a * r + w_f) * flat.step_time_s(r))
    assert rec.r_int == 1 + int(np.argmax(values))


def test_dp_workers_equal_single_gpu_instances() -> None:
    """r DP instances of k GPUs step like k·r one-GPU instances of b = B/k slots."""
    shape_dp = PipelineShape(workers_per_instance=4, microbatches=2, layers=40, kind="microbatch")
    shape_one = dataclasses.replace(shape_dp, workers_per_instance=1)
    kw = {"theta_tokens": 1500.0, "slot_load_std_tokens": 600.0}
    dp = PipelineStepModel.build(COEFFS, batch=128, shape=shape_dp, **kw)
    one = PipelineStepModel.build(COEFFS, batch=32, shape=shape_one, **kw)
    r = np.array([1.0, 3.0, 7.0])
    np.testing.assert_allclose(dp.step_time_s(r), one.step_time_s(4 * r), rtol=1e-12)


@pytest.mark.parametrize(
    "workload",
    [Workload.from_fixed_lengths(1000, 200), Workload.from_trace()],
    ids=["isl", "trace"],
)
@pytest.mark.parametrize("microbatches", [2, 3])
def test_theory_matches_the_simulators_microbatch_mode(workload: Workload, microbatches) -> None:
    """On every row of the ratio table the closed form's throughput is within 2% of the sim's."""
    layers, batch = 32, 96
    deployment = Deployment(
        microbatches=microbatches, pipeline="microbatch", layers=layers, batch=batch
    )
    rec = recommend(COEFFS, workload, deployment)
    assert workload.trace is not None
    for row in rec.ratio_table:
        config = SimConfig(
            ratio=row.ratio,
            batch=batch,
            steps=6_000,
            warmup_steps=1_000,
            seed=3,
            pipeline="microbatch",
            microbatches=microbatches,
            layers=layers,
        )
        sim = simulate(workload.trace.prompt_tokens, workload.trace.decode_tokens, COEFFS, config)
        assert row.throughput_per_instance == pytest.approx(sim.throughput_per_instance, rel=0.02)


@pytest.mark.parametrize("workload", [Workload.from_trace(), Workload.from_moments(1200.0, 700.0)])
def test_one_microbatch_reproduces_the_paper_interface(workload: Workload) -> None:
    """m = 1, free overlap, instances counted alike: the 0.1 answers, field for field."""
    c = dataclasses.replace(COEFFS, kv_capacity_tokens=400_000.0)
    new = recommend(c, workload, Deployment(objective="instance", attn_gpus=1, ffn_gpus=1))
    sampler = None if not workload.has_load_law else workload.worker_loads
    old = recommend(
        c,
        theta_tokens=workload.theta_tokens,
        slot_load_std_tokens=workload.slot_load_std_tokens,
        worker_load_samples=sampler,
    )
    for field in (
        "r_int",
        "batch",
        "regime",
        "r_int_gaussian",
        "r_int_mean_field",
        "barrier_model",
    ):
        assert getattr(new, field) == getattr(old, field), field
    for field in ("throughput_per_instance", "step_time_s", "r_star", "r_star_mean_field"):
        assert getattr(new, field) == pytest.approx(getattr(old, field), rel=1e-9), field
    assert new.throughput_per_gpu == pytest.approx(new.throughput_per_instance, rel=1e-12)


@pytest.mark.parametrize("microbatches", [1, 2, 3])
def test_throughput_per_gpu_times_gpus_is_the_bundle_rate(microbatches) -> None:
    deployment = Deployment(
        attn_gpus=4, attn_parallel="dp", ffn_gpus=8, microbatches=microbatches, layers=60
    )
    rec = recommend(COEFFS, Workload.from_fixed_lengths(2000, 500), deployment)
    assert rec.gpus_per_bundle == rec.r_int * 4 + 8
    assert rec.throughput_per_gpu * rec.gpus_per_bundle == pytest.approx(
        rec.r_int * rec.batch / rec.step_time_s, rel=1e-12
    )
    assert rec.batch % (4 * microbatches) == 0
    for row in rec.ratio_table:
        assert row.throughput_per_gpu * row.gpus == pytest.approx(
            row.ratio * rec.batch / row.step_time_s, rel=1e-12
        )
        assert row.step_time_p99_s >= row.step_time_s * (1 - 1e-12) or microbatches > 1


def test_more_microbatches_pay_more_fixed_cost_when_attention_is_cheap() -> None:
    """Hand-worked: overlapped m = 2 doubles every α; at r = 1 the FFN line 2·α_F + β_F·B binds."""
    c = CostCoefficients(
        alpha_attn_s=1e-4,
        beta_attn_s_per_token=1e-10,
        alpha_comm_s=1e-5,
        beta_comm_s_per_token=1e-9,
        alpha_ffn_s=5e-3,
        beta_ffn_s_per_token=1e-6,
    )
    shape = PipelineShape(microbatches=2, layers=1, kind="overlapped")
    model = PipelineStepModel.build(
        c, batch=100, shape=shape, theta_tokens=100.0, slot_load_std_tokens=0.0
    )
    assert model.at(1.0) == pytest.approx(2 * 5e-3 + 1e-6 * 100)


def test_worked_example_of_the_theory_page() -> None:
    """docs/theory.md, two microbatches per GPU: τ(15) = 19.922 ms by hand, 4,190 tokens/s/GPU."""
    c = CostCoefficients(
        alpha_attn_s=2e-3,
        beta_attn_s_per_token=1e-7,
        alpha_comm_s=5e-4,
        beta_comm_s_per_token=2e-6,
        alpha_ffn_s=6e-3,
        beta_ffn_s_per_token=4e-6,
    )
    flat = Workload.from_moments(1100.0, 0.0)
    deployment = Deployment(batch=128, microbatches=2, layers=40)
    rec = recommend(c, flat, deployment)
    machine = 19.508e-3 / 40 + (2 - 1 / 40) * 9.84e-3
    row = next(row for row in rec.ratio_table if row.ratio == 15)
    assert row.step_time_s == pytest.approx(machine, rel=1e-9)
    assert (rec.r_int, rec.regime, rec.gpus_per_bundle) == (15, "communication", 23)
    assert rec.throughput_per_gpu == pytest.approx(15 * 128 / (23 * machine), rel=1e-9)
    assert round(rec.throughput_per_gpu) == 4190
    assert recommend(c, flat, deployment.replace(objective="instance")).r_int == 10


def test_size_reaches_the_operating_point_of_its_linearisation() -> None:
    """The FFN line size uses is the roofline's secant around the r·B/m it recommends."""
    import afdsizer
    from afdsizer._sizing import recommend_at_operating_point, resolve_inputs

    options = {
        "model": "qwen3-30b-a3b",
        "hardware": "h200",
        "isl": 2000,
        "osl": 400,
        "microbatches": 2,
        "attn_gpus": 4,
        "attn_parallel": "dp",
        "ffn_gpus": 4,
    }
    inputs = resolve_inputs(**options)
    rec, coefficients = recommend_at_operating_point(inputs)
    assert inputs.relinearise is not None
    tokens = rec.r_int * rec.batch / rec.microbatches
    again = recommend(inputs.relinearise(tokens), inputs.workload, inputs.deployment)
    assert (again.r_int, again.batch) == (rec.r_int, rec.batch)
    assert coefficients != inputs.coefficients or tokens <= 4096
    assert afdsizer.size(**options).r_int == rec.r_int
