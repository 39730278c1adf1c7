"""The compiled step loop of the simulator (numba), O(r) plus the completions per step.

:func:`run_chunk` advances one rA–1F bundle from ``state_i[SI_STEP]`` to ``step_end``. It keeps
per-group load and active counts and a calendar (ring of linked lists indexed by finish step) of
the requests in flight, so a step touches each worker once and each finishing request once; it
never scans the B slots of a worker except to pick a free slot on an open-loop admission.
:mod:`afdsizer.sim.reference` is the plain-Python engine with the same signature that recomputes
everything from the slots each step; the tests require both to agree exactly.

All randomness is either drawn beforehand by the caller (jitter, open-loop arrivals) or comes from
:func:`request_index`, a counter-based hash of (seed, slot, admission count) written identically
in the reference, so that a slot receives the same request sequence whatever r is (common random
numbers). No fastmath: the float operations must happen in the same order as in the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import config as numba_config
from numba import njit

from afdsizer.sim import reference as _reference
from afdsizer.sim._layout import (
    COMP_QUEUE,
    COMP_SOJOURN,
    COMP_TPOT,
    PF_ALPHA_A,
    PF_ALPHA_C,
    PF_ALPHA_F,
    PF_BETA_A,
    PF_BETA_C,
    PF_BETA_F,
    PF_GAMMA_C,
    PI_BATCH,
    PI_COMP_STRIDE,
    PI_GROUPS,
    PI_HORIZON,
    PI_JITTER,
    PI_KV_CAP,
    PI_LAYERS,
    PI_MEASURED,
    PI_N_BATCHES,
    PI_OPEN,
    PI_PIPELINE,
    PI_RATIO,
    PI_RECORD,
    PI_REPLAY,
    PI_SEED,
    PI_WARMUP,
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
    SF_ARRIVALS,
    SF_ATTN_MAX,
    SF_ATTN_MEAN,
    SF_CLOCK,
    SF_COMM,
    SF_COMPLETED,
    SF_FFN,
    SF_IDLE,
    SF_IN_SYSTEM,
    SF_LOAD,
    SF_MEASURE_START,
    SF_QUEUE_SUM,
    SF_SOJOURN_SUM,
    SF_TAU,
    SF_TIME,
    SF_TOKENS,
    SF_TPOT_SUM,
    SI_ACTIVE,
    SI_COMP,
    SI_HEAD,
    SI_LOAD,
    SI_PENDING,
    SI_REPLAY,
    SI_SEEN,
    SI_STEP,
)

__all__ = ["request_index", "run_chunk"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_SHORT_BUCKET = 32
"""Completion buckets up to this length are insertion-sorted, longer ones quicksorted."""


@njit(cache=True)
def _mix64(z: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    # splitmix64 finaliser: a bijection of 64-bit words with good avalanche.
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _request_index(seed: int, slot: int, count: int, n: int) -> int:  # pragma: no cover
    """Trace row of the ``count``-th request slot ``slot`` receives under ``seed`` (0 … n−1)."""
    z = _mix64(np.uint64(seed) + _GOLDEN)
    z = _mix64(z ^ np.uint64(slot))
    z = _mix64(z + np.uint64(count) * _GOLDEN)
    # Lemire's multiply-shift maps the high 32 bits onto 0 … n−1 without a division.
    return int(((z >> _S32) * np.uint64(n)) >> _S32)


request_index: Callable[[int, int, int, int], int] = _request_index
if getattr(numba_config, "DISABLE_JIT", False):  # pragma: no cover - coverage runs only
    # NOTE: uncompiled, numpy uint64 arithmetic warns on its intended wrap-around (an error
    # under -W error); the reference's Python-int hash is bit-identical and does not.
    request_index = _reference.request_index


@njit(cache=True, inline="always")
def _admit(
    slot: int,
    p: int,
    d: int,
    arrival_s: float,
    clock: float,
    step: int,
    params_i: np.ndarray,
    state_i: np.ndarray,
    slot_w: np.ndarray,
    slot_g: np.ndarray,
    slot_P: np.ndarray,
    slot_D: np.ndarray,
    slot_start: np.ndarray,
    slot_t0: np.ndarray,
    slot_arr: np.ndarray,
    slot_active: np.ndarray,
    cal_head: np.ndarray,
    cal_next: np.ndarray,
    g_load: np.ndarray,
    g_active: np.ndarray,
    w_active: np.ndarray,
    w_kv: np.ndarray,
) -> None:  # pragma: no cover - compiled
    w = slot_w[slot]
    g = slot_g[slot]
    slot_P[slot] = p
    slot_D[slot] = d
    slot_start[slot] = step
    slot_t0[slot] = clock
    slot_arr[slot] = arrival_s
    slot_active[slot] = 1
    g_load[g] += p
    g_active[g] += 1
    w_active[w] += 1
    w_kv[w] += p + d
    state_i[SI_ACTIVE] += 1
    state_i[SI_LOAD] += p
    # NOTE: calendar instead of a heap — O(1) insert; bucket = finish step mod H, H > max D.
    bucket = (step + d - 1) & (params_i[PI_HORIZON] - 1)
    cal_next[slot] = cal_head[bucket]
    cal_head[bucket] = slot


@njit(cache=True)
def run_chunk(
    step_end: int,
    params_f: np.ndarray,
    params_i: np.ndarray,
    trace_P: np.ndarray,
    trace_D: np.ndarray,
    arr_time: np.ndarray,
    arr_P: np.ndarray,
    arr_D: np.ndarray,
    jitter: np.ndarray,
    jitter_step0: int,
    out_step0: int,
    state_i: np.ndarray,
    state_f: np.ndarray,
    slot_w: np.ndarray,
    slot_g: np.ndarray,
    slot_P: np.ndarray,
    slot_D: np.ndarray,
    slot_start: np.ndarray,
    slot_t0: np.ndarray,
    slot_arr: np.ndarray,
    slot_active: np.ndarray,
    slot_next: np.ndarray,
    slot_count: np.ndarray,
    pending: np.ndarray,
    cal_head: np.ndarray,
    cal_next: np.ndarray,
    g_load: np.ndarray,
    g_active: np.ndarray,
    w_active: np.ndarray,
    w_kv: np.ndarray,
    scratch_i: np.ndarray,
    scratch_f: np.ndarray,
    step_time_out: np.ndarray,
    series_out: np.ndarray,
    comp_out: np.ndarray,
    batch_acc: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Advance the bundle to ``step_end``; return RC_DONE, RC_NEED_ARRIVALS or RC_BUFFER_FULL.

    See :mod:`afdsizer.sim._layout` for the array layout and :mod:`afdsizer.sim._engine` for
    the model each step implements. Mutates every state array in place; the caller may call
    again with the same arguments after refilling arrivals or draining the completion buffer.
    """
    alpha_a = params_f[PF_ALPHA_A]
    beta_a = params_f[PF_BETA_A]
    alpha_c = params_f[PF_ALPHA_C]
    beta_c = params_f[PF_BETA_C]
    gamma_c = params_f[PF_GAMMA_C]
    alpha_f = params_f[PF_ALPHA_F]
    beta_f = params_f[PF_BETA_F]
    r = params_i[PI_RATIO]
    B = params_i[PI_BATCH]
    m = params_i[PI_GROUPS]
    pipeline = params_i[PI_PIPELINE]
    layers = params_i[PI_LAYERS]
    is_open = params_i[PI_OPEN] == 1
    replay = params_i[PI_REPLAY] == 1
    seed = params_i[PI_SEED]
    kv_cap = params_i[PI_KV_CAP]
    warmup = params_i[PI_WARMUP]
    n_batches = params_i[PI_N_BATCHES]
    measured_steps = params_i[PI_MEASURED]
    record = params_i[PI_RECORD] == 1
    use_jitter = params_i[PI_JITTER] == 1
    H = params_i[PI_HORIZON]
    comp_stride = params_i[PI_COMP_STRIDE]
    S = r * B
    G = r * m
    n_trace = trace_P.shape[0]
    n_arr = arr_time.shape[0]
    cap = comp_out.shape[0]
    per_group = B // m

    while state_i[SI_STEP] < step_end:
        step = state_i[SI_STEP]
        clock = state_f[SF_CLOCK]
        measuring = step >= warmup
        if measuring and state_f[SF_MEASURE_START] < 0.0:
            state_f[SF_MEASURE_START] = clock

        # 1. Admissions at the start of the step.
        if is_open:
            # Arrivals up to now join the FIFO queue; each adds its wait before `clock` to ∫N dt.
            seen = state_i[SI_SEEN]
            while seen < n_arr and arr_time[seen] <= clock:
                if measuring and arr_time[seen] > state_f[SF_MEASURE_START]:
                    state_f[SF_IN_SYSTEM] += clock - arr_time[seen]
                    state_f[SF_ARRIVALS] += 1.0
                seen += 1
            state_i[SI_SEEN] = seen
            if seen == n_arr:
                return RC_NEED_ARRIVALS  # later arrivals may also be due by now
            head = state_i[SI_HEAD]
            while head < seen:
                p = arr_P[head]
                d = arr_D[head]
                # Worker with the most free slots that has KV room (lowest index on ties).
                best_w = -1
                best_free = 0
                for w in range(r):
                    free = B - w_active[w]
                    if free > best_free and (kv_cap < 0 or w_kv[w] + p + d <= kv_cap):
                        best_w = w
                        best_free = free
                if best_w < 0:
                    break  # FIFO: the head waits, and everyone behind it
                best_j = 0
                best_gfree = -1
                for j in range(m):
                    gfree = per_group - g_active[best_w * m + j]
                    if gfree > best_gfree:
                        best_j = j
                        best_gfree = gfree
                slot = best_w * B + best_j
                while slot_active[slot] == 1:
                    slot += m
                _admit(
                    slot,
                    p,
                    d,
                    arr_time[head],
                    clock,
                    step,
                    params_i,
                    state_i,
                    slot_w,
                    slot_g,
                    slot_P,
                    slot_D,
                    slot_start,
                    slot_t0,
                    slot_arr,
                    slot_active,
                    cal_head,
                    cal_next,
                    g_load,
                    g_active,
                    w_active,
                    w_kv,
                )
                head += 1
            state_i[SI_HEAD] = head
            if state_i[SI_ACTIVE] == 0:
                # Nothing to decode: jump to the next arrival (idle time, not a step).
                gap = arr_time[seen] - clock
                if measuring:
                    state_f[SF_IDLE] += gap
                    state_f[SF_TIME] += gap
                    k = (step - warmup) * n_batches // measured_steps
                    batch_acc[k, 1] += gap
                state_f[SF_CLOCK] = arr_time[seen]
                continue
        else:
            n_pend = state_i[SI_PENDING]
            kept = 0
            for q in range(n_pend):
                slot = pending[q]
                if slot_next[slot] < 0:
                    if replay:
                        slot_next[slot] = state_i[SI_REPLAY] % n_trace
                        state_i[SI_REPLAY] += 1
                    else:
                        slot_next[slot] = request_index(seed, slot, slot_count[slot], n_trace)
                    slot_count[slot] += 1
                idx = slot_next[slot]
                p = trace_P[idx]
                d = trace_D[idx]
                w = slot_w[slot]
                if kv_cap < 0 or w_kv[w] + p + d <= kv_cap:
                    slot_next[slot] = -1
                    _admit(
                        slot,
                        p,
                        d,
                        clock,
                        clock,
                        step,
                        params_i,
                        state_i,
                        slot_w,
                        slot_g,
                        slot_P,
                        slot_D,
                        slot_start,
                        slot_t0,
                        slot_arr,
                        slot_active,
                        cal_head,
                        cal_next,
                        g_load,
                        g_active,
                        w_active,
                        w_kv,
                    )
                else:
                    pending[kept] = slot
                    kept += 1
            state_i[SI_PENDING] = kept

        if state_i[SI_COMP] + S > cap:
            return RC_BUFFER_FULL

        # 2. Step time from the loads (DESIGN.md §2, §6).
        n_tok = state_i[SI_ACTIVE]
        attn_sum = 0.0  # Σ_w t_A,w (over microbatches too)
        attn_max = 0.0  # Σ_j max_w t_A,w,j: what the barrier makes the Attention side take
        comm_tot = 0.0
        ffn_tot = 0.0
        tau = 0.0
        if pipeline != 2:
            nmax = 0
            for w in range(r):
                t = 0.0
                if g_active[w] > 0:
                    t = alpha_a + beta_a * g_load[w]
                    if use_jitter:
                        t = t * jitter[step - jitter_step0, w]
                attn_sum += t
                if t > attn_max:
                    attn_max = t
                if g_active[w] > nmax:
                    nmax = g_active[w]
            comm_tot = alpha_c + beta_c * nmax + gamma_c * n_tok
            ffn_tot = alpha_f + beta_f * n_tok
            if pipeline == 1:
                tau = attn_max + comm_tot + ffn_tot
            else:
                tau = max(attn_max, comm_tot, ffn_tot)
        else:
            # Per microbatch j: a_j, c_j, f_j for all layers, then the layer-by-layer flow shop.
            for j in range(m):
                a_j = 0.0
                nmax = 0
                n_j = 0
                for w in range(r):
                    g = w * m + j
                    t = 0.0
                    if g_active[g] > 0:
                        t = alpha_a + beta_a * g_load[g]
                        if use_jitter:
                            t = t * jitter[step - jitter_step0, w]
                    attn_sum += t
                    if t > a_j:
                        a_j = t
                    if g_active[g] > nmax:
                        nmax = g_active[g]
                    n_j += g_active[g]
                c_j = 0.0
                f_j = 0.0
                if n_j > 0:
                    c_j = alpha_c + beta_c * nmax + gamma_c * n_j
                    f_j = alpha_f + beta_f * n_j
                attn_max += a_j
                comm_tot += c_j
                ffn_tot += f_j
                scratch_f[3 * j] = a_j / layers
                scratch_f[3 * j + 1] = c_j / layers
                scratch_f[3 * j + 2] = f_j / layers
            free_a = 0.0
            free_c = 0.0
            free_f = 0.0
            for j in range(m):
                scratch_f[3 * m + j] = 0.0
            for _layer in range(layers):
                for j in range(m):
                    s_a = max(free_a, scratch_f[3 * m + j])
                    free_a = s_a + scratch_f[3 * j]
                    s_c = max(free_c, free_a)
                    free_c = s_c + scratch_f[3 * j + 1]
                    s_f = max(free_f, free_c)
                    free_f = s_f + scratch_f[3 * j + 2]
                    scratch_f[3 * m + j] = free_f
            tau = free_f
        attn_mean = attn_sum / r
        load_tot = state_i[SI_LOAD]

        # 3. Book-keeping of the step.
        step_time_out[step - out_step0] = tau
        if record:
            row = step - out_step0
            series_out[row, SER_STEP_TIME] = tau
            series_out[row, SER_ATTN_MAX] = attn_max
            series_out[row, SER_ATTN_MEAN] = attn_mean
            series_out[row, SER_COMM] = comm_tot
            series_out[row, SER_FFN] = ffn_tot
            series_out[row, SER_ACTIVE] = n_tok
            series_out[row, SER_LOAD] = load_tot
        if measuring:
            state_f[SF_TIME] += tau
            state_f[SF_TAU] += tau
            state_f[SF_TOKENS] += n_tok
            state_f[SF_ATTN_MEAN] += attn_mean
            state_f[SF_ATTN_MAX] += attn_max
            state_f[SF_FFN] += ffn_tot
            state_f[SF_COMM] += comm_tot
            state_f[SF_LOAD] += load_tot
            in_system = n_tok
            if is_open:
                in_system += state_i[SI_SEEN] - state_i[SI_HEAD]
            state_f[SF_IN_SYSTEM] += in_system * tau
            k = (step - warmup) * n_batches // measured_steps
            batch_acc[k, 0] += n_tok
            batch_acc[k, 1] += tau
        clock = clock + tau
        state_f[SF_CLOCK] = clock

        # 4. Every active slot's context grows by one token.
        for g in range(G):
            g_load[g] += g_active[g]
        state_i[SI_LOAD] += n_tok

        # 5. Completions: the calendar bucket of this step, processed in slot order.
        bucket = step & (H - 1)
        n_done = 0
        slot = cal_head[bucket]
        while slot >= 0:
            scratch_i[n_done] = slot
            n_done += 1
            slot = cal_next[slot]
        cal_head[bucket] = -1
        if n_done > _SHORT_BUCKET:
            scratch_i[:n_done].sort()
        else:
            for a in range(1, n_done):  # insertion sort: most buckets are short
                v = scratch_i[a]
                b = a - 1
                while b >= 0 and scratch_i[b] > v:
                    scratch_i[b + 1] = scratch_i[b]
                    b -= 1
                scratch_i[b + 1] = v
        n_pend = state_i[SI_PENDING]
        for q in range(n_done):
            slot = scratch_i[q]
            p = slot_P[slot]
            d = slot_D[slot]
            w = slot_w[slot]
            g = slot_g[slot]
            g_load[g] -= p + d
            g_active[g] -= 1
            w_active[w] -= 1
            w_kv[w] -= p + d
            state_i[SI_ACTIVE] -= 1
            state_i[SI_LOAD] -= p + d
            slot_active[slot] = 0
            if slot_start[slot] >= warmup:
                tpot = (clock - slot_t0[slot]) / d
                queue = slot_t0[slot] - slot_arr[slot]
                sojourn = clock - slot_arr[slot]
                n_completed = state_f[SF_COMPLETED]
                state_f[SF_COMPLETED] = n_completed + 1.0
                state_f[SF_TPOT_SUM] += tpot
                state_f[SF_QUEUE_SUM] += queue
                state_f[SF_SOJOURN_SUM] += sojourn
                # Systematic sample (every stride-th) for the percentiles: bounded memory.
                if np.int64(n_completed) % comp_stride == 0:
                    c = state_i[SI_COMP]
                    comp_out[c, COMP_TPOT] = tpot
                    comp_out[c, COMP_QUEUE] = queue
                    comp_out[c, COMP_SOJOURN] = sojourn
                    state_i[SI_COMP] = c + 1
            if not is_open:
                # Sorted insert (pending stays ordered by slot; mostly an append).
                b = n_pend - 1
                while b >= 0 and pending[b] > slot:
                    pending[b + 1] = pending[b]
                    b -= 1
                pending[b + 1] = slot
                n_pend += 1
        state_i[SI_PENDING] = n_pend
        state_i[SI_STEP] = step + 1
    return RC_DONE
