"""Plain-Python reference engine of the simulator: obviously correct, O(r·B) per step.

:func:`run_chunk` has the signature of the compiled :func:`afdsizer.sim._kernel.run_chunk` and
implements the same model in the same order of helpers (docs/design.md §6: refill and admission →
per-worker Attention times → barrier → communication → FFN → pipeline → book-keeping → advance),
but keeps no incremental book-keeping: every step it recomputes each worker's load from its slots
(slot convention: a request (P, D) admitted at step s attends to P + (t − s) tokens at step t and
finishes at the end of step s + D − 1) and scans all slots for completions. The compiled engine
must agree with it exactly (tests/sim/test_reference.py); use it through
:func:`afdsizer.sim.simulate` with ``engine="reference"``.

Of the :class:`~afdsizer.sim._layout.Bundle` it reads and writes ``slots`` only, and of each
slot only the request fields (not ``worker``, ``group``, ``key``); the kernel-only
counters (``pending``, ``active``, ``load``, ``sample_left``) stay untouched.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from afdsizer.sim._layout import (
    COMP_QUEUE,
    COMP_SOJOURN,
    COMP_TPOT,
    COUNTER_DTYPE,
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
)

__all__ = ["request_index", "run_chunk"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

Array = npt.NDArray[Any]
Grid = list[list[int]]
"""Per (worker, microbatch group) values: grid[w][j]."""


def _mix64(z: int) -> int:
    # splitmix64 finaliser on Python ints, wrapped to 64 bits like the uint64 kernel code.
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def request_index(seed: int, slot: int, count: int, n: int) -> int:
    """Trace row of the ``count``-th request slot ``slot`` receives under ``seed`` (0 … n−1).

    A counter-based hash (splitmix64), so the sequence a slot receives depends only on
    (seed, slot), never on r or on the order of events: common random numbers across r.

    Examples
    --------
    >>> request_index(0, 3, 0, 10) == request_index(0, 3, 0, 10)
    True
    >>> 0 <= request_index(7, 1, 5, 100) < 100
    True
    """
    # Python ints (callers may pass numpy int64, which would overflow instead of wrapping).
    seed, slot, count, n = int(seed), int(slot), int(count), int(n)
    z = _mix64((seed + _GOLDEN) & _MASK64)
    z = _mix64(z ^ slot)
    z = _mix64((z + count * _GOLDEN) & _MASK64)
    # Lemire's multiply-shift maps the high 32 bits onto 0 … n−1 (as the kernel does).
    return ((z >> 32) * n) >> 32


class _Counters:
    """The counters row as plain attributes (numpy field access is slow); stored back at the end."""

    step: int
    replay_next: int
    head: int
    seen: int
    comp_rows: int
    completed: int
    clock: float
    measure_start: float
    time: float
    tau: float
    tokens: float
    attn_mean: float
    attn_max: float
    ffn: float
    comm: float
    load_sum: float
    idle: float
    in_system: float
    arrivals: float
    tpot_sum: float
    queue_sum: float
    sojourn_sum: float

    def __init__(self, row: np.void) -> None:
        for name in COUNTER_DTYPE.names or ():
            setattr(self, name, row[name].item())

    def store(self, row: np.void) -> None:
        for name in COUNTER_DTYPE.names or ():
            row[name] = getattr(self, name)


class _Slots(NamedTuple):
    """Views of the request fields of every slot (writes go to the slot records)."""

    prompt: Array
    decode: Array
    start: Array
    t0: Array
    arrival: Array
    next_row: Array
    draws: Array
    active: Array


def run_chunk(
    step_end: int,
    params: Params,
    trace: Array,
    arrivals: Arrivals,
    jitter: Array,
    jitter_step0: int,
    out_step0: int,
    counters: Array,
    bundle: Bundle,
    out: Outputs,
) -> int:
    """Advance the bundle to ``step_end``; same contract as the compiled kernel."""
    c = _Counters(counters[0])
    slots = _Slots(*(bundle.slots[name] for name in _Slots._fields))
    try:
        return _run(step_end, params, trace, arrivals, jitter, jitter_step0, out_step0, c, slots,
                    out)  # fmt: skip
    finally:
        c.store(counters[0])


def _run(
    step_end: int,
    params: Params,
    trace: Array,
    arrivals: Arrivals,
    jitter: Array,
    jitter_step0: int,
    out_step0: int,
    c: _Counters,
    s: _Slots,
    out: Outputs,
) -> int:
    n_slots = params.workers * params.slots_per_worker
    while c.step < step_end:
        step = c.step
        clock = c.clock
        measuring = step >= params.warmup
        if measuring and c.measure_start < 0.0:
            c.measure_start = clock
        # 1. Refill and admission.
        if params.open_loop:
            if not _enqueue_arrivals(c, arrivals, clock, measuring):
                return RC_NEED_ARRIVALS
            _admit_queue(params, c, arrivals, s, clock, step)
            if not s.active.any():
                _skip_idle(params, c, arrivals, out, step, measuring)
                continue
        else:
            _refill_closed(params, c, trace, s, clock, step)
        if c.comp_rows + n_slots > len(out.completions):
            return RC_BUFFER_FULL
        # 2. Per-worker Attention times, from loads recomputed from the slots.
        load, count = _group_loads(params, s, step)
        t_attn = _attention_times(params, load, count, jitter, step - jitter_step0)
        # 3.–6. Barrier, communication, FFN, pipeline.
        tau, attn_sum, attn_max, comm, ffn = _step_time(params, t_attn, count)
        # 7. Book-keeping.
        n_tok = sum(sum(row) for row in count)
        load_tot = sum(sum(row) for row in load)
        _book_step(params, c, out, step, step - out_step0, measuring, n_tok, load_tot,
                   (tau, attn_sum, attn_max, comm, ffn))  # fmt: skip
        # 8. Advance: the step's contexts grew by one (nothing to update); requests finish.
        _advance(params, c, s, out, step)
    return RC_DONE


# --- 1. refill and admission ---------------------------------------------------------------------


def _worker_slots(params: Params, w: int) -> range:
    b = params.slots_per_worker
    return range(w * b, (w + 1) * b)


def _kv_reserved(params: Params, s: _Slots, w: int) -> int:
    """KV a worker has promised: the final context P + D of each request in its slots."""
    return sum(int(s.prompt[k] + s.decode[k]) for k in _worker_slots(params, w) if s.active[k])


def _admit(s: _Slots, slot: int, p: int, d: int, arrival_s: float, clock: float, step: int) -> None:
    s.prompt[slot] = p
    s.decode[slot] = d
    s.start[slot] = step
    s.t0[slot] = clock
    s.arrival[slot] = arrival_s
    s.active[slot] = 1


def _refill_closed(
    params: Params, c: _Counters, trace: Array, s: _Slots, clock: float, step: int
) -> None:
    """Closed loop: every empty slot wants its next request, in slot order."""
    n_trace = len(trace)
    for slot in range(params.workers * params.slots_per_worker):
        if s.active[slot]:
            continue
        if s.next_row[slot] < 0:
            if params.replay:
                s.next_row[slot] = c.replay_next % n_trace
                c.replay_next += 1
            else:
                s.next_row[slot] = request_index(params.seed, slot, int(s.draws[slot]), n_trace)
            s.draws[slot] += 1
        row = int(s.next_row[slot])
        p, d = int(trace[row]["prompt"]), int(trace[row]["decode"])
        w = slot // params.slots_per_worker
        if params.kv_cap < 0 or _kv_reserved(params, s, w) + p + d <= params.kv_cap:
            s.next_row[slot] = -1
            _admit(s, slot, p, d, clock, clock, step)
            if params.stagger and step == 0:
                # Stationary start: as if admitted U{0 … D−1} steps before the run began.
                s.start[slot] = step - request_index(params.seed, slot, PHASE_DRAW, d)


def _enqueue_arrivals(c: _Counters, arrivals: Arrivals, clock: float, measuring: bool) -> bool:
    """Open loop: arrivals up to now join the queue; False when the window runs out."""
    seen = c.seen
    n = len(arrivals.time)
    while seen < n and arrivals.time[seen] <= clock:
        if measuring and arrivals.time[seen] > c.measure_start:
            c.in_system += clock - float(arrivals.time[seen])
            c.arrivals += 1.0
        seen += 1
    c.seen = seen
    return seen < n


def _admit_queue(
    params: Params, c: _Counters, arrivals: Arrivals, s: _Slots, clock: float, step: int
) -> None:
    """Open loop: the queue's head goes to the worker with the most free slots, while one fits."""
    b, m = params.slots_per_worker, params.groups
    head = c.head
    while head < c.seen:
        p, d = int(arrivals.prompt[head]), int(arrivals.decode[head])
        candidates = []
        for w in range(params.workers):
            free = b - sum(int(s.active[k]) for k in _worker_slots(params, w))
            if free > 0 and (
                params.kv_cap < 0 or _kv_reserved(params, s, w) + p + d <= params.kv_cap
            ):
                candidates.append((-free, w))
        if not candidates:
            break  # FIFO: the head waits, and everyone behind it
        w = min(candidates)[1]
        group_free = [sum(1 for k in range(j, b, m) if not s.active[w * b + k]) for j in range(m)]
        j = max(range(m), key=lambda jj: (group_free[jj], -jj))
        slot = next(w * b + k for k in range(j, b, m) if not s.active[w * b + k])
        _admit(s, slot, p, d, float(arrivals.time[head]), clock, step)
        head += 1
    c.head = head


