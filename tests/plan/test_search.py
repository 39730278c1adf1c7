"""The layout search against brute-force enumeration, and its constraints."""

from __future__ import annotations

import itertools
import math

import pytest
from scipy import stats

from afdsizer.cost import load_hardware_spec, load_model_spec
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan import PlanSpace, fleet_for, plan_layouts
from afdsizer.plan._adapter import layout_coefficients
from afdsizer.theory import expected_max_std_normal
from afdsizer.workload import Workload

MODEL, HARDWARE = "qwen3-30b-a3b", "h100-sxm"
SMALL = PlanSpace(
    attn_gpus=(1, 2),
    ffn_gpus=(1, 2, 4),
    microbatches=(1, 2, 3),
    slots_per_microbatch=(4, 16, 64),
    max_ratio=8,
)


def _step(a: float, c: float, f: float, m: int, layers: int) -> float:
    slowest = max(a, c, f)
    cycle = max(m * slowest, a + c + f)
    return ((layers - 1) * cycle + a + c + f + (m - 1) * slowest) / layers


def _brute_force(
    workload: Workload, base: Deployment, budget: int | None
) -> list[tuple[float, tuple[object, ...]]]:
    """Every (layout, s, r) evaluated one at a time in plain Python; best per layout."""
    spec = load_model_spec(MODEL)
    hbm = load_hardware_spec(HARDWARE).hbm_capacity_bytes * 0.9
    theta, sigma = workload.theta_tokens, workload.slot_load_std_tokens
    z_kv = stats.norm.ppf(base.kv_quantile)
    best: list[tuple[float, tuple[object, ...]]] = []
    grid = itertools.product(SMALL.attn_gpus, ("tp", "dp"), SMALL.ffn_gpus, ("ep", "tp"),
                             SMALL.microbatches)  # fmt: skip
    for g_a, par, g_f, fpar, m in grid:
        if (par == "dp" and g_a == 1) or spec.ffn_weight_bytes / g_f > hbm:
            continue
        dep = base.replace(
            attn_gpus=g_a,
            attn_parallel=par,
            ffn_gpus=g_f,
            ffn_parallel=fpar,
            microbatches=m,
            pipeline="microbatch",
            layers=spec.num_layers,
        )
        try:
            co = layout_coefficients(
                model=MODEL, hardware=HARDWARE, deployment=dep, slot_context_tokens=theta
            )
        except InputError:
            continue
        w = g_a if par == "dp" else 1
        top = -math.inf
        for s in SMALL.slots_per_microbatch:
            for r in range(1, SMALL.max_ratio + 1):
                workers = r * w
                zr = float(expected_max_std_normal(workers))
                a = co.alpha_attn_s + co.beta_attn_s_per_token * (
                    s * theta + math.sqrt(s) * sigma * zr
                )
                c = co.alpha_comm_s + co.beta_comm_s_per_token * s
                f = co.alpha_ffn_s + co.beta_ffn_s_per_token * workers * s
                tau = _step(a, c, f, m, spec.num_layers)
                b = s * m
                kv = b * theta + z_kv * math.sqrt(b) * sigma
                gpus = r * g_a + g_f
                if co.kv_capacity_tokens is not None and kv > co.kv_capacity_tokens:
                    continue
                if base.tpot_target_s is not None and tau > base.tpot_target_s:
                    continue
                if budget is not None and gpus > budget:
                    continue
                top = max(top, r * s * m * w / (gpus * tau))
        if math.isfinite(top):
            best.append((top, (g_a, par, g_f, fpar, m)))
    return sorted(best, key=lambda t: -t[0])


@pytest.mark.parametrize(("tpot_ms", "budget"), [(None, None), (40.0, 12)])
def test_screen_ranking_equals_brute_force(tpot_ms: float | None, budget: int | None) -> None:
    """Layouts ranked by their best (B, r) exactly as a one-at-a-time enumeration ranks them."""
    workload = Workload.from_trace()
    base = Deployment(tpot_target_s=None if tpot_ms is None else tpot_ms / 1e3)
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, base=base, space=SMALL,
                        gpu_budget=budget, refine=0)  # fmt: skip
    oracle = _brute_force(workload, base, budget)
    got = [(c.objective, (c.attn_gpus, c.attn_parallel, c.ffn_gpus, c.ffn_parallel,
                          c.microbatches)) for c in plan.candidates]  # fmt: skip
    assert len(got) == len(oracle) > 4
    for (v_got, key_got), (v_ref, key_ref) in zip(got, oracle, strict=True):
        assert v_got == pytest.approx(v_ref, rel=1e-9)
        if not math.isclose(v_got, v_ref, rel_tol=1e-9):
            assert key_got == key_ref
    assert {k for _, k in got} == {k for _, k in oracle}


