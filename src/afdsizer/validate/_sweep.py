"""Sweep the ratio r with common random numbers; throughput CIs and the set tied with the best.

The driver is generic: it calls ``evaluate(ratio, seed) -> RatioPoint`` and never looks inside the
simulator. Every ratio is run with the *same* seeds, so (with a simulator whose request sequence per
slot does not depend on r, docs/architecture.md) replicate i of ratio r and replicate i of ratio r'
see the same draws. Differences between ratios are then judged on paired replicates, which is what
makes neighbouring ratios distinguishable on a flat curve (docs/design.md §8).

A replicate is one seed's run, or one batch of consecutive steps inside it (batch means) when the
evaluator returns several values per run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

from afdsizer.errors import InputError

__all__ = [
    "RatioPoint",
    "RatioSweep",
    "paired_relative_loss",
    "search_best_ratio",
    "sweep_ratios",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_CONFIDENCE = 0.95
"""Two-sided confidence level of every interval the validation reports."""
COARSE_POINTS = 12
"""Geometrically spaced ratios in the first pass of :func:`search_best_ratio`."""
REFINE_POINTS = 5
"""Ratios added per refinement round inside the bracket around the current best."""
R_MAX_HARD_CAP = 1024
"""Upper bound on r when the search extends its range because the best sits at the edge."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioPoint:
    """What one simulated run at one ratio r contributes to a sweep.

    Parameters
    ----------
    throughput_per_instance : ndarray of float, shape (n_batches,)
        Λ(r) of this run, tokens/s per instance; one value, or one per batch of steps (batch means).
        Every run of a sweep must return the same number of batches.
    attention_idle : float
        Mean Attention idle fraction of the run, 1 − E[t_A,w]/τ.
    ffn_idle : float
        Mean FFN idle fraction of the run, 1 − t_F/τ.
    """

    throughput_per_instance: FloatArray
    attention_idle: float
    ffn_idle: float

    def __post_init__(self) -> None:
        values = np.asarray(self.throughput_per_instance, dtype=np.float64).reshape(-1)
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InputError(
                f"throughput_per_instance must hold >= 1 finite value > 0 tokens/s, got {values!r}"
            )
        object.__setattr__(self, "throughput_per_instance", values)


