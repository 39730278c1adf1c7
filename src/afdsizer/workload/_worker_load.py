"""The stationary law of one Attention worker's load, sampled from a trace (docs/design.md §4, §8).

The theory's Gaussian barrier treats a worker's load L_w as Normal(B·θ, B·σ²). With heavy tails
and small B the sum of B slot loads is far from normal; the theory can then use samples of the
exact stationary law instead (``afdsizer.theory.recommend(worker_load_samples=...)``):

- a slot in steady state is serving request i with probability D_i / Σ D (renewal–reward: a
  request holds its slot for D_i steps), at a step k uniform on 0 … D_i − 1, so its load is
  P_i + k (the slot-load convention of docs/architecture.md); its mean is θ and its variance σ²
  (:func:`afdsizer.workload.estimate_slot_load`);
- the B slots of one worker are independent under closed-loop resampling, so L_w is a sum of B
  such draws: mean B·θ, variance B·σ².
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = ["DEFAULT_WORKER_LOAD_SAMPLES", "sample_worker_loads"]

DEFAULT_WORKER_LOAD_SAMPLES = 20_000
"""Worker loads drawn by default: E[max of r] is then within ~0.2% for the r afdsizer meets."""


def sample_worker_loads(
    prompt_tokens: npt.ArrayLike,
    decode_tokens: npt.ArrayLike,
    *,
    batch: int,
    n_samples: int = DEFAULT_WORKER_LOAD_SAMPLES,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Draw stationary worker loads L_w, each the sum of B stationary slot loads, tokens.

    Parameters
    ----------
    prompt_tokens, decode_tokens : array-like of int, shape (n_requests,)
        P (>= 0) and D (>= 1) of the trace, paired, tokens.
    batch : int
        B, slots per Attention worker (>= 1).
    n_samples : int, default 20000
        Number of worker loads to draw (>= 1).
    seed : int, default 0
        Seed of the draws (``numpy.random.default_rng``).

    Returns
    -------
    ndarray of float64, shape (n_samples,)
        Worker loads L_w, tokens; mean B·θ and variance B·σ² up to sampling error.

    Raises
    ------
    InputError
        Unpaired or empty lengths, P < 0, D < 1, B < 1 or n_samples < 1.

    Notes
    -----
    Request i is chosen with probability D_i / Σ D and the step k uniformly on 0 … D_i − 1; a
    slot's load is P_i + k (renewal–reward, docs/design.md §4 and §8).

    Examples
    --------
    Fixed lengths P = 100, D = 11: a slot's load is uniform on 100 … 110, so L_w for B = 3 lies
    in 300 … 330 with mean 315.

    >>> loads = sample_worker_loads([100] * 4, [11] * 4, batch=3, n_samples=10_000, seed=1)
    >>> bool(loads.min() >= 300 and loads.max() <= 330), round(float(loads.mean()))
    (True, 315)
    """
    P = np.asarray(prompt_tokens, dtype=np.int64)
    D = np.asarray(decode_tokens, dtype=np.int64)
    if P.shape != D.shape or P.ndim != 1 or P.size == 0:
        raise InputError(
            "prompt_tokens and decode_tokens must be non-empty 1-D arrays of equal length, "
            f"got shapes {P.shape} and {D.shape}"
        )
    if np.any(P < 0) or np.any(D < 1):
        raise InputError(
            "prompt_tokens must be >= 0 and decode_tokens >= 1 (D >= 1), "
            f"got min P {int(P.min())} and min D {int(D.min())}"
        )
    if batch < 1:
        raise InputError(f"batch (B, slots per worker) must be >= 1, got {batch}")
    if n_samples < 1:
        raise InputError(f"n_samples must be >= 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    B = batch
    # Length-biased request choice (a request holds its slot for D steps), then a uniform step k.
    cdf = np.cumsum(D, dtype=np.float64)
    cdf /= cdf[-1]
    idx = np.searchsorted(cdf, rng.random((n_samples, B)), side="right")
    idx = np.minimum(idx, P.size - 1)  # guards u that rounds onto the last edge
    k = np.floor(rng.random((n_samples, B)) * D[idx]).astype(np.int64)
    loads: npt.NDArray[np.float64] = (P[idx] + k).sum(axis=1).astype(np.float64)
    return loads