def test_refined_ranking_is_recommends_on_every_layout() -> None:
    """With every layout refined, each is sized by recommend and ranked by its numbers."""
    workload = Workload.from_trace()
    base = Deployment()
    tiny = PlanSpace(attn_gpus=(1, 2), attn_parallel=("tp",), ffn_gpus=(2,),
                     ffn_parallel=("ep",), microbatches=(2,), max_ratio=8)  # fmt: skip
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, base=base, space=tiny,
                        refine=10_000)  # fmt: skip
    assert len(plan.candidates) == 2
    for cand in plan.candidates:
        assert cand.source == "recommend"
        # The ranking key is recommend's own tokens/s per GPU (the objective is per GPU).
        assert cand.objective == pytest.approx(cand.throughput_per_gpu)
        assert cand.gpus == cand.ratio * cand.attn_gpus + cand.ffn_gpus
    objectives = [c.objective for c in plan.candidates]
    assert objectives == sorted(objectives, reverse=True)


def test_fleet_covers_the_rate_and_budget_binds() -> None:
    """The fleet's capacity is >= the rate; a budget below every layout is refused."""
    workload = Workload.from_trace()
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, space=SMALL, rate_per_s=40.0,
                        refine=0)  # fmt: skip
    assert plan.fleet is not None
    assert plan.fleet.requests_per_s_capacity >= 40.0
    assert plan.fleet.gpus == plan.fleet.bundles * plan.candidates[0].gpus
    with pytest.raises(InputError, match="no layout meets 1 GPUs"):
        plan_layouts(workload, model=MODEL, hardware=HARDWARE, space=SMALL, gpu_budget=1, refine=0)


def test_per_dollar_ranking_prices_each_gpu() -> None:
    """With prices per GPU-hour the objective is tokens per dollar of the bundle's GPUs."""
    workload = Workload.from_trace()
    p_a, p_f = 3.0, 1.0
    base = Deployment(price_attn_per_h=p_a, price_ffn_per_h=p_f)
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, base=base, space=SMALL,
                        refine=0)  # fmt: skip
    for c in plan.candidates[:10]:
        dollars_per_s = (c.ratio * c.attn_gpus * p_a + c.ffn_gpus * p_f) / 3600.0
        assert c.objective == pytest.approx(c.tokens_per_s / dollars_per_s)
    objectives = [c.objective for c in plan.candidates]
    assert objectives == sorted(objectives, reverse=True)


def test_fleet_for_hand_worked() -> None:
    """1,000 tokens/s per bundle, E[D] = 200: 5 req/s each; 12 req/s needs 3 bundles."""
    f = fleet_for(1000.0, 10, 12.0, 200.0)
    assert (f.bundles, f.gpus) == (3, 30)
    assert f.requests_per_s_capacity == pytest.approx(15.0)
    assert f.headroom == pytest.approx(0.2)
    assert fleet_for(1000.0, 10, 10.0, 200.0).bundles == 2


@pytest.mark.parametrize("pipeline", ["microbatch", "overlapped"])
def test_candidate_deployment_is_the_step_model_it_was_sized_with(pipeline: str) -> None:
    """m = 1 under the flow shop is the serial step: the deployment a candidate hands to
    --verify and drift carries that pipeline and the model's L, so recommend on it gives the
    candidate's own E[τ] (it used to fall back to the overlapped step at m = 1)."""
    from afdsizer.theory import recommend

    workload = Workload.from_trace()
    space = PlanSpace(attn_gpus=(1,), attn_parallel=("tp",), ffn_gpus=(2,), ffn_parallel=("ep",),
                      microbatches=(1,), max_ratio=8, pipeline=pipeline)  # fmt: skip
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, base=Deployment(), space=space,
                        refine=1)  # fmt: skip
    cand = plan.candidates[0]
    assert cand.source == "recommend"
    dep = cand.deployment(Deployment())
    want = "microbatch" if pipeline == "microbatch" else "overlapped"
    assert (dep.resolved_pipeline, dep.layers) == (want, load_model_spec(MODEL).num_layers)
    from afdsizer.plan._adapter import operating_point_coefficients

    coeffs = operating_point_coefficients(
        model=MODEL, hardware=HARDWARE, deployment=dep, tokens_per_pass=cand.ratio * cand.batch,
        slot_context_tokens=workload.theta_tokens,
    )  # fmt: skip
    rec = recommend(coeffs, workload, dep)
    (row,) = [r for r in rec.ratio_table if r.ratio == cand.ratio]
    assert row.step_time_s == pytest.approx(cand.tpot_s, rel=1e-9)
