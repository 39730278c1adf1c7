"""The theory's empirical barrier against the simulator (the check validate runs at scale)."""

from __future__ import annotations

import numpy as np
import pytest

from afdsizer.sim import SimConfig, simulate
from afdsizer.theory import expected_step_time_empirical_s
from afdsizer.validate import default_cases
from afdsizer.workload import bundled_trace_path, load_trace, sample_worker_loads


def test_empirical_barrier_predicts_simulated_throughput() -> None:
    """On the bundled conversation trace, Λ from the empirical worker-load law matches the sim."""
    trace = load_trace(bundled_trace_path("azure_conv_2023"))
    case = next(c for c in default_cases() if c.name == "dense70b-h100-b16")
    B = case.batch
    loads = sample_worker_loads(trace.prompt_tokens, trace.decode_tokens, batch=B, seed=0)
    ratios = np.array([4, 20, 30])
    tau = expected_step_time_empirical_s(case.coefficients, loads, batch=B, ratio=ratios)
    for r, tau_r in zip(ratios, tau, strict=True):
        config = SimConfig(ratio=int(r), batch=B, steps=6000, warmup_steps=1000, seed=1)
        sim = simulate(trace.prompt_tokens, trace.decode_tokens, case.coefficients, config)
        predicted = float(r * B / ((r + 1) * tau_r))
        assert predicted == pytest.approx(
            sim.throughput_per_instance, abs=4 * sim.throughput_stderr + 0.003 * predicted
        )
