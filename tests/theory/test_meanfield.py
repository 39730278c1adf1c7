"""Mean-field rule: closed-form r* against brute force, regimes, hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError
from afdsizer.theory import mean_field_rule, step_time_mean_field_s, throughput_mean_field

# A fine log grid of r: 1e-4 … 1e6 with ~1.2e-4 relative spacing.
R_GRID = np.geomspace(1e-4, 1e6, 200_001)
GRID_STEP = math.log(R_GRID[1] / R_GRID[0])


def _terms(c: CostCoefficients, theta: float, batch: int, r: float) -> dict[str, float]:
    """t_A, t_C(r), t_F(r) written out from docs/design.md §2 (independent of the library)."""
    return {
        "attention": c.alpha_attn_s + c.beta_attn_s_per_token * batch * theta,
        "communication": c.alpha_comm_s
        + c.beta_comm_s_per_token * batch
        + c.gamma_comm_s_per_token * r * batch,
        "ffn": c.alpha_ffn_s + c.beta_ffn_s_per_token * r * batch,
    }


def _brute_objective(
    c: CostCoefficients, theta: float, batch: int, r: np.ndarray, w_a: float, w_f: float
) -> np.ndarray:
    t_a = c.alpha_attn_s + c.beta_attn_s_per_token * batch * theta
    t_c = c.alpha_comm_s + c.beta_comm_s_per_token * batch + c.gamma_comm_s_per_token * r * batch
    t_f = c.alpha_ffn_s + c.beta_ffn_s_per_token * r * batch
    return r * batch / ((w_a * r + w_f) * np.maximum(np.maximum(t_a, t_c), t_f))


coefficient_sets = st.builds(
    CostCoefficients,
    alpha_attn_s=st.floats(-5, -2).map(lambda e: 10.0**e),
    beta_attn_s_per_token=st.floats(-11, -8).map(lambda e: 10.0**e),
    alpha_comm_s=st.floats(-5, -2).map(lambda e: 10.0**e),
    beta_comm_s_per_token=st.floats(-8, -5).map(lambda e: 10.0**e),
    alpha_ffn_s=st.floats(-5, -2).map(lambda e: 10.0**e),
    beta_ffn_s_per_token=st.floats(-8, -5).map(lambda e: 10.0**e),
    gamma_comm_s_per_token=st.one_of(st.just(0.0), st.floats(-9, -5).map(lambda e: 10.0**e)),
)


@settings(max_examples=150, deadline=None)
@given(
    c=coefficient_sets,
    theta=st.floats(10.0, 20_000.0),
    batch=st.integers(1, 1024),
    prices=st.one_of(st.none(), st.tuples(st.floats(0.1, 10.0), st.floats(0.1, 10.0))),
)
def test_closed_form_is_brute_force_argmax(
    c: CostCoefficients, theta: float, batch: int, prices: tuple[float, float] | None
) -> None:
    """r* equals the arg-max of the objective on a fine grid, and the regime is the term binding
    just below it."""
    w_a, w_f = prices if prices is not None else (1.0, 1.0)
    rule = mean_field_rule(
        c,
        theta_tokens=theta,
        batch=batch,
        price_attn_per_h=None if prices is None else w_a,
        price_ffn_per_h=None if prices is None else w_f,
    )
    assume(3e-4 < rule.r_star < 3e5)
    values = _brute_objective(c, theta, batch, R_GRID, w_a, w_f)
    r_grid = R_GRID[int(np.argmax(values))]
    assert abs(math.log(rule.r_star / r_grid)) <= 2 * GRID_STEP
    best_closed = _brute_objective(c, theta, batch, np.array([rule.r_star]), w_a, w_f)[0]
    assert best_closed >= values.max() * (1 - 1e-12)

    # Regime oracle: the largest term just below the optimum, where that is unambiguous.
    labels = []
    for shrink in (1e-3, 1e-4):
        terms = _terms(c, theta, batch, rule.r_star * (1 - shrink))
        top, second = sorted(terms.values(), reverse=True)[:2]
        assume(top > second * (1 + 1e-9))
        labels.append(max(terms, key=terms.__getitem__))
    assume(labels[0] == labels[1])
    assert rule.regime == labels[0]


def test_paper_first_version_case_hand_worked() -> None:
    """The paper's Ascend 910C case (units: device cycles) gives r_A = 203/(0.083·256) by hand."""
    c = CostCoefficients(
        alpha_attn_s=50.0,
        beta_attn_s_per_token=0.00165,
        alpha_comm_s=20.0,
        beta_comm_s_per_token=0.022,
        alpha_ffn_s=100.0,
        beta_ffn_s_per_token=0.083,
    )
    rule = mean_field_rule(c, theta_tokens=600.0, batch=256)
    t_a = 50.0 + 0.00165 * 256 * 600.0  # 303.44
    assert rule.t_attn_s == pytest.approx(t_a)
    assert rule.r_attention == pytest.approx((t_a - 100.0) / (0.083 * 256))  # ≈ 9.574
    assert rule.r_communication == pytest.approx((20.0 + 0.022 * 256 - 100.0) / (0.083 * 256))
    assert rule.r_peak == pytest.approx(math.sqrt(100.0 / (0.083 * 256)))
    assert rule.regime == "attention"
    assert rule.r_star == rule.r_attention


