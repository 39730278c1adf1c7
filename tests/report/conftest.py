"""Stand-in report values built from closed forms, so report tests need neither theory nor sim."""

from __future__ import annotations

import numpy as np
import pytest

from afdsizer.cost import CostCoefficients
from afdsizer.report import (
    RecommendationSummary,
    RegimeMap,
    ReportData,
    SimPoints,
    ThetaWindows,
    WorkloadSummary,
    render_report,
)

from ._report_oracles import mean_field_curves

STANDIN_BATCH = 64
STANDIN_THETA_TOKENS = 1226.5


@pytest.fixture(scope="session")
def coefficients() -> CostCoefficients:
    """Hand-picked coefficients with r_A ≈ 12 at B = 64, θ = 1226.5 (Attention-bound)."""
    return CostCoefficients(
        alpha_attn_s=2e-3,
        beta_attn_s_per_token=1e-7,
        alpha_comm_s=1e-3,
        beta_comm_s_per_token=1e-6,
        alpha_ffn_s=1e-3,
        beta_ffn_s_per_token=1.2e-5,
        source="stand-in",
    )


@pytest.fixture(scope="session")
def standin_data(coefficients: CostCoefficients) -> ReportData:
    """A full ReportData: every optional panel present."""
    batch, theta = STANDIN_BATCH, STANDIN_THETA_TOKENS
    curves = mean_field_curves(coefficients, batch=batch, theta_tokens=theta, r_max=30)
    best = int(np.argmax(curves.throughput_mean_field))
    rng = np.random.default_rng(0)
    prompt = rng.integers(1, 5000, size=500)
    decode = rng.integers(1, 800, size=500)
    windows = ThetaWindows(
        start_s=[0.0, 600.0, 1200.0],
        end_s=[600.0, 1200.0, 1800.0],
        theta_tokens=[1200.0, 1250.0, 1230.0],
        ci_low_tokens=[1150.0, 1190.0, 1180.0],
        ci_high_tokens=[1250.0, 1310.0, 1280.0],
        n_requests=[160, 170, 170],
    )
    workload = WorkloadSummary(
        prompt_tokens=prompt,
        decode_tokens=decode,
        theta_tokens=theta,
        theta_ci_tokens=(1210.0, 1243.0),
        slot_load_std_tokens=880.0,
        confidence=0.95,
        source="standin.csv",
        windows=windows,
    )
    picks = np.array([best - 2, best, best + 2])
    sim = SimPoints(
        ratios=curves.ratios[picks].astype(np.int64),
        throughput_per_instance=curves.throughput_mean_field[picks] * 0.98,
        throughput_stderr=np.array([15.0, 12.0, 14.0]),
        attention_idle=curves.attention_idle[picks],
        ffn_idle=curves.ffn_idle[picks],
        barrier_idle=np.array([0.03, 0.04, 0.05]),
        step_time_mean_s=curves.step_time_s[picks],
        steps=500,
        seed=3,
    )
    regime_map = RegimeMap(
        theta_tokens=[500.0, theta, 2000.0],
        batches=[32, batch],
        r_int=[[4, 7, 11], [7, 12, 20]],
        r_star_mean_field=[[4.0, 6.5, 11.0], [7.0, 12.0, 20.0]],
        regime_codes=[[2, 0, 0], [1, 0, 0]],
    )
    recommendation = RecommendationSummary(
        r_int=int(curves.ratios[best]),
        r_star=float(curves.ratios[best]) - 0.3,
        r_star_mean_field=float(curves.ratios[best]) - 0.4,
        regime="attention",
        batch=batch,
        throughput_per_instance=float(curves.throughput_mean_field[best]),
        step_time_s=float(curves.step_time_s[best]),
        attention_idle=float(curves.attention_idle[best]),
        ffn_idle=float(curves.ffn_idle[best]),
        barrier_overhead=0.04,
        barrier_throughput_loss=0.03,
        rounding_loss=0.002,
        theta=theta,
        batch_limit="given",
        # One GPU per instance: tokens/s per GPU is Λ, the bundle has r + 1 GPUs.
        throughput_per_gpu=float(curves.throughput_mean_field[best]),
        gpus_per_bundle=int(curves.ratios[best]) + 1,
        tpot_p99_s=1.2 * float(curves.step_time_s[best]),
        objective="throughput_per_instance",
        barrier_model="gaussian",
        attn_gpus=1,
        ffn_gpus=1,
        attn_parallel="tp",
        ffn_parallel="auto",
        microbatches=1,
        pipeline="overlapped",
        kv_dtype="bf16",
    )
    return ReportData(
        title="stand-in report",
        coefficients=coefficients,
        recommendation=recommendation,
        curves=curves,
        workload=workload,
        sim=sim,
        regime_map=regime_map,
        notes=("stand-in values",),
    )


@pytest.fixture(scope="session")
def standin_html(standin_data: ReportData) -> str:
    """The stand-in report rendered once (values are frozen, so sharing it is safe)."""
    return render_report(standin_data)
