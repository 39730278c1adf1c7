"""The compiled step loop of the simulator (numba), O(r) plus the completions per step.

:func:`run_chunk` advances one rA–1F bundle from ``counters.step`` to ``step_end``, one step at
a time in the order of design §6: refill and admission → per-worker Attention times → barrier
→ communication → FFN → pipeline → book-keeping → advance. Each part is a small inlined helper
below, in that order. The kernel keeps per-group load and active counts and a calendar (ring of
linked lists indexed by finish step) of the requests in flight, so a step touches each worker once
and each finishing request once; it never scans the slots of a worker except to pick a free slot
on an open-loop admission. :mod:`afdsizer.sim.reference` is the plain-Python engine with the same
signature and structure that recomputes everything from the slots each step; the tests require
both to agree exactly. The records it works on are described in :mod:`afdsizer.sim._layout`.

All randomness is either drawn beforehand by the caller (jitter, open-loop arrivals) or comes from
:func:`request_index`, a counter-based hash of (seed, slot, admission count) written identically
in the reference, so that a slot receives the same request sequence whatever r is (common random
numbers). No fastmath: the float operations must happen in the same order as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import config as numba_config
from numba import njit

from afdsizer.sim import reference as _reference
from afdsizer.sim._layout import (
    COMP_QUEUE,
    COMP_SOJOURN,
    COMP_TPOT,
    PHASE_DRAW,
    PIPELINE_MICROBATCH,
    PIPELINE_SERIAL,
    RC_BUFFER_FULL,
    RC_DONE,
    RC_NEED_ARRIVALS,
    SER_ACTIVE,
    SER_ATTN_MAX,
    SER_ATTN_MEAN,
    SER_COMM,
    SER_FFN,
    SER_LOAD,
    SER_STEP_TIME,
    Arrivals,
    Bundle,
    Outputs,
    Params,
    RecordArray,
)

__all__ = ["fill_slot_keys", "request_index", "run_chunk"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_RANK_SORT_MAX = 64
"""Calendar buckets up to this many slots are rank-sorted (branch-free), longer ones scanned."""
_FINISHING = -2
"""cal_next mark of a slot finishing this step (while sorting a long bucket)."""

Record = Any  # a numba record: one row of COUNTER_DTYPE or SLOT_DTYPE, updated in place


# --- the request hash (common random numbers) ----------------------------------------------------


@njit(cache=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    # splitmix64 finaliser: a bijection of 64-bit words with good avalanche.
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _slot_key(seed: int, slot: int) -> np.uint64:  # pragma: no cover - compiled
    """The part of the hash that depends on (seed, slot) only: computed once per slot."""
    return _mix64(_mix64(np.uint64(seed) + _GOLDEN) ^ np.uint64(slot))


@njit(cache=True, inline="always")
def _row_of(key: np.uint64, count: int, n: int) -> np.int64:  # pragma: no cover - compiled
    z = _mix64(key + np.uint64(count) * _GOLDEN)
    # Lemire's multiply-shift maps the high 32 bits onto 0 … n−1 without a division.
    return np.int64(((z >> _S32) * np.uint64(n)) >> _S32)  # < n: signed, as indices are


@njit(cache=True)
def _request_index(seed: int, slot: int, count: int, n: int) -> int:  # pragma: no cover
    """Trace row of the ``count``-th request slot ``slot`` receives under ``seed`` (0 … n−1)."""
    return int(_row_of(_slot_key(seed, slot), count, n))


request_index: Callable[[int, int, int, int], int] = _request_index
if getattr(numba_config, "DISABLE_JIT", False):  # pragma: no cover - coverage runs only
    # NOTE: uncompiled, numpy uint64 arithmetic warns on its intended wrap-around (an error
    # under -W error); the reference's Python-int hash is bit-identical and does not.
    request_index = _reference.request_index


@njit(cache=True)
def fill_slot_keys(slots: RecordArray, seed: int) -> None:  # pragma: no cover - compiled
    """Write each slot's hash prefix (``key``) for ``seed``; the kernel needs them set."""
    for s in range(slots.shape[0]):
        slots[s].key = _slot_key(seed, s)


