"""--verify: the open-loop simulator on a planned bundle, beside the closed form."""

from __future__ import annotations

import pytest

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan import PlanSpace, fleet_for, plan_layouts
from afdsizer.plan._verify import verify_candidate
from afdsizer.workload import Workload

MODEL, HARDWARE = "qwen3-30b-a3b", "h100-sxm"
SPACE = PlanSpace(attn_gpus=(1, 2), ffn_gpus=(1, 2), microbatches=(2,),
                  slots_per_microbatch=(8, 32), max_ratio=8)  # fmt: skip


@pytest.fixture(scope="module")
def planned() -> tuple[Workload, object, int, float]:
    workload = Workload.from_trace()
    rate = 30.0
    plan = plan_layouts(workload, model=MODEL, hardware=HARDWARE, space=SPACE, rate_per_s=rate,
                        base=Deployment(tpot_target_s=0.05), refine=0)  # fmt: skip
    assert plan.fleet is not None
    return workload, plan.candidates[0], plan.fleet.bundles, rate


@pytest.mark.parametrize("arrivals", ["poisson", "trace"])
def test_simulated_tpot_is_the_closed_form_at_most(
    planned: tuple[Workload, object, int, float], arrivals: str
) -> None:
    """Each bundle gets λ/bundles; its open-loop TPOT is at most the full-bundle closed form."""
    workload, cand, bundles, rate = planned
    v = verify_candidate(cand, workload, model=MODEL, hardware=HARDWARE,  # type: ignore[arg-type]
                         base=Deployment(), rate_per_s=rate, bundles=bundles, arrivals=arrivals,
                         steps=8000)  # fmt: skip
    assert v.rate_per_s == pytest.approx(rate / bundles)
    assert v.completed_requests > 100
    assert v.tpot_mean_s <= v.closed_form_tpot_s * 1.02
    assert 0.0 < v.slot_occupancy <= 1.0
    assert v.queue_delay_mean_s >= 0.0


def test_verify_needs_requests() -> None:
    """A workload given by moments has no requests to simulate."""
    workload = Workload.from_moments(1000.0, 200.0)
    cand = plan_layouts(Workload.from_trace(), model=MODEL, hardware=HARDWARE, space=SPACE,
                        refine=0).candidates[0]  # fmt: skip
    with pytest.raises(InputError, match="--trace"):
        verify_candidate(cand, workload, model=MODEL, hardware=HARDWARE, base=Deployment(),
                         rate_per_s=1.0, bundles=1)  # fmt: skip
    assert fleet_for(cand.tokens_per_s, cand.gpus, 1.0, 200.0).bundles == 1