Evaluator = Callable[[int, int], RatioPoint]
"""``evaluate(ratio, seed) -> RatioPoint``: one simulated run of an rA–1F bundle."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioSweep:
    """Simulated throughput over integer ratios, with paired replicates (common random numbers).

    Parameters
    ----------
    ratios : ndarray of int64, shape (n_r,)
        The ratios r evaluated, ascending.
    replicates : ndarray of float, shape (n_r, n_rep)
        Λ per replicate (seed × batch), tokens/s per instance; column i is the same draws for all r.
    throughput_mean : ndarray of float, shape (n_r,)
        Mean Λ(r) over replicates, tokens/s per instance.
    throughput_ci : ndarray of float, shape (n_r, 2)
        Student-t confidence interval of Λ(r) (unpaired), tokens/s per instance.
    attention_idle, ffn_idle : ndarray of float, shape (n_r,)
        Mean idle fractions over seeds.
    best_ratio : int
        r_sim, the ratio with the largest mean Λ.
    tied_ratios : tuple of int
        Ratios whose paired loss against ``best_ratio`` has a CI reaching 0 (statistically tied).
    confidence : float
        Confidence level of the intervals.
    """

    ratios: IntArray
    replicates: FloatArray
    throughput_mean: FloatArray
    throughput_ci: FloatArray
    attention_idle: FloatArray
    ffn_idle: FloatArray
    best_ratio: int
    tied_ratios: tuple[int, ...]
    confidence: float

    def index(self, ratio: int) -> int:
        """Row of ``ratio`` in the arrays; InputError if it was not evaluated."""
        hits = np.flatnonzero(self.ratios == ratio)
        if hits.size == 0:
            raise InputError(f"ratio {ratio} was not part of the sweep ({self.ratios.tolist()})")
        return int(hits[0])

    def loss(self, ratio: int) -> tuple[float, float, float]:
        """Throughput lost by deploying ``ratio`` instead of r_sim: 1 − Λ(r)/Λ(r_sim), with its CI.

        Returns
        -------
        (loss, ci_low, ci_high) : tuple of float
            Fractions (0.01 = 1%); negative values mean ``ratio`` did better than r_sim.
        """
        return paired_relative_loss(
            self.replicates[self.index(ratio)],
            self.replicates[self.index(self.best_ratio)],
            confidence=self.confidence,
        )


def paired_relative_loss(
    candidate: FloatArray, best: FloatArray, *, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float, float]:
    """1 − mean(candidate)/mean(best) and its CI from paired replicates (ratio estimator).

    Parameters
    ----------
    candidate, best : ndarray of float, shape (n,)
        Λ per replicate at the deployed ratio and at r_sim; entry i of both used the same draws.
    confidence : float
        Two-sided level.

    Returns
    -------
    (loss, ci_low, ci_high) : tuple of float

    Notes
    -----
    The ratio R = x̄/ȳ is linearised (delta method): z_i = x_i − R·y_i, se(R) = sd(z)/(√n·ȳ),
    and the interval uses Student's t with n − 1 degrees of freedom. Pairing removes the noise the
    two runs share, so the interval is far narrower than the unpaired one. With n = 1 the interval
    is unknown and returned as (−inf, inf) around the point estimate.
    """
    x = np.asarray(candidate, dtype=np.float64)
    y = np.asarray(best, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise InputError(
            "candidate and best must be 1-D arrays of equal length >= 1, "
            f"got {x.shape} and {y.shape}"
        )
    ratio = float(x.mean() / y.mean())
    loss = 1.0 - ratio
    n = x.size
    if n < 2:
        return loss, -math.inf, math.inf
    z = x - ratio * y
    se = float(z.std(ddof=1) / (math.sqrt(n) * y.mean()))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * se
    return loss, loss - half, loss + half


def _t_interval(values: FloatArray, confidence: float) -> tuple[float, float]:
    n = values.size
    mean = float(values.mean())
    if n < 2:
        return -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean - half, mean + half


def _collect(
    evaluate: Evaluator, ratios: Sequence[int], seeds: Sequence[int]
) -> dict[int, tuple[FloatArray, float, float]]:
    out: dict[int, tuple[FloatArray, float, float]] = {}
    for r in ratios:
        points = [evaluate(int(r), int(s)) for s in seeds]
        out[int(r)] = (
            np.concatenate([p.throughput_per_instance for p in points]),
            float(np.mean([p.attention_idle for p in points])),
            float(np.mean([p.ffn_idle for p in points])),
        )
    return out


def _assemble(results: dict[int, tuple[FloatArray, float, float]], confidence: float) -> RatioSweep:
    ratios = np.array(sorted(results), dtype=np.int64)
    lengths = {results[int(r)][0].size for r in ratios}
    if len(lengths) != 1:
        raise InputError(
            f"every run of a sweep must return the same number of replicates, got {sorted(lengths)}"
        )
    replicates = np.vstack([results[int(r)][0] for r in ratios])
    mean = replicates.mean(axis=1)
    ci = np.array([_t_interval(row, confidence) for row in replicates], dtype=np.float64)
    best_row = int(np.argmax(mean))
    best = int(ratios[best_row])
    tied = tuple(
        int(r)
        for i, r in enumerate(ratios)
        if i == best_row
        or paired_relative_loss(replicates[i], replicates[best_row], confidence=confidence)[1]
        <= 0.0
    )
    return RatioSweep(
        ratios=ratios,
        replicates=replicates,
        throughput_mean=mean,
        throughput_ci=ci.reshape(len(ratios), 2),
        attention_idle=np.array([results[int(r)][1] for r in ratios]),
        ffn_idle=np.array([results[int(r)][2] for r in ratios]),
        best_ratio=best,
        tied_ratios=tied,
        confidence=confidence,
    )


def _check_seeds(seeds: Sequence[int]) -> None:
    if len(seeds) == 0 or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")


def sweep_ratios(
    evaluate: Evaluator,
    ratios: Sequence[int],
    seeds: Sequence[int],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> RatioSweep:
    """Evaluate every ratio in ``ratios`` with the same ``seeds`` (common random numbers).

    Parameters
    ----------
    evaluate : callable (ratio, seed) -> RatioPoint
        One simulated run.
    ratios : sequence of int
        Ratios r >= 1 to evaluate.
    seeds : sequence of int
        Distinct seeds; every ratio uses all of them.
    confidence : float, default 0.95
        Two-sided level of the intervals.

    Returns
    -------
    RatioSweep

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda r, s: RatioPoint(
    ...     throughput_per_instance=np.array([r / (r + 1) / (1 + 0.01 * r)]),
    ...     attention_idle=0.0, ffn_idle=0.0)
    >>> sweep_ratios(f, [5, 10, 15], [0, 1]).best_ratio
    10
    """
    _check_seeds(seeds)
    bad = [r for r in ratios if int(r) < 1]
    if not ratios or bad:
        raise InputError(f"ratios must be a non-empty list of integers >= 1, got {list(ratios)}")
    return _assemble(_collect(evaluate, sorted({int(r) for r in ratios}), seeds), confidence)


def _bracket_missing(evaluated: Sequence[int], best: int, r_max: int) -> list[int]:
    """Integers strictly between the evaluated neighbours of ``best`` that are not evaluated yet."""
    done = sorted(evaluated)
    i = done.index(best)
    lo = done[i - 1] if i > 0 else best
    hi = done[i + 1] if i + 1 < len(done) else best
    return [r for r in range(lo + 1, min(hi, r_max + 1)) if r not in evaluated]


def search_best_ratio(
    evaluate: Evaluator,
    *,
    r_max: int,
    seeds: Sequence[int],
    extra_ratios: Sequence[int] = (),
    coarse_points: int = COARSE_POINTS,
    refine_points: int = REFINE_POINTS,
    confidence: float = DEFAULT_CONFIDENCE,
) -> RatioSweep:
    """Find the simulation-optimal integer r by a coarse geometric grid, then bracket refinement.

    Parameters
    ----------
    evaluate : callable (ratio, seed) -> RatioPoint
        One simulated run.
    r_max : int
        Largest ratio of the first grid (at most :data:`R_MAX_HARD_CAP`); doubled (up to the
        cap) while the best ratio sits at the upper edge.
    seeds : sequence of int
        Distinct seeds, shared by all ratios (common random numbers).
    extra_ratios : sequence of int
        Ratios to evaluate as well (the theory's, the baselines'), so their loss can be read off.
    coarse_points, refine_points : int
        Size of the first grid and ratios added per refinement round.
    confidence : float
        Two-sided level of the intervals.

    Returns
    -------
    RatioSweep
        Every ratio evaluated, with r_sim the best of them; all integers adjacent to r_sim are
        evaluated, so r_sim is a local maximum of the simulated mean curve on the integers.

    Notes
    -----
    Λ(r) is unimodal in the model (docs/design.md §4), so the bracket around the best point always
    contains the optimum; each round places up to ``refine_points`` evenly spaced integers in it
    until every integer in the bracket has been run.
    """
    _check_seeds(seeds)
    if r_max < 1:
        raise InputError(f"r_max must be >= 1, got {r_max}")
    # A wild prediction (e.g. a mean-field r* in the thousands) must not make the sweep explode.
    r_max = min(r_max, R_MAX_HARD_CAP)
    grid = {int(x) for x in np.rint(np.geomspace(1, r_max, max(2, coarse_points)))}
    grid |= {int(r) for r in extra_ratios if 1 <= int(r) <= R_MAX_HARD_CAP}
    results = _collect(evaluate, sorted(grid), seeds)
    while True:
        means = {r: float(v[0].mean()) for r, v in results.items()}
        best = max(means, key=lambda r: means[r])
        top = max(results)
        if best == top and top < R_MAX_HARD_CAP:
            # The optimum may lie beyond the range: extend geometrically.
            new_top = min(2 * top, R_MAX_HARD_CAP)
            ext = {int(x) for x in np.rint(np.geomspace(top, new_top, 4))} - set(results)
            results.update(_collect(evaluate, sorted(ext), seeds))
            r_max = max(r_max, new_top)
            continue
        missing = _bracket_missing(list(results), best, max(r_max, top))
        if not missing:
            break
        take = np.unique(np.linspace(0, len(missing) - 1, min(refine_points, len(missing))).round())
        results.update(_collect(evaluate, [missing[int(i)] for i in take], seeds))
    return _assemble(results, confidence)