# --- 1. refill and admission ---------------------------------------------------------------------
# NOTE: helpers take the arrays they touch, not the Bundle: numba reference-counts every array of
# a tuple each time an inlined helper binds it, which cost 4× the step time when _admit and
# _complete took the whole Bundle.


@njit(cache=True, inline="always")
def _admit(
    params: Params, c: Record, slots: RecordArray, cal_head: np.ndarray, cal_next: np.ndarray,
    groups: RecordArray, workers: RecordArray, slot: int, p: int, d: int, arrival_s: float,
    clock: float, step: int, elapsed: int,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Put request (P, D) in ``slot``, ``elapsed`` of its D steps already done (0 but for a
    staggered start), and add it to its group's and worker's counts."""
    rec = slots[slot]
    start = step - elapsed
    rec.prompt = p
    rec.decode = d
    rec.start = start
    rec.t0 = clock
    rec.arrival = arrival_s
    rec.active = 1
    groups[rec.group].load += p + elapsed
    groups[rec.group].active += 1
    workers[rec.worker].active += 1
    workers[rec.worker].kv += p + d
    c.active += 1
    c.load += p + elapsed
    # NOTE: calendar instead of a heap — O(1) insert; bucket = finish step mod H, H > max D.
    bucket = (start + d - 1) & (params.horizon - 1)
    cal_next[slot] = cal_head[bucket]
    cal_head[bucket] = slot


@njit(cache=True, inline="always")
def _draw(params: Params, c: Record, trace: RecordArray, rec: Record) -> Record:  # pragma: no cover
    """Closed loop: the request a pending slot gets next (drawn once, kept while it waits)."""
    if rec.next_row < 0:
        if params.replay:
            rec.next_row = c.replay_next % trace.shape[0]
            c.replay_next += 1
        else:
            rec.next_row = _row_of(rec.key, rec.draws, trace.shape[0])
        rec.draws += 1
    return trace[rec.next_row]


@njit(cache=True, inline="always")
def _refill(
    params: Params, c: Record, slots: RecordArray, cal_head: np.ndarray, cal_next: np.ndarray,
    groups: RecordArray, workers: RecordArray, slot: int, request: Record, clock: float,
    step: int,
) -> bool:  # pragma: no cover - compiled  # fmt: skip
    """Closed loop: pending ``slot`` takes its drawn request if its worker has KV room."""
    rec = slots[slot]
    p = request.prompt
    d = request.decode
    fits = params.kv_cap < 0 or workers[rec.worker].kv + p + d <= params.kv_cap
    if fits:
        rec.next_row = -1
        elapsed = 0
        if params.stagger and step == 0:
            # Stationary start: the first request is already a uniform U{0 … D−1} steps in.
            elapsed = int(_row_of(rec.key, PHASE_DRAW, d))
        _admit(params, c, slots, cal_head, cal_next, groups, workers, slot, p, d, clock, clock,
               step, elapsed)  # fmt: skip
    return fits


@njit(cache=True, inline="always")
def _enqueue_arrivals(
    c: Record, arr_time: np.ndarray, clock: float, measuring: bool
) -> bool:  # pragma: no cover - compiled
    """Open loop: arrivals up to now join the FIFO queue; False when the window runs out."""
    seen = c.seen
    n = arr_time.shape[0]
    while seen < n and arr_time[seen] <= clock:
        if measuring and arr_time[seen] > c.measure_start:
            # Each adds its wait before `clock` to ∫N dt.
            c.in_system += clock - arr_time[seen]
            c.arrivals += 1.0
        seen += 1
    c.seen = seen
    return bool(seen < n)  # at the end, later arrivals may also be due by now


@njit(cache=True, inline="always")
def _roomiest_worker(params: Params, workers: RecordArray, need: int) -> int:  # pragma: no cover
    """Worker with the most free slots that has KV room for ``need`` tokens (lowest on ties)."""
    best_w = -1
    best_free = 0
    for w in range(params.workers):
        free = params.slots_per_worker - workers[w].active
        if free > best_free and (params.kv_cap < 0 or workers[w].kv + need <= params.kv_cap):
            best_w = w
            best_free = free
    return best_w


@njit(cache=True, inline="always")
def _free_slot(
    params: Params, slots: RecordArray, groups: RecordArray, w: int
) -> int:  # pragma: no cover - compiled
    """Lowest free slot of worker w's emptiest microbatch group (lowest group on ties)."""
    m = params.groups
    per_group = params.slots_per_worker // m
    best_j = 0
    best_free = -1
    for j in range(m):
        free = per_group - groups[w * m + j].active
        if free > best_free:
            best_j = j
            best_free = free
    slot = w * params.slots_per_worker + best_j
    while slots[slot].active == 1:
        slot += m
    return slot


@njit(cache=True, inline="always")
def _admit_queue(
    params: Params, c: Record, arr_time: np.ndarray, arr_prompt: np.ndarray,
    arr_decode: np.ndarray, slots: RecordArray, cal_head: np.ndarray, cal_next: np.ndarray,
    groups: RecordArray, workers: RecordArray, clock: float, step: int,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Open loop: the head of the queue goes to the roomiest worker while one can take it."""
    head = c.head
    while head < c.seen:
        p = arr_prompt[head]
        d = arr_decode[head]
        w = _roomiest_worker(params, workers, p + d)
        if w < 0:
            break  # FIFO: the head waits, and everyone behind it
        slot = _free_slot(params, slots, groups, w)
        _admit(params, c, slots, cal_head, cal_next, groups, workers, slot, p, d, arr_time[head],
               clock, step, 0)  # fmt: skip
        head += 1
    c.head = head


@njit(cache=True, inline="always")
def _batch_index(params: Params, step: int) -> int:  # pragma: no cover - compiled
    """Batch (of the batch-means standard error) that measured step ``step`` belongs to."""
    return (step - params.warmup) * params.n_batches // params.measured


@njit(cache=True, inline="always")
def _skip_idle(
    params: Params, c: Record, arr_time: np.ndarray, batch_acc: np.ndarray, step: int,
    measuring: bool,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Open loop with nothing to decode: jump to the next arrival (idle time, not a step)."""
    next_s = arr_time[c.seen]
    gap = next_s - c.clock
    if measuring:
        c.idle += gap
        c.time += gap
        batch_acc[_batch_index(params, step), 1] += gap
    c.clock = next_s


# --- 2.–6. per-worker Attention, barrier, communication, FFN, pipeline ---------------------------


@njit(cache=True, inline="always")
def _attention_group(
    params: Params, groups: RecordArray, jitter: np.ndarray, jrow: int, j: int, attn_sum: float
) -> tuple[float, float, int, int]:  # pragma: no cover - compiled
    """Microbatch group j: each worker's t_A,w = (α_A + β_A·L_w,j)·ε_w, then the barrier.

    Returns the running Σ_w t_A,w (``attn_sum`` plus this group's), the barrier max_w t_A,w,
    max_w n_w,j and Σ_w n_w,j. A worker with nothing to decode in the group takes 0.
    """
    m = params.groups
    barrier = 0.0
    n_max = 0
    n_sum = 0
    for w in range(params.workers):
        group = groups[w * m + j]
        n = group.active
        # NOTE: without jitter the caller passes one row of ones and jrow 0; x·1.0 is exact.
        scale = jitter[jrow, w]
        t = 0.0
        if n > 0:
            t = (params.alpha_a + params.beta_a * group.load) * scale
        attn_sum += t
        barrier = max(barrier, t)
        n_max = max(n_max, n)
        n_sum += n
    return attn_sum, barrier, n_max, n_sum


@njit(cache=True, inline="always")
def _comm_time(params: Params, n_max: int, n: int) -> float:  # pragma: no cover - compiled
    """t_C = α_C + β_C·max_w n_w + γ_C·N."""
    return params.alpha_c + params.beta_c * n_max + params.gamma_c * n


@njit(cache=True, inline="always")
def _ffn_time(params: Params, n: int) -> float:  # pragma: no cover - compiled
    """t_F = α_F + β_F·N on the tokens actually present."""
    return params.alpha_f + params.beta_f * n


@njit(cache=True, inline="always")
def _flow_shop(flow: np.ndarray, m: int, layers: int) -> float:  # pragma: no cover - compiled
    """Makespan of m microbatches through ``layers`` layers of A → C → F.

    ``flow[3j : 3j+3]`` holds microbatch j's per-layer stage times; each stage serves one
    microbatch at a time and j's next-layer Attention waits for its own FFN.
    """
    free_a = 0.0
    free_c = 0.0
    free_f = 0.0
    for j in range(m):
        flow[3 * m + j] = 0.0
    for _layer in range(layers):
        for j in range(m):
            free_a = max(free_a, flow[3 * m + j]) + flow[3 * j]
            free_c = max(free_c, free_a) + flow[3 * j + 1]
            free_f = max(free_f, free_c) + flow[3 * j + 2]
            flow[3 * m + j] = free_f
    return free_f


@njit(cache=True, inline="always")
def _microbatch_step(
    params: Params, groups: RecordArray, flow: np.ndarray, jitter: np.ndarray, jrow: int
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """Per microbatch j: a_j, c_j, f_j (each paying the fixed costs), then the flow shop."""
    m = params.groups
    attn_sum = 0.0
    attn_max = 0.0
    comm = 0.0
    ffn = 0.0
    for j in range(m):
        attn_sum, a_j, n_max, n_j = _attention_group(params, groups, jitter, jrow, j, attn_sum)
        c_j = 0.0
        f_j = 0.0
        if n_j > 0:
            c_j = _comm_time(params, n_max, n_j)
            f_j = _ffn_time(params, n_j)
        attn_max += a_j
        comm += c_j
        ffn += f_j
        flow[3 * j] = a_j / params.layers
        flow[3 * j + 1] = c_j / params.layers
        flow[3 * j + 2] = f_j / params.layers
    return _flow_shop(flow, m, params.layers), attn_sum, attn_max, comm, ffn


@njit(cache=True, inline="always")
def _single_batch_step(
    params: Params, groups: RecordArray, jitter: np.ndarray, jrow: int
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """Overlapped (max) or serial (sum) pipeline: (τ, Σ_w t_A,w, barrier, t_C, t_F)."""
    attn_sum, barrier, n_max, n = _attention_group(params, groups, jitter, jrow, 0, 0.0)
    comm = _comm_time(params, n_max, n)
    ffn = _ffn_time(params, n)
    serial = params.pipeline == PIPELINE_SERIAL
    tau = barrier + comm + ffn if serial else max(barrier, comm, ffn)
    return tau, attn_sum, barrier, comm, ffn


# --- 7. book-keeping -----------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _record_series(
    series: np.ndarray, row: int, tau: float, attn_max: float, attn_mean: float, comm: float,
    ffn: float, n_tok: int, load: int,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    series[row, SER_STEP_TIME] = tau
    series[row, SER_ATTN_MAX] = attn_max
    series[row, SER_ATTN_MEAN] = attn_mean
    series[row, SER_COMM] = comm
    series[row, SER_FFN] = ffn
    series[row, SER_ACTIVE] = n_tok
    series[row, SER_LOAD] = load


@njit(cache=True, inline="always")
def _add_measured(
    params: Params, c: Record, batch_acc: np.ndarray, step: int, tau: float, attn_max: float,
    attn_mean: float, comm: float, ffn: float,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """A measured step adds to the metrics' sums and to its batch-means batch."""
    n_tok = c.active
    c.time += tau
    c.tau += tau
    c.tokens += n_tok
    c.attn_mean += attn_mean
    c.attn_max += attn_max
    c.ffn += ffn
    c.comm += comm
    c.load_sum += c.load
    in_system = n_tok
    if params.open_loop:
        in_system += c.seen - c.head
    c.in_system += in_system * tau
    k = _batch_index(params, step)
    batch_acc[k, 0] += n_tok
    batch_acc[k, 1] += tau


# --- 8. advance: contexts grow, requests finish --------------------------------------------------


@njit(cache=True, inline="always")
def _finishing_slots(
    params: Params, c: Record, slots: RecordArray, cal_head: np.ndarray, cal_next: np.ndarray,
    fin: np.ndarray, step: int,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """Empty this step's calendar bucket into ``fin[0, :n]`` (in no order); return n.

    Their final contexts P + D leave the bundle's load here. NOTE: reading each finishing
    slot's record while walking the bucket also overlaps its cache misses (the walk itself
    only follows the small ``cal_next``); the completions then find the records cached.
    """
    bucket = step & (params.horizon - 1)
    n = 0
    released = 0
    slot = cal_head[bucket]
    while slot >= 0:
        fin[0, n] = slot
        n += 1
        released += slots[slot].prompt + slots[slot].decode
        slot = cal_next[slot]
    cal_head[bucket] = -1
    c.load -= released
    return n


@njit(cache=True, inline="always")
def _rank_sort(fin: np.ndarray, n: int) -> None:  # pragma: no cover - compiled
    """``fin[1, :n]`` = ``fin[0, :n]`` sorted. NOTE: slots in a bucket are distinct, so each
    one's rank is the count of smaller ones: branch-free and vectorised, this beats an
    insertion sort's mispredictions on the usual short buckets."""
    for a in range(n):
        v = fin[0, a]
        rank = 0
        for b in range(n):
            rank += fin[0, b] < v
        fin[1, rank] = v


@njit(cache=True, inline="always")
def _scan_sort(cal_next: np.ndarray, fin: np.ndarray, n: int) -> None:  # pragma: no cover
    """``fin[1, :n]`` = ``fin[0, :n]`` sorted, for a long bucket (a burst of admissions): mark
    the slots in their dead ``cal_next`` entries and scan every slot, O(r·b) — at most
    1/_RANK_SORT_MAX of the step's completion work."""
    for a in range(n):
        cal_next[fin[0, a]] = _FINISHING
    k = 0
    for slot in range(cal_next.shape[0]):
        if cal_next[slot] == _FINISHING:
            cal_next[slot] = -1
            fin[1, k] = slot
            k += 1


@njit(cache=True, inline="always")
def _complete(
    params: Params, c: Record, slots: RecordArray, groups: RecordArray, workers: RecordArray,
    completions: np.ndarray, slot: int, clock: float,
) -> None:  # pragma: no cover - compiled  # fmt: skip
    """Request in ``slot`` leaves after its D-th step: counts drop, measured metrics add up."""
    rec = slots[slot]
    p = rec.prompt
    d = rec.decode
    groups[rec.group].load -= p + d
    groups[rec.group].active -= 1
    workers[rec.worker].active -= 1
    workers[rec.worker].kv -= p + d
    c.active -= 1
    rec.active = 0
    if rec.start >= params.warmup:
        tpot = (clock - rec.t0) / d
        queue = rec.t0 - rec.arrival
        sojourn = clock - rec.arrival
        c.completed += 1
        c.tpot_sum += tpot
        c.queue_sum += queue
        c.sojourn_sum += sojourn
        # Systematic sample (every stride-th) for the percentiles: bounded memory. NOTE: a
        # countdown, not completed % stride, to keep an integer division off the hot path.
        if c.sample_left > 0:
            c.sample_left -= 1
        else:
            c.sample_left = params.comp_stride - 1
            row = c.comp_rows
            completions[row, COMP_TPOT] = tpot
            completions[row, COMP_QUEUE] = queue
            completions[row, COMP_SOJOURN] = sojourn
            c.comp_rows = row + 1


@njit(cache=True, inline="always")
def _requeue(c: Record, pending: np.ndarray, fin: np.ndarray, n: int) -> None:  # pragma: no cover
    """Closed loop: merge the n finished slots ``fin[1, :n]`` into the pending list (both sorted).

    From the back, in place: pending keeps slot order, as the reference's scan of all slots.
    """
    i = c.pending - 1
    k = c.pending + n - 1
    for j in range(n - 1, -1, -1):
        slot = fin[1, j]
        while i >= 0 and pending[i] > slot:
            pending[k] = pending[i]
            i -= 1
            k -= 1
        pending[k] = slot
        k -= 1
    c.pending += n


# --- the loop ------------------------------------------------------------------------------------


@njit(cache=True)
def run_chunk(
    step_end: int, params: Params, trace: RecordArray, arrivals: Arrivals, jitter: np.ndarray,
    jitter_step0: int, out_step0: int, counters: RecordArray, bundle: Bundle, out: Outputs,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """Advance the bundle to ``step_end``; return RC_DONE, RC_NEED_ARRIVALS or RC_BUFFER_FULL.

    See :mod:`afdsizer.sim._layout` for the records and :func:`afdsizer.sim.simulate` for the
    model each step implements. Mutates ``counters``, ``bundle`` and ``out`` in place; the caller
    may call again after refilling arrivals or draining the completion buffer.
    """
    c = counters[0]
    slots, pending, drawn, cal_head, cal_next, groups, workers, fin, flow = bundle
    step_time, series, completions, batch_acc = out
    n_slots = params.workers * params.slots_per_worker
    while c.step < step_end:
        step = c.step
        clock = c.clock
        measuring = step >= params.warmup
        if measuring and c.measure_start < 0.0:
            c.measure_start = clock
        # 1. Refill and admission at the start of the step.
        if params.open_loop:
            if not _enqueue_arrivals(c, arrivals.time, clock, measuring):
                return RC_NEED_ARRIVALS
            _admit_queue(params, c, arrivals.time, arrivals.prompt, arrivals.decode, slots,
                         cal_head, cal_next, groups, workers, clock, step)  # fmt: skip
            if c.active == 0:
                _skip_idle(params, c, arrivals.time, batch_acc, step, measuring)
                continue
        else:
            # Every pending slot draws its request first (NOTE: a pass of its own, so the cache
            # misses of the random trace reads overlap), then takes it if its worker has room.
            for q in range(c.pending):
                drawn[q] = _draw(params, c, trace, slots[pending[q]])
            kept = 0
            for q in range(c.pending):
                if not _refill(params, c, slots, cal_head, cal_next, groups, workers, pending[q],
                               drawn[q], clock, step):  # fmt: skip
                    pending[kept] = pending[q]
                    kept += 1
            c.pending = kept
        if c.comp_rows + n_slots > completions.shape[0]:
            return RC_BUFFER_FULL
        # 2.–6. Per-worker Attention, barrier, communication, FFN, pipeline. NOTE: helpers are
        # called only where their arrays are used; numba reference-counts arrays that inlined
        # code uses on one branch only, and that cost more than the step's arithmetic.
        jrow = step - jitter_step0 if params.jitter else 0
        if params.pipeline == PIPELINE_MICROBATCH:
            tau, attn_sum, attn_max, comm, ffn = _microbatch_step(params, groups, flow, jitter,
                                                                  jrow)  # fmt: skip
        else:
            tau, attn_sum, attn_max, comm, ffn = _single_batch_step(params, groups, jitter, jrow)
        # 7. Book-keeping; the clock moves on by τ.
        attn_mean = attn_sum / params.workers
        step_time[step - out_step0] = tau
        if params.record:
            _record_series(series, step - out_step0, tau, attn_max, attn_mean, comm, ffn,
                           c.active, c.load)  # fmt: skip
        if measuring:
            _add_measured(params, c, batch_acc, step, tau, attn_max, attn_mean, comm, ffn)
        c.clock = c.clock + tau
        # 8. Advance: every active context grows by one token, finished requests leave (their
        # slots refill at the start of the next step).
        for g in range(groups.shape[0]):
            groups[g].load += groups[g].active
        c.load += c.active
        clock = c.clock
        n_done = _finishing_slots(params, c, slots, cal_head, cal_next, fin, step)
        if n_done <= _RANK_SORT_MAX:
            _rank_sort(fin, n_done)
        else:
            _scan_sort(cal_next, fin, n_done)
        for q in range(n_done):
            _complete(params, c, slots, groups, workers, completions, fin[1, q], clock)
        if not params.open_loop:
            _requeue(c, pending, fin, n_done)
        c.step = step + 1
    return RC_DONE
