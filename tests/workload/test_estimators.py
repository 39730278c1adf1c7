"""θ and σ² estimators against brute-force sample paths, exact rationals and CI coverage."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import REL_TOL_CLOSED_FORM, TRACES, require_shared

from afdsizer.errors import InputError
from afdsizer.workload import estimate_slot_load, load_trace

PAIR = st.tuples(st.integers(0, 50_000), st.integers(1, 3_000))


def _brute_path(
    prompt: np.ndarray, decode: np.ndarray, *, slots: int, steps: int, seed: int
) -> np.ndarray:
    """Load of every slot at every step: slots refilled at once by requests drawn from the trace.

    Written naively on purpose (one slot, one step at a time): a request attends to P + k tokens
    at its k-th decode step, and the slot takes the next request the step after its last token.
    """
    rng = np.random.default_rng(seed)
    draws = iter(rng.integers(0, prompt.size, size=steps * slots + slots).tolist())
    current = []
    for _ in range(slots):
        i = next(draws)
        current.append([int(prompt[i]), int(decode[i]), 0])
    loads = np.empty((steps, slots))
    for step in range(steps):
        for s in range(slots):
            p, d, k = current[s]
            loads[step, s] = p + k
            k += 1
            if k == d:
                i = next(draws)
                current[s] = [int(prompt[i]), int(decode[i]), 0]
            else:
                current[s][2] = k
    return loads


def _exact(pairs: list[tuple[int, int]]) -> tuple[Fraction, Fraction]:
    """θ and σ² as exact rationals, by enumerating every decode step of every request."""
    total_steps = sum(d for _, d in pairs)
    s1 = sum(sum(p + k for k in range(d)) for p, d in pairs)
    s2 = sum(sum((p + k) ** 2 for k in range(d)) for p, d in pairs)
    theta = Fraction(s1, total_steps)
    return theta, Fraction(s2, total_steps) - theta**2


def test_theta_equals_time_averaged_load_of_a_sample_path() -> None:
    """θ of a real trace sample lies within its own CI of the time-averaged load of a slot path."""
    code_csv = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"
    trace = load_trace(require_shared(code_csv))
    prompt, decode = trace.prompt_tokens[:400], trace.decode_tokens[:400]
    est = estimate_slot_load(prompt, decode)
    # ~20 × 400 requests pass through the slots, so the path mean sits far inside the CI.
    loads = _brute_path(prompt, decode, slots=16, steps=15_000, seed=3)[500:]
    low, high = est.theta_ci_tokens
    assert low <= loads.mean() <= high
    assert loads.var() == pytest.approx(est.sigma2_tokens2, rel=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigma_matches_stationary_spread_of_sample_path(seed: int) -> None:
    """σ² is the variance of one slot's load over time (correlated synthetic P, D)."""
    rng = np.random.default_rng(seed)
    decode = rng.integers(1, 40, size=300)
    prompt = 5 * decode + rng.integers(0, 200, size=300)  # P and D correlated
    est = estimate_slot_load(prompt, decode)
    loads = _brute_path(prompt, decode, slots=8, steps=20_000, seed=seed + 10)[200:]
    assert loads.mean() == pytest.approx(est.theta_tokens, rel=0.01)
    assert loads.var() == pytest.approx(est.sigma2_tokens2, rel=0.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(PAIR, min_size=1, max_size=30))
def test_estimate_equals_exact_enumeration(pairs: list[tuple[int, int]]) -> None:
    """θ and σ² equal the exact rational values from enumerating every step."""
    theta, sigma2 = _exact(pairs)
    est = estimate_slot_load([p for p, _ in pairs], [d for _, d in pairs])
    assert est.theta_tokens == pytest.approx(float(theta), rel=REL_TOL_CLOSED_FORM)
    scale = float(theta) ** 2 + 1.0  # σ² is a difference of terms of size θ²
    assert abs(est.sigma2_tokens2 - float(sigma2)) <= 1e-9 * scale
    assert est.n_requests == len(pairs)


