"""Empirical barrier: exact order statistics of the stationary worker load, from workload data only.

The Gaussian barrier (DESIGN.md §4) treats a worker's load L_w as Normal(B·θ, B·σ²). With heavy
tails and small B the sum of B slot loads is far from normal, so E[max_w L_w] is mis-estimated. Here
the stationary law of L_w is sampled directly from the trace instead:

- a slot in steady state is serving request i with probability D_i / Σ D (renewal–reward: a request
  holds its slot for D_i steps), at a step k uniform on 0 … D_i − 1, so its load is P_i + k
  (docs/architecture.md slot-load convention);
- slots of one worker, and the r workers, are independent under closed-loop resampling, so L_w is a
  sum of B such draws;
- for n sampled loads sorted as x_(1) <= … <= x_(n), the maximum of r iid draws from their empirical
  law has P(max = x_(i)) = (i/n)^r − ((i−1)/n)^r, which gives E[max(G, t_A(max_w L_w))] exactly.

Then E[τ(r)] = E[max(t_C(r), t_F(r), α_A + β_A·max_w L_w)] (overlapped execution) and
Λ(r) = r·B / ((r+1)·E[τ(r)]) — the simulator's throughput, up to sampling error, without simulating.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from afdsizer.cost import CostCoefficients
from afdsizer.errors import InputError

__all__ = ["EmpiricalBarrier", "empirical_barrier", "sample_worker_loads"]

DEFAULT_LOAD_SAMPLES = 20_000
"""Worker loads drawn to build the empirical law of L_w."""


def sample_worker_loads(
    prompt_tokens: npt.ArrayLike,
    decode_tokens: npt.ArrayLike,
    *,
    batch: int,
    n_samples: int = DEFAULT_LOAD_SAMPLES,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Draw stationary worker loads L_w = Σ of B stationary slot loads, tokens.

    Parameters
    ----------
    prompt_tokens, decode_tokens : array-like of int, shape (n_requests,)
        P and D of the trace, paired.
    batch : int
        B, slots per Attention worker.
    n_samples : int
        Number of worker loads to draw.
    seed : int
        Seed of the draws.

    Returns
    -------
    ndarray of float, shape (n_samples,)
        Worker loads, tokens.
    """
    P = np.asarray(prompt_tokens, dtype=np.int64)
    D = np.asarray(decode_tokens, dtype=np.int64)
    if P.shape != D.shape or P.ndim != 1 or P.size == 0 or np.any(D < 1) or np.any(P < 0):
        raise InputError("prompt_tokens and decode_tokens must be equal-length 1-D, P >= 0, D >= 1")
    if batch < 1 or n_samples < 1:
        raise InputError(f"batch and n_samples must be >= 1, got {batch} and {n_samples}")
    rng = np.random.default_rng(seed)
    B = batch
    # Length-biased request choice (a request holds its slot for D steps), then a uniform step k.
    weights = D / D.sum()
    idx = rng.choice(P.size, size=(n_samples, B), p=weights)
    k = np.floor(rng.random((n_samples, B)) * D[idx]).astype(np.int64)
    loads: npt.NDArray[np.float64] = (P[idx] + k).sum(axis=1).astype(np.float64)
    return loads


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EmpiricalBarrier:
    """Throughput curve from the empirical worker-load law.

    Parameters
    ----------
    ratios : ndarray of int64, shape (n_r,)
        r = 1 … r_max.
    step_time_s : ndarray of float, shape (n_r,)
        E[τ(r)], s.
    throughput_per_instance : ndarray of float, shape (n_r,)
        Λ(r) = r·B/((r+1)·E[τ(r)]), tokens/s per instance.
    attention_max_time_s : ndarray of float, shape (n_r,)
        E[max_w t_A,w] (no max with G), s.
    best_ratio : int
        The integer r maximising Λ.
    knee_ratio : float
        Continuous r where t_F(r) + ... meets E[max_w t_A,w(r)]: the FFN catches up with the slowest
        worker (linear interpolation on the integers); the barrier-aware analogue of r_A.
    """

    ratios: npt.NDArray[np.int64]
    step_time_s: npt.NDArray[np.float64]
    throughput_per_instance: npt.NDArray[np.float64]
    attention_max_time_s: npt.NDArray[np.float64]
    best_ratio: int
    knee_ratio: float


def _expected_max_weights(n: int, r: int) -> npt.NDArray[np.float64]:
    # P(max of r iid draws from the empirical law = x_(i)) = (i/n)^r − ((i−1)/n)^r.
    grid = np.arange(n + 1, dtype=np.float64) / n
    cdf_r = grid**r
    return np.diff(cdf_r)


def empirical_barrier(
    coefficients: CostCoefficients,
    worker_loads_tokens: npt.ArrayLike,
    *,
    batch: int,
    r_max: int,
) -> EmpiricalBarrier:
    """Λ(r) for r = 1 … r_max under the empirical law of the worker load (overlapped step).

    Parameters
    ----------
    coefficients : CostCoefficients
        α, β of Attention, communication, FFN (DESIGN.md §2).
    worker_loads_tokens : array-like of float, shape (n,)
        Samples of L_w (from :func:`sample_worker_loads`), tokens.
    batch : int
        B, slots per worker.
    r_max : int
        Largest ratio evaluated.

    Returns
    -------
    EmpiricalBarrier

    Examples
    --------
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-7, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-5)
    >>> eb = empirical_barrier(c, np.full(100, 1e5), batch=10, r_max=200)
    >>> eb.best_ratio  # σ = 0: the mean-field r_A = (0.011 − 0.005)/(1e-5·10) = 60
    60
    """
    loads = np.sort(np.asarray(worker_loads_tokens, dtype=np.float64))
    if loads.ndim != 1 or loads.size == 0:
        raise InputError("worker_loads_tokens must be a non-empty 1-D array")
    if r_max < 1:
        raise InputError(f"r_max must be >= 1, got {r_max}")
    B = batch
    t_attn = coefficients.attention_time_s(loads)
    ratios = np.arange(1, r_max + 1, dtype=np.int64)
    step = np.empty(r_max)
    attn_max = np.empty(r_max)
    gap = np.empty(r_max)
    for j, r in enumerate(ratios):
        w = _expected_max_weights(loads.size, int(r))
        G = max(coefficients.comm_time_s(B, float(r)), coefficients.ffn_time_s(float(r * B)))
        step[j] = float(np.dot(w, np.maximum(t_attn, G)))
        attn_max[j] = float(np.dot(w, t_attn))
        gap[j] = attn_max[j] - coefficients.ffn_time_s(float(r * B))
    lam = ratios * B / ((ratios + 1) * step)
    # Knee: first sign change of E[max t_A] − t_F, interpolated linearly between integers.
    neg = np.flatnonzero(gap <= 0)
    if neg.size == 0:
        knee = float(r_max)
    elif neg[0] == 0:
        knee = 1.0
    else:
        i = int(neg[0])
        knee = float(ratios[i - 1] + gap[i - 1] / (gap[i - 1] - gap[i]))
    return EmpiricalBarrier(
        ratios=ratios,
        step_time_s=step,
        throughput_per_instance=lam,
        attention_max_time_s=attn_max,
        best_ratio=int(ratios[int(np.argmax(lam))]),
        knee_ratio=knee,
    )