def _skip_idle(
    params: Params, c: _Counters, arrivals: Arrivals, out: Outputs, step: int, measuring: bool
) -> None:
    """Nothing to decode: jump to the next arrival (idle time, not a step)."""
    next_s = float(arrivals.time[c.seen])
    gap = next_s - c.clock
    if measuring:
        c.idle += gap
        c.time += gap
        out.batch_acc[(step - params.warmup) * params.n_batches // params.measured, 1] += gap
    c.clock = next_s


# --- 2.–6. per-worker Attention, barrier, communication, FFN, pipeline ---------------------------


def _group_loads(params: Params, s: _Slots, step: int) -> tuple[Grid, Grid]:
    """L_{w,j} = Σ (P + step − start) and n_{w,j} over the active slots of each group."""
    b, m = params.slots_per_worker, params.groups
    load = [[0] * m for _ in range(params.workers)]
    count = [[0] * m for _ in range(params.workers)]
    for slot in range(params.workers * b):
        if s.active[slot]:
            w, j = slot // b, (slot % b) % m
            load[w][j] += int(s.prompt[slot]) + step - int(s.start[slot])
            count[w][j] += 1
    return load, count


def _attention_times(
    params: Params, load: Grid, count: Grid, jitter: Array, jrow: int
) -> list[list[float]]:
    """t_A,w,j = (α_A + β_A·L_w,j)·ε_w; a group with nothing to decode takes 0."""
    t_attn = [[0.0] * params.groups for _ in range(params.workers)]
    for w in range(params.workers):
        for j in range(params.groups):
            if count[w][j]:
                t = params.alpha_a + params.beta_a * load[w][j]
                if params.jitter:
                    t = t * float(jitter[jrow, w])
                t_attn[w][j] = t
    return t_attn


def _comm_time(params: Params, n_max: int, n: int) -> float:
    return params.alpha_c + params.beta_c * n_max + params.gamma_c * n


def _ffn_time(params: Params, n: int) -> float:
    return params.alpha_f + params.beta_f * n


def _flow_shop(stage: list[tuple[float, float, float]], layers: int) -> float:
    """Per layer, microbatch j goes A → C → F; each stage serves one at a time and j's
    next-layer Attention waits for its own FFN. Returns the makespan."""
    free_a = free_c = free_f = 0.0
    done_f = [0.0] * len(stage)
    for _layer in range(layers):
        for j, (a, c, f) in enumerate(stage):
            free_a = max(free_a, done_f[j]) + a
            free_c = max(free_c, free_a) + c
            free_f = max(free_f, free_c) + f
            done_f[j] = free_f
    return free_f


def _step_time(
    params: Params, t_attn: list[list[float]], count: Grid
) -> tuple[float, float, float, float, float]:
    """(τ, Σ_w t_A,w, barrier, t_C, t_F): the barrier and the parts per microbatch group j."""
    attn_sum = attn_max = comm = ffn = 0.0
    stage = []
    for j in range(params.groups):
        times = [t_attn[w][j] for w in range(params.workers)]
        for t in times:
            attn_sum += t
        barrier = max(times)
        n_j = sum(count[w][j] for w in range(params.workers))
        n_max = max(count[w][j] for w in range(params.workers))
        c_j = _comm_time(params, n_max, n_j)
        f_j = _ffn_time(params, n_j)
        if params.pipeline == PIPELINE_MICROBATCH and not n_j:
            c_j = f_j = 0.0  # an empty microbatch sends and computes nothing
        attn_max += barrier
        comm += c_j
        ffn += f_j
        stage.append((barrier / params.layers, c_j / params.layers, f_j / params.layers))
    if params.pipeline == PIPELINE_MICROBATCH:
        tau = _flow_shop(stage, params.layers)
    elif params.pipeline == PIPELINE_SERIAL:
        tau = attn_max + comm + ffn
    else:
        tau = max(attn_max, comm, ffn)
    return tau, attn_sum, attn_max, comm, ffn


# --- 7. book-keeping -----------------------------------------------------------------------------


def _book_step(
    params: Params,
    c: _Counters,
    out: Outputs,
    step: int,
    row: int,
    measuring: bool,
    n_tok: int,
    load_tot: int,
    times: tuple[float, float, float, float, float],
) -> None:
    tau, attn_sum, attn_max, comm, ffn = times
    attn_mean = attn_sum / params.workers
    out.step_time[row] = tau
    if params.record:
        out.series[row, SER_STEP_TIME] = tau
        out.series[row, SER_ATTN_MAX] = attn_max
        out.series[row, SER_ATTN_MEAN] = attn_mean
        out.series[row, SER_COMM] = comm
        out.series[row, SER_FFN] = ffn
        out.series[row, SER_ACTIVE] = n_tok
        out.series[row, SER_LOAD] = load_tot
    if measuring:
        c.time += tau
        c.tau += tau
        c.tokens += n_tok
        c.attn_mean += attn_mean
        c.attn_max += attn_max
        c.ffn += ffn
        c.comm += comm
        c.load_sum += load_tot
        in_system = n_tok
        if params.open_loop:
            in_system += c.seen - c.head
        c.in_system += in_system * tau
        k = (step - params.warmup) * params.n_batches // params.measured
        out.batch_acc[k, 0] += n_tok
        out.batch_acc[k, 1] += tau
    c.clock = c.clock + tau


# --- 8. advance ----------------------------------------------------------------------------------


def _advance(params: Params, c: _Counters, s: _Slots, out: Outputs, step: int) -> None:
    """Requests whose D-th step this was leave, in slot order."""
    for slot in range(params.workers * params.slots_per_worker):
        if not s.active[slot]:
            continue
        d = int(s.decode[slot])
        if int(s.start[slot]) + d - 1 != step:
            continue
        s.active[slot] = 0
        if s.start[slot] >= params.warmup:
            tpot = (c.clock - float(s.t0[slot])) / d
            queue = float(s.t0[slot]) - float(s.arrival[slot])
            sojourn = c.clock - float(s.arrival[slot])
            sampled = c.completed % params.comp_stride == 0
            c.completed += 1
            c.tpot_sum += tpot
            c.queue_sum += queue
            c.sojourn_sum += sojourn
            if sampled:
                out.completions[c.comp_rows, COMP_TPOT] = tpot
                out.completions[c.comp_rows, COMP_QUEUE] = queue
                out.completions[c.comp_rows, COMP_SOJOURN] = sojourn
                c.comp_rows += 1
    c.step = step + 1
