"""The default cases: coefficients from the cost model (the same call size makes), one hand-made
communication-bound case worked by hand, and the three regimes covered."""

from __future__ import annotations

import dataclasses

import pytest

from afdsizer._sizing import resolve_coefficients
from afdsizer.deployment import Deployment
from afdsizer.theory import mean_field_rule
from afdsizer.validate import VALIDATION_HARDWARE, default_cases, roofline_case

THETA_CONV_TOKENS = 1226.479
"""θ of the bundled conversation trace (docs/workload.md)."""


def test_roofline_cases_are_the_cost_models_numbers() -> None:
    """A roofline case holds resolve_coefficients' values for its deployment, KV limit dropped."""
    case = roofline_case(
        "x", "llama-3.1-70b", batch=64, attn_gpus=1, ffn_gpus=16, description="test"
    )
    direct = resolve_coefficients(
        deployment=Deployment(attn_gpus=1, ffn_gpus=16),
        model="llama-3.1-70b",
        hardware=VALIDATION_HARDWARE,
    )
    assert case.coefficients == dataclasses.replace(direct, kv_capacity_tokens=None)


def test_hand_made_communication_case_by_hand() -> None:
    """r_C = (α_C + β_C·B − α_F)/(β_F·B) = (1 + 12.8 − 3)/0.768 = 14.0625 binds at B = 64."""
    case = next(c for c in default_cases() if c.name == "comm-handmade-b64")
    rule = mean_field_rule(case.coefficients, theta_tokens=THETA_CONV_TOKENS, batch=case.batch)
    assert rule.regime == "communication"
    assert rule.r_communication == pytest.approx((1e-3 + 2e-4 * 64 - 3e-3) / (1.2e-5 * 64))
    assert rule.r_communication == pytest.approx(14.0625)


def test_default_cases_span_the_three_regimes_on_the_conversation_trace() -> None:
    """On the conversation trace's θ the five cases cover Attention, communication and FFN."""
    regimes = {
        mean_field_rule(c.coefficients, theta_tokens=THETA_CONV_TOKENS, batch=c.batch).regime
        for c in default_cases()
    }
    assert regimes == {"attention", "communication", "ffn"}
