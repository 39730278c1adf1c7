"""Parametric workloads: closed-form θ and σ² beside the sampler that draws from them.

With P and D independent, the renewal–reward formulas of docs/design.md §3 need only moments:

    θ  = E[P] + E[D(D−1)] / (2·E[D])
    σ² = ( E[P²]·E[D] + E[P]·E[D(D−1)] + E[D(D−1)(2D−1)]/6 ) / E[D] − θ²

from Σ_{k<D}(P+k)² = D·P² + P·D(D−1) + (D−1)D(2D−1)/6 (step k attends to P + k tokens).
For geometric D on {1, 2, …} with mean μ_D (p = 1/μ_D): E[D] = 1/p, E[D²] = (2−p)/p²,
E[D³] = (p² − 6p + 6)/p³, hence θ = μ_P + μ_D − 1 (the paper's first version writes μ_P + μ_D:
its first decode step attends to P + 1 tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = [
    "DiscreteDistribution",
    "FixedLengths",
    "GeometricDecode",
    "IndependentMarginals",
]

_PROB_SUM_TOL = 1e-9
"""How far the probabilities of a discrete distribution may sum from 1."""

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscreteDistribution:
    """A distribution of token lengths on finitely many values.

    Parameters
    ----------
    values_tokens : tuple of int
        Support, tokens (distinct, >= 0).
    probabilities : tuple of float
        Probability of each value (>= 0, summing to 1).

    Examples
    --------
    >>> d = DiscreteDistribution(values_tokens=(1, 3), probabilities=(0.5, 0.5))
    >>> d.moment(1), d.moment(2)
    (2.0, 5.0)
    """

    values_tokens: tuple[int, ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        values = tuple(int(v) for v in self.values_tokens)
        probs = tuple(float(p) for p in self.probabilities)
        if not values or len(values) != len(probs):
            raise InputError(
                "values_tokens and probabilities must be non-empty and of equal length, "
                f"got {len(values)} and {len(probs)}"
            )
        if min(values) < 0 or len(set(values)) != len(values):
            raise InputError(f"values_tokens must be distinct and >= 0 tokens, got {values}")
        if min(probs) < 0 or abs(math.fsum(probs) - 1.0) > _PROB_SUM_TOL:
            raise InputError(f"probabilities must be >= 0 and sum to 1, got sum {math.fsum(probs)}")
        object.__setattr__(self, "values_tokens", values)
        object.__setattr__(self, "probabilities", probs)

    @classmethod
    def point(cls, value_tokens: int) -> DiscreteDistribution:
        """All mass on one length."""
        return cls(values_tokens=(value_tokens,), probabilities=(1.0,))

    @classmethod
    def empirical(cls, samples_tokens: npt.ArrayLike) -> DiscreteDistribution:
        """The empirical distribution of observed lengths (e.g. a trace's prompt lengths)."""
        values, counts = np.unique(np.asarray(samples_tokens, dtype=np.int64), return_counts=True)
        if values.size == 0:
            raise InputError("empirical distribution needs at least one sample, got 0")
        probs = counts / counts.sum()
        return cls(values_tokens=tuple(values.tolist()), probabilities=tuple(probs.tolist()))

    def moment(self, k: int) -> float:
        """E[X^k], tokens^k."""
        pairs = zip(self.values_tokens, self.probabilities, strict=True)
        return math.fsum(p * float(v) ** k for v, p in pairs)

    def sample(self, n: int, rng: np.random.Generator) -> IntArray:
        """Draw ``n`` lengths, tokens."""
        values = np.asarray(self.values_tokens, dtype=np.int64)
        return rng.choice(values, size=n, p=np.asarray(self.probabilities))


def _theta_sigma2(
    mp1: float, mp2: float, md1: float, md2: float, md3: float
) -> tuple[float, float]:
    """θ and σ² for independent P, D from E[P], E[P²], E[D], E[D²], E[D³] (module docstring)."""
    dd1 = md2 - md1  # E[D(D−1)]
    theta = mp1 + dd1 / (2.0 * md1)
    tri = (2.0 * md3 - 3.0 * md2 + md1) / 6.0  # E[(D−1)D(2D−1)/6]
    second = (mp2 * md1 + mp1 * dd1 + tri) / md1
    return theta, max(second - theta * theta, 0.0)


def _check_n(n: int) -> None:
    if n < 1:
        raise InputError(f"n must be >= 1 requests, got {n}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedLengths:
    """Every request has prompt length P and decode length D.

    θ = P + (D−1)/2 and σ² = (D²−1)/12 (a slot's load cycles through P … P+D−1).

    Examples
    --------
    >>> FixedLengths(prompt_tokens=100, decode_tokens=3).theta_tokens
    101.0
    """

    prompt_tokens: int
    decode_tokens: int

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0 or self.decode_tokens < 1:
            raise InputError(
                "FixedLengths needs prompt_tokens >= 0 and decode_tokens >= 1 tokens, "
                f"got {self.prompt_tokens} and {self.decode_tokens}"
            )

    @property
    def theta_tokens(self) -> float:
        """θ, mean slot load, tokens."""
        return self.prompt_tokens + (self.decode_tokens - 1) / 2.0

    @property
    def sigma2_tokens2(self) -> float:
        """σ², variance of one slot's load, tokens²."""
        return (self.decode_tokens**2 - 1) / 12.0

    @property
    def slot_load_std_tokens(self) -> float:
        """σ, tokens."""
        return math.sqrt(self.sigma2_tokens2)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """``n`` (P, D) pairs, tokens (``rng`` unused: the lengths are fixed)."""
        _check_n(n)
        return (
            np.full(n, self.prompt_tokens, dtype=np.int64),
            np.full(n, self.decode_tokens, dtype=np.int64),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GeometricDecode:
    """Geometric decode lengths D on {1, 2, …} with mean μ_D, independent of the prompt P.

    The paper's first version: P enters only through its moments, D ~ Geometric(1/μ_D).
    θ = μ_P + μ_D − 1 (module docstring for σ²).

    Parameters
    ----------
    prompt : DiscreteDistribution
        Distribution of P, tokens.
    mean_decode_tokens : float
        μ_D = E[D], tokens, >= 1.

    Examples
    --------
    >>> GeometricDecode(prompt=DiscreteDistribution.point(100), mean_decode_tokens=50).theta_tokens
    149.0
    """

    prompt: DiscreteDistribution
    mean_decode_tokens: float

    def __post_init__(self) -> None:
        if not self.mean_decode_tokens >= 1.0 or not math.isfinite(self.mean_decode_tokens):
            raise InputError(
                f"mean_decode_tokens must be finite and >= 1 token, got {self.mean_decode_tokens}"
            )

    def _moments_d(self) -> tuple[float, float, float]:
        p = 1.0 / self.mean_decode_tokens
        return 1.0 / p, (2.0 - p) / p**2, (p * p - 6.0 * p + 6.0) / p**3

    @property
    def theta_tokens(self) -> float:
        """θ, mean slot load, tokens."""
        return _theta_sigma2(self.prompt.moment(1), self.prompt.moment(2), *self._moments_d())[0]

    @property
    def sigma2_tokens2(self) -> float:
        """σ², variance of one slot's load, tokens²."""
        return _theta_sigma2(self.prompt.moment(1), self.prompt.moment(2), *self._moments_d())[1]

    @property
    def slot_load_std_tokens(self) -> float:
        """σ, tokens."""
        return math.sqrt(self.sigma2_tokens2)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """``n`` independent (P, D) pairs, tokens."""
        _check_n(n)
        prompt = self.prompt.sample(n, rng)
        decode = rng.geometric(1.0 / self.mean_decode_tokens, size=n).astype(np.int64)
        return prompt, decode


@dataclass(frozen=True, slots=True, kw_only=True)
class IndependentMarginals:
    """P and D drawn independently from two discrete distributions (any shapes).

    Useful to see what the P–D correlation of a real trace is worth: build it from the trace's
    marginals with :meth:`DiscreteDistribution.empirical` and compare θ with the joint estimate.

    Examples
    --------
    >>> two = DiscreteDistribution(values_tokens=(1, 3), probabilities=(0.5, 0.5))
    >>> IndependentMarginals(prompt=DiscreteDistribution.point(10), decode=two).theta_tokens
    10.75
    """

    prompt: DiscreteDistribution
    decode: DiscreteDistribution

    def __post_init__(self) -> None:
        if min(self.decode.values_tokens) < 1:
            raise InputError(
                f"decode lengths must be >= 1 token, got {min(self.decode.values_tokens)}"
            )

    def _both(self) -> tuple[float, float]:
        p, d = self.prompt, self.decode
        return _theta_sigma2(p.moment(1), p.moment(2), d.moment(1), d.moment(2), d.moment(3))

    @property
    def theta_tokens(self) -> float:
        """θ, mean slot load, tokens."""
        return self._both()[0]

    @property
    def sigma2_tokens2(self) -> float:
        """σ², variance of one slot's load, tokens²."""
        return self._both()[1]

    @property
    def slot_load_std_tokens(self) -> float:
        """σ, tokens."""
        return math.sqrt(self.sigma2_tokens2)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """``n`` independent (P, D) pairs, tokens."""
        _check_n(n)
        return self.prompt.sample(n, rng), self.decode.sample(n, rng)
