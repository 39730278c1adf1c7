"""A synthetic long-context, heavy-tailed workload: where the Gaussian barrier is stressed.

The bundled Azure traces have θ of 1–2k tokens; design §8 warns that the barrier matters most
with heavy tails and small B (σ·√B large next to B·θ), as on long-context chat. No such trace is
shipped, so ``afdsizer validate --stress`` adds this seeded one: prompt lengths lognormal (median
8,000 tokens, log-sd 1.0, so a mean near 13,000 and a tail to the 128k context limit) and decode
lengths geometric with mean 300 (capped at 4,000), independent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = ["STRESS_TRACE_NAME", "synthetic_long_context"]

STRESS_TRACE_NAME = "synthetic_longctx"
"""Label of the stress workload in tables and JSON."""
PROMPT_MEDIAN_TOKENS = 8_000
"""Median prompt length P, tokens."""
PROMPT_LOG_SD = 1.0
"""Standard deviation of ln P."""
CONTEXT_LIMIT_TOKENS = 128_000
"""P is clipped to this context window, tokens."""
DECODE_MEAN_TOKENS = 300
"""Mean decode length D (geometric), tokens."""
DECODE_CAP_TOKENS = 4_000
"""D is capped here (a max-tokens limit), tokens."""


def synthetic_long_context(
    n_requests: int = 20_000, *, seed: int = 7
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Draw (P, D) pairs of the long-context stress workload (module docstring).

    Parameters
    ----------
    n_requests : int
        Requests to draw.
    seed : int
        Seed of the draws.

    Returns
    -------
    (prompt_tokens, decode_tokens) : tuple of ndarray of int64, shape (n_requests,)

    Examples
    --------
    >>> P, D = synthetic_long_context(1000, seed=0)
    >>> bool(P.min() >= 1 and D.min() >= 1 and P.max() <= 128_000)
    True
    """
    if n_requests < 1:
        raise InputError(f"n_requests must be >= 1, got {n_requests}")
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(np.log(PROMPT_MEDIAN_TOKENS), PROMPT_LOG_SD, n_requests)
    P = np.clip(np.rint(raw), 1, CONTEXT_LIMIT_TOKENS).astype(np.int64)
    D = np.minimum(rng.geometric(1.0 / DECODE_MEAN_TOKENS, n_requests), DECODE_CAP_TOKENS)
    return P, D.astype(np.int64)
