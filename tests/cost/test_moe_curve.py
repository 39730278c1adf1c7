"""The activated-experts curve: recovery of known parameters, linearisation, serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from afdsizer.cost._moe_curve import ExpertCurve, FfnCurve, fit_expert_curve, linearise_ffn
from afdsizer.errors import InputError

TOKENS = np.array(
    [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072,
     4096, 6144, 8192, 12288, 16384],
    dtype=np.float64,
)  # fmt: skip


def _term(p: float = 1.0, **kw: float) -> ExpertCurve:
    args = {"fixed_s": 3e-5, "expert_s": 2e-6, "token_s": 1e-7, "local_experts": 16.0}
    args.update(kw)
    return ExpertCurve(
        part="moe", num_experts=128, experts_per_token=8, sharpness=p, calls=48.0, **args
    )


def test_active_experts_is_the_uniform_routing_expectation() -> None:
    """A(N) matches a seeded Monte Carlo of top-k routing (k distinct of E per token)."""
    term = _term()
    rng = np.random.default_rng(0)
    trials = 2000
    for n in (1, 8, 64):
        # Each token picks 8 distinct experts of 128; count distinct ones among the first 16.
        picks = np.argsort(rng.random((trials, n, 128)), axis=2)[:, :, :8]
        local = np.zeros((trials, 16), dtype=bool)
        for j in range(16):
            local[:, j] = (picks == j).any(axis=(1, 2))
        hits = local.sum(axis=1)
        se = hits.std() / np.sqrt(trials)
        assert float(term.active_experts(n)) == pytest.approx(hits.mean(), abs=4 * se + 1e-9)


@pytest.mark.parametrize("p", [1.0, 1.7, 3.0])
def test_fit_recovers_a_known_curve(p: float) -> None:
    """Rows generated from a curve are fitted back to it (times within 0.5% everywhere)."""
    truth = _term(p)
    t_call = truth.time_s(TOKENS) / truth.calls
    curve, rel = fit_expert_curve(
        TOKENS, t_call, part="moe", num_experts=128, experts_per_token=8, local_experts=16,
        calls=48,
    )  # fmt: skip
    assert rel.max() < 5e-3
    assert curve.time_s(TOKENS) == pytest.approx(truth.time_s(TOKENS), rel=5e-3)
    assert curve.token_s == pytest.approx(truth.token_s, rel=0.05)


def test_fit_needs_four_token_counts() -> None:
    """Four parameters need four distinct N."""
    with pytest.raises(InputError, match=">= 4 distinct token counts, got 3"):
        fit_expert_curve(
            [1, 2, 4], [1.0, 2.0, 3.0], part="moe", num_experts=8, experts_per_token=2,
            local_experts=8,
        )  # fmt: skip


@given(n=st.floats(16, 16384))
def test_tangent_of_the_additive_curve_is_its_derivative(n: float) -> None:
    """p = 1: β_F = calls·(w·A'(N) + c), A'(N) = −(E/ep)·(1−k/E)^N·ln(1−k/E) (closed form)."""
    term = _term(1.0)
    alpha, beta = linearise_ffn(term, n)
    q = 1 - 8 / 128
    slope = term.calls * (term.expert_s * -16 * q**n * np.log(q) + term.token_s)
    assert beta == pytest.approx(slope, rel=1e-4)
    assert alpha + beta * n == pytest.approx(float(term.time_s(n)), rel=1e-9)


def test_secant_is_the_chord_and_passes_through_the_point() -> None:
    """The secant's slope is the chord from N/2 to 2N; its line goes through t_F(N)."""
    curve = FfnCurve(terms=(_term(2.0),), fitted_tokens=(1, 16384))
    alpha, beta = linearise_ffn(curve, 1000, method="secant")
    lo, hi = curve.time_s(np.array([500.0, 2000.0]))
    assert beta == pytest.approx((hi - lo) / 1500, rel=1e-12)
    assert alpha + beta * 1000 == pytest.approx(float(curve.time_s(1000.0)), rel=1e-9)
    with pytest.raises(InputError, match="tokens must be > 0"):
        linearise_ffn(curve, 0)
    with pytest.raises(InputError, match="method must be tangent or secant"):
        linearise_ffn(curve, 10, method="chord")  # type: ignore[arg-type]


def test_curve_round_trips_through_a_dict() -> None:
    """to_dict / from_dict give back the same curve; broken dicts are one-line errors."""
    curve = FfnCurve(terms=(_term(1.5), _term(2.0, local_experts=1.0)), fitted_tokens=(1, 4096))
    again = FfnCurve.from_dict(curve.to_dict())
    assert again == curve
    with pytest.raises(InputError, match="is not a valid FFN curve"):
        FfnCurve.from_dict({"terms": [{"part": "moe"}], "fitted_tokens": [1, 2]})
