"""The real cell function: theory and simulation rows checked against hand-worked formulas, brute
force over r, and across engines."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from afdsizer.deployment import Deployment
from afdsizer.sweep import read_results, run_sweep

from .conftest import COEFFS

# The five requests of conftest.TRACE_CSV as (P, D).
_P = np.array([100, 300, 50, 1000, 20], dtype=float)
_D = np.array([10, 5, 40, 2, 20], dtype=float)
REL_TOL = 1e-9
"""Closed forms against the same numbers computed by the library."""


def _theta_by_hand() -> float:
    """θ = Σ(P·D + D(D−1)/2) / ΣD (docs/design.md §3), straight from the five rows."""
    return float(np.sum(_P * _D + _D * (_D - 1) / 2) / np.sum(_D))


def _lambda_mean_field(batch: int, ratio: int, theta: float) -> float:
    """Λ(r) = r·B/((r+1)·max(t_A, t_C, t_F)) with the conftest coefficients (docs/design.md §4)."""
    c = COEFFS
    t_a = c["alpha_attn_s"] + c["beta_attn_s_per_token"] * batch * theta
    t_c = c["alpha_comm_s"] + c["beta_comm_s_per_token"] * batch
    t_f = c["alpha_ffn_s"] + c["beta_ffn_s_per_token"] * ratio * batch
    return ratio * batch / ((ratio + 1) * max(t_a, t_c, t_f))


def _comparable(path: Path) -> pl.DataFrame:
    table = read_results(path)
    return table.select([c for c in table.columns if not c.endswith("_wall_s")])


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A 2-worker in-process Dask cluster."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        # Free ports chosen by the OS: a busy 8787/8786 must not fail the suite.
        scheduler_port=0,
        dashboard_address=":0",
    ) as cluster:
        yield cluster.scheduler_address


def test_theory_columns_match_hand_worked_mean_field(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """θ, r*_mf = max{r_A, r_C, r_peak} (per GPU: r_peak = √(g_F·α_F/(g_A·β_F·B)), the default
    deployment's objective) and the mean-field Λ(r) and tokens/s per GPU match formulas worked
    by hand."""
    ratios = [1, 2, 3, 5, 8, 13]
    summary = run_sweep(write_spec(batch=[16, 64], ratio=ratios), tmp_path / "o", workers=1)
    assert summary.cells_failed == 0
    table = read_results(tmp_path / "o")
    theta = _theta_by_hand()
    c = COEFFS
    g_a, g_f = Deployment().attn_gpus, Deployment().ffn_gpus
    for row in table.iter_rows(named=True):
        B, r = row["batch"], row["ratio"]
        assert row["theta_tokens"] == pytest.approx(theta, rel=REL_TOL)
        t_a = c["alpha_attn_s"] + c["beta_attn_s_per_token"] * B * theta
        t_c = c["alpha_comm_s"] + c["beta_comm_s_per_token"] * B
        r_a = (t_a - c["alpha_ffn_s"]) / (c["beta_ffn_s_per_token"] * B)
        r_c = (t_c - c["alpha_ffn_s"]) / (c["beta_ffn_s_per_token"] * B)
        r_peak = math.sqrt(g_f * c["alpha_ffn_s"] / (g_a * c["beta_ffn_s_per_token"] * B))
        assert row["r_star_mean_field"] == pytest.approx(max(r_a, r_c, r_peak), rel=REL_TOL)
        assert row["theory_throughput_per_instance_mean_field"] == pytest.approx(
            _lambda_mean_field(B, r, theta), rel=REL_TOL
        )
        # The barrier only slows the step down (E[max] >= mean).
        assert row["theory_throughput_per_instance"] <= (
            row["theory_throughput_per_instance_mean_field"] * (1 + REL_TOL)
        )
        assert row["gpus_per_bundle"] == r * g_a + g_f
        tau = row["theory_step_time_s"]
        assert row["theory_throughput_per_gpu"] == pytest.approx(
            r * B / ((r * g_a + g_f) * tau), rel=REL_TOL
        )
        assert row["theory_throughput_per_instance"] == pytest.approx(
            r * B / ((r + 1) * tau), rel=REL_TOL
        )
        assert row["barrier_model"] == "empirical"  # the trace's law, as size uses
        assert not row["simulate"]
        assert row["sim_throughput_per_instance"] is None


def test_auto_ratio_is_the_brute_force_best_integer(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """The ``auto`` cell's r maximises the barrier-aware tokens/s per GPU (the default
    objective) over an explicit grid of every r."""
    ratios: list[int | str] = ["auto", *range(1, 40)]
    run_sweep(write_spec(batch=[16, 64], ratio=ratios), tmp_path / "o", workers=1)
    table = read_results(tmp_path / "o")
    for batch in (16, 64):
        rows = table.filter(pl.col("batch") == batch)
        auto = rows.filter(pl.col("ratio_auto")).row(0, named=True)
        grid = rows.filter(~pl.col("ratio_auto"))
        best = grid.sort("theory_throughput_per_gpu", descending=True).row(0, named=True)
        assert best["ratio"] < 39, "grid too short to contain the optimum"
        assert auto["ratio"] == auto["r_int"] == best["ratio"]
        assert auto["theory_throughput_per_gpu"] == pytest.approx(
            best["theory_throughput_per_gpu"], rel=REL_TOL
        )


def test_simulated_cells_inline_and_dask_agree_and_track_theory(
    write_spec: Callable[..., Path], tmp_path: Path, dask_scheduler: str
) -> None:
    """Real theory + simulation: inline and 2-worker Dask tables are identical except *_wall_s;
    the simulated Λ is near the theory and the realised slot load near θ."""
    spec = write_spec(
        traces=["bundled:azure_conv_2023"],
        batch=[16],
        ratio=["auto", 2],
        seeds=[0, 1],
        simulate={"steps": 3000, "warmup_steps": 500, "jitter_cv": [0.0, 0.1]},
    )
    inline = run_sweep(spec, tmp_path / "inline", workers=1)
    assert (inline.cells_run, inline.cells_failed) == (8, 0)
    run_sweep(spec, tmp_path / "dask", scheduler=dask_scheduler)
    reference = _comparable(tmp_path / "inline")
    assert_frame_equal(_comparable(tmp_path / "dask"), reference)
    for row in reference.iter_rows(named=True):
        assert row["sim_throughput_per_instance"] == pytest.approx(
            row["theory_throughput_per_instance"], rel=0.15
        )
        assert row["sim_mean_slot_load_tokens"] == pytest.approx(row["theta_tokens"], rel=0.25)
    # Seeds differ across replicates and are shared across r (common random numbers).
    seeds = reference.group_by("seed").agg(pl.col("sim_seed").n_unique().alias("n"))
    assert seeds["n"].to_list() == [1, 1]
    assert reference["sim_seed"].n_unique() == 2


def test_theory_cells_on_a_process_pool_match_inline(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """The real theory on 2 worker processes gives the inline table (except *_wall_s)."""
    spec = write_spec(ratio=["auto", 1, 2, 4], coefficients=["coeffs.json", "coeffs_slow.yaml"])
    run_sweep(spec, tmp_path / "inline", workers=1)
    pool = run_sweep(spec, tmp_path / "pool", workers=2)
    assert (pool.cells_run, pool.cells_failed, pool.cells_lost) == (16, 0, 0)
    assert_frame_equal(_comparable(tmp_path / "pool"), _comparable(tmp_path / "inline"))


def test_batch_beyond_kv_capacity_is_recorded_not_fatal(
    write_spec: Callable[..., Path], spec_dir: Path, tmp_path: Path
) -> None:
    """A B whose load cannot fit in KV memory fails that cell with the theory's message."""
    import json

    tight = {**COEFFS, "kv_capacity_tokens": 20 * _theta_by_hand()}
    (spec_dir / "tight.json").write_text(json.dumps(tight))
    summary = run_sweep(
        write_spec(coefficients=["tight.json"], batch=[4, 64], ratio=[2]),
        tmp_path / "o",
        workers=1,
    )
    assert (summary.cells_run, summary.cells_failed) == (2, 1)
    table = read_results(tmp_path / "o")
    failed = table.filter(pl.col("error").is_not_null()).row(0, named=True)
    assert failed["batch"] == 64
    assert failed["error"].startswith("InputError: ")
    assert "\n" not in failed["error"]