def test_regimes_each_reachable() -> None:
    """Each regime appears when its term dominates: slow Attention, slow links, big FFN overhead."""
    base = dict(
        alpha_attn_s=1e-3,
        beta_attn_s_per_token=1e-8,
        alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-7,
        alpha_ffn_s=5e-4,
        beta_ffn_s_per_token=1e-6,
    )
    att = mean_field_rule(CostCoefficients(**base), theta_tokens=1000.0, batch=100)
    comm = mean_field_rule(
        CostCoefficients(**{**base, "beta_comm_s_per_token": 1e-4}), theta_tokens=1000.0, batch=100
    )
    ffn = mean_field_rule(
        CostCoefficients(**{**base, "alpha_ffn_s": 1.0}), theta_tokens=1000.0, batch=100
    )
    assert (att.regime, comm.regime, ffn.regime) == ("attention", "communication", "ffn")
    # Communication-bound: t_C = 1e-4 + 1e-2 = 0.0101 s; r_C = (0.0101 − 5e-4)/(1e-6·100) = 96.
    assert comm.r_star == pytest.approx(96.0)
    assert ffn.r_star == pytest.approx(math.sqrt(1.0 / (1e-6 * 100)))


def test_gamma_comm_peak_is_comm_line_optimum() -> None:
    """With γ_C > β_F the communication line always binds past Attention and Λ peaks at
    sqrt((α_C + β_C·B)/(γ_C·B)) (docs/design.md §4)."""
    c = CostCoefficients(
        alpha_attn_s=1e-4,
        beta_attn_s_per_token=1e-10,
        alpha_comm_s=5e-3,
        beta_comm_s_per_token=1e-6,
        alpha_ffn_s=1e-4,
        beta_ffn_s_per_token=1e-7,
        gamma_comm_s_per_token=1e-6,
    )
    rule = mean_field_rule(c, theta_tokens=100.0, batch=64)
    assert rule.regime == "communication"
    assert rule.r_star == pytest.approx(math.sqrt((5e-3 + 64e-6) / (1e-6 * 64)))
    assert rule.r_communication == math.inf


def test_lambda_vectorised_matches_formula() -> None:
    """Λ(r) over an array equals r·B/((r+1)·max(t_A, t_C, t_F)) term by term."""
    c = CostCoefficients(
        alpha_attn_s=1e-3,
        beta_attn_s_per_token=1e-8,
        alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-7,
        alpha_ffn_s=5e-4,
        beta_ffn_s_per_token=1e-6,
        gamma_comm_s_per_token=2e-8,
    )
    r = np.array([1.0, 2.5, 15.0, 40.0])
    expected = [x * 100 / ((x + 1) * max(_terms(c, 1000.0, 100, x).values())) for x in r]
    np.testing.assert_allclose(
        throughput_mean_field(c, theta_tokens=1000.0, batch=100, ratio=r), expected, rtol=1e-12
    )
    np.testing.assert_allclose(
        step_time_mean_field_s(c, theta_tokens=1000.0, batch=100, ratio=r),
        [max(_terms(c, 1000.0, 100, x).values()) for x in r],
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"theta_tokens": 0.0, "batch": 10}, "theta_tokens .* must be a finite number > 0"),
        ({"theta_tokens": -5.0, "batch": 10}, "got -5.0"),
        ({"theta_tokens": 100.0, "batch": 0}, r"batch \(B, slots per Attention instance\)"),
        ({"theta_tokens": 100.0, "batch": 2.5}, "integer >= 1, got 2.5"),
        (
            {"theta_tokens": 100.0, "batch": 8, "price_attn_per_h": 1.0},
            "price_attn_per_h and price_ffn_per_h go together",
        ),
        (
            {"theta_tokens": 100.0, "batch": 8, "price_attn_per_h": 1.0, "price_ffn_per_h": 0.0},
            "price_ffn_per_h must be a finite price",
        ),
    ],
)
def test_errors_name_parameter_rule_and_value(kwargs: dict[str, float], fragment: str) -> None:
    """Bad θ, B or prices raise one InputError line naming the parameter, rule and value."""
    c = CostCoefficients(
        alpha_attn_s=1e-3,
        beta_attn_s_per_token=1e-8,
        alpha_comm_s=1e-4,
        beta_comm_s_per_token=1e-7,
        alpha_ffn_s=5e-4,
        beta_ffn_s_per_token=1e-6,
    )
    with pytest.raises(InputError, match=fragment):
        mean_field_rule(c, **kwargs)  # type: ignore[arg-type]


def test_non_positive_coefficient_rejected() -> None:
    """A zero coefficient cannot reach the theory: CostCoefficients refuses it."""
    with pytest.raises(InputError, match="beta_ffn_s_per_token must be a finite number > 0"):
        CostCoefficients(
            alpha_attn_s=1e-3,
            beta_attn_s_per_token=1e-8,
            alpha_comm_s=1e-4,
            beta_comm_s_per_token=1e-7,
            alpha_ffn_s=5e-4,
            beta_ffn_s_per_token=0.0,
        )