@settings(max_examples=40, deadline=None)
@given(st.lists(PAIR, min_size=2, max_size=40), st.integers(0, 2**31))
def test_estimate_is_invariant_to_request_order(pairs: list[tuple[int, int]], seed: int) -> None:
    """θ, σ² and the delta CI depend on the set of pairs, not on their order."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    P = np.array([p for p, _ in pairs])
    D = np.array([d for _, d in pairs])
    a, b = estimate_slot_load(P, D), estimate_slot_load(P[order], D[order])
    assert b.theta_tokens == pytest.approx(a.theta_tokens, rel=1e-12)
    assert b.theta_ci_tokens == pytest.approx(a.theta_ci_tokens, rel=1e-9, abs=1e-9)


def test_hand_worked_example() -> None:
    """Requests (100, 1), (100, 3): loads 100 | 100, 101, 102 → θ = 403/4, σ² = 11/16."""
    est = estimate_slot_load([100, 100], [1, 3])
    assert est.theta_tokens == pytest.approx(100.75)
    assert est.sigma2_tokens2 == pytest.approx(40_605 / 4 - 100.75**2)
    assert est.sigma2_tokens2 == pytest.approx(0.6875)


def test_no_overflow_with_huge_lengths() -> None:
    """Lengths near 2^31 tokens give the exact θ (no int64 overflow of P·D or Σ(P+k)²)."""
    pairs = [(2_000_000_000, 1_000_000), (7, 2_000_000_000)]
    P = np.array([p for p, _ in pairs])
    D = np.array([d for _, d in pairs])
    theta = Fraction(sum(p * d + d * (d - 1) // 2 for p, d in pairs), sum(D.tolist()))
    assert estimate_slot_load(P, D).theta_tokens == pytest.approx(float(theta), rel=1e-12)


def test_delta_ci_matches_residual_formula() -> None:
    """The delta-method SE is sd(a − θ̂·D) / (sqrt(n)·mean D), computed here directly."""
    rng = np.random.default_rng(7)
    D = rng.geometric(1 / 80, size=5_000)
    P = rng.integers(0, 4_000, size=5_000)
    est = estimate_slot_load(P, D, confidence=0.9)
    a = P * D + D * (D - 1) / 2
    resid = a - est.theta_tokens * D
    se = resid.std(ddof=1) / np.sqrt(D.size) / D.mean()
    assert est.theta_se_tokens == pytest.approx(se, rel=1e-9)
    low, high = est.theta_ci_tokens
    assert (high - low) / 2 == pytest.approx(1.6448536269514722 * se, rel=1e-9)


def test_delta_ci_covers_true_theta_at_its_level() -> None:
    """Over 300 seeded traces of 400 correlated requests the 90% delta CI covers θ ≈ 90%."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        D = rng.geometric(1 / 50, size=n)
        P = rng.integers(0, 3_000, size=n) + 4 * D
        return P, D

    big = estimate_slot_load(*draw(np.random.default_rng(12345), 2_000_000))
    hits = 0
    for seed in range(300):
        low, high = estimate_slot_load(
            *draw(np.random.default_rng(seed), 400), confidence=0.9
        ).theta_ci_tokens
        hits += low <= big.theta_tokens <= high
    # Binomial(300, 0.9): sd ≈ 5.2 hits; ±4 sd, with room for the ratio estimator's small bias.
    assert 249 <= hits <= 291


def test_bootstrap_is_seeded_and_agrees_with_delta() -> None:
    """The bootstrap CI repeats for a seed, changes with it, and is close to the delta CI."""
    rng = np.random.default_rng(0)
    D = rng.geometric(1 / 30, size=3_000)
    P = rng.integers(0, 1_000, size=3_000)
    a = estimate_slot_load(P, D, ci="bootstrap", n_bootstrap=400, seed=5)
    b = estimate_slot_load(P, D, ci="bootstrap", n_bootstrap=400, seed=5)
    c = estimate_slot_load(P, D, ci="bootstrap", n_bootstrap=400, seed=6)
    delta = estimate_slot_load(P, D)
    assert a == b
    assert a.theta_ci_tokens != c.theta_ci_tokens
    assert a.ci_method == "bootstrap"
    assert a.theta_se_tokens == pytest.approx(delta.theta_se_tokens, rel=0.15)
    assert a.theta_ci_tokens == pytest.approx(delta.theta_ci_tokens, rel=0.005)


def test_single_request_has_undefined_interval() -> None:
    """One request gives θ and σ but no interval (NaN), rather than a fake zero width."""
    est = estimate_slot_load([10], [4])
    assert est.theta_tokens == 11.5
    assert all(np.isnan(est.theta_ci_tokens))


@pytest.mark.parametrize(
    ("prompt", "decode", "kwargs", "match"),
    [
        ([], [], {}, "at least one"),
        ([1, 2], [1], {}, "equal length"),
        ([-1], [1], {}, "prompt_tokens must be whole numbers of tokens >= 0"),
        ([1.5], [1], {}, "prompt_tokens must be whole numbers"),
        ([1], [0], {}, "decode_tokens must be whole numbers of tokens >= 1"),
        ([1], [float("nan")], {}, "decode_tokens"),
        ([1], [1], {"confidence": 1.0}, "confidence must be in"),
        ([1], [1], {"ci": "jackknife"}, "ci must be"),
        ([1, 2], [1, 2], {"ci": "bootstrap", "n_bootstrap": 3}, "n_bootstrap must be >= 10"),
    ],
)
def test_bad_input_is_rejected(
    prompt: list[float], decode: list[float], kwargs: dict[str, object], match: str
) -> None:
    """Bad arrays and options raise InputError naming the parameter and the rule."""
    with pytest.raises(InputError, match=match):
        estimate_slot_load(prompt, decode, **kwargs)  # type: ignore[arg-type]