def test_auto_cell_is_what_size_deploys_on_a_deployment(
    write_spec: Callable[..., Path], spec_dir: Path, tmp_path: Path
) -> None:
    """A ``ratio: auto`` cell on a non-default deployment (2-GPU FFN, two microbatches, ideal
    overlap) deploys the r of ``afdsizer.size`` on the same inputs, at the same tokens/s per GPU."""
    import afdsizer

    deployment = {"ffn_gpus": 2, "microbatches": 2, "pipeline": "overlapped"}
    spec = write_spec(traces=["bundled:azure_conv_2023"], batch=[32], ratio=["auto"], **deployment)
    run_sweep(spec, tmp_path / "o", workers=1)
    row = read_results(tmp_path / "o").row(0, named=True)
    rec = afdsizer.size(coeffs=spec_dir / "coeffs.json", batch=32, **deployment)
    assert row["error"] is None
    assert (row["ratio"], row["gpus_per_bundle"]) == (rec.r_int, rec.gpus_per_bundle)
    assert row["theory_throughput_per_gpu"] == pytest.approx(rec.throughput_per_gpu, rel=REL_TOL)
    assert (row["deploy_microbatches"], row["ffn_gpus"]) == (2, 2)


def test_simulated_cell_runs_the_deployment_it_sizes(
    write_spec: Callable[..., Path], spec_dir: Path, tmp_path: Path
) -> None:
    """``simulate.pipeline`` defaults to the cell's deployment: 2 DP workers, 2 microbatches
    through 8 layers. The row equals the simulator run on that deployment by hand (same seed,
    every slot busy) and tracks the theory columns sized on it."""
    from afdsizer.cost import load_coefficients
    from afdsizer.sim import SimConfig, simulate
    from afdsizer.workload import bundled_trace_path, load_trace

    deployment = {"attn_gpus": 2, "attn_parallel": "dp", "microbatches": 2, "layers": 8}
    spec = write_spec(
        traces=["bundled:azure_conv_2023"],
        batch=[32],
        ratio=["auto", 3],
        simulate={"steps": 3000, "warmup_steps": 500},
        **deployment,
    )
    assert run_sweep(spec, tmp_path / "o", workers=1).cells_failed == 0
    trace = load_trace(bundled_trace_path("azure_conv_2023"))
    coefficients = load_coefficients(spec_dir / "coeffs.json")
    for row in read_results(tmp_path / "o").iter_rows(named=True):
        assert row["pipeline"] == "deployment"
        config = SimConfig.from_deployment(
            Deployment(**deployment),  # type: ignore[arg-type]
            ratio=row["ratio"],
            batch=32,
            steps=3000,
            warmup_steps=500,
            seed=row["sim_seed"],
        )
        assert (config.pipeline, config.workers_per_instance) == ("microbatch", 2)
        by_hand = simulate(trace.prompt_tokens, trace.decode_tokens, coefficients, config)
        assert row["sim_throughput_per_instance"] == by_hand.throughput_per_instance
        assert row["sim_throughput_per_instance"] == pytest.approx(
            row["theory_throughput_per_instance"], rel=0.05
        )


def test_simulated_roofline_cell_takes_the_models_layers(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """m = 2 on a roofline case without a ``layers`` key: the simulation runs the model's own
    L (as the theory does), instead of failing the cell for want of layers."""
    spec = write_spec(
        traces=["bundled:azure_conv_2023"],
        coefficients=None,
        models=["llama-3.1-8b"],
        hardware=["h100-sxm"],
        microbatches=2,
        batch=[32],
        ratio=[2],
        simulate={"steps": 600, "warmup_steps": 100},
    )
    summary = run_sweep(spec, tmp_path / "o", workers=1)
    row = read_results(tmp_path / "o").row(0, named=True)
    assert (summary.cells_failed, row["error"]) == (0, None)
    assert row["sim_throughput_per_instance"] == pytest.approx(
        row["theory_throughput_per_instance"], rel=0.1
    )
