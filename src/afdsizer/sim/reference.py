"""Plain-Python reference engine of the simulator: obviously correct, O(r·B) per step.

:func:`run_chunk` has the signature of the compiled :func:`afdsizer.sim._kernel.run_chunk` and
implements the same model, but keeps no incremental book-keeping: every step it recomputes each
worker's load from its slots (slot convention: a request (P, D) admitted at step s attends to
P + (t − s) tokens at step t and finishes at the end of step s + D − 1) and scans all slots for
completions. The compiled engine must agree with it exactly (tests/sim/test_reference.py); use it
through :func:`afdsizer.sim.simulate` with ``engine="reference"``.

It ignores the kernel-only arrays (``slot_w``, ``slot_g``, ``pending``, ``cal_head``,
``cal_next``, ``g_load``, ``g_active``, ``w_active``, ``w_kv``, ``scratch_i``) and leaves them
untouched.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

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
    SI_COMP,
    SI_HEAD,
    SI_REPLAY,
    SI_SEEN,
    SI_STEP,
)

__all__ = ["request_index", "run_chunk"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

Array = npt.NDArray[Any]


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


def run_chunk(
    step_end: int,
    params_f: Array,
    params_i: Array,
    trace_P: Array,
    trace_D: Array,
    arr_time: Array,
    arr_P: Array,
    arr_D: Array,
    jitter: Array,
    jitter_step0: int,
    out_step0: int,
    state_i: Array,
    state_f: Array,
    slot_w: Array,
    slot_g: Array,
    slot_P: Array,
    slot_D: Array,
    slot_start: Array,
    slot_t0: Array,
    slot_arr: Array,
    slot_active: Array,
    slot_next: Array,
    slot_count: Array,
    pending: Array,
    cal_head: Array,
    cal_next: Array,
    g_load: Array,
    g_active: Array,
    w_active: Array,
    w_kv: Array,
    scratch_i: Array,
    scratch_f: Array,
    step_time_out: Array,
    series_out: Array,
    comp_out: Array,
    batch_acc: Array,
) -> int:
    """Advance the bundle to ``step_end``; same contract as the compiled kernel."""
    alpha_a = float(params_f[PF_ALPHA_A])
    beta_a = float(params_f[PF_BETA_A])
    alpha_c = float(params_f[PF_ALPHA_C])
    beta_c = float(params_f[PF_BETA_C])
    gamma_c = float(params_f[PF_GAMMA_C])
    alpha_f = float(params_f[PF_ALPHA_F])
    beta_f = float(params_f[PF_BETA_F])
    r = int(params_i[PI_RATIO])
    B = int(params_i[PI_BATCH])
    m = int(params_i[PI_GROUPS])
    pipeline = int(params_i[PI_PIPELINE])
    layers = int(params_i[PI_LAYERS])
    is_open = int(params_i[PI_OPEN]) == 1
    replay = int(params_i[PI_REPLAY]) == 1
    seed = int(params_i[PI_SEED])
    kv_cap = int(params_i[PI_KV_CAP])
    warmup = int(params_i[PI_WARMUP])
    n_batches = int(params_i[PI_N_BATCHES])
    measured_steps = int(params_i[PI_MEASURED])
    record = int(params_i[PI_RECORD]) == 1
    use_jitter = int(params_i[PI_JITTER]) == 1
    comp_stride = int(params_i[PI_COMP_STRIDE])
    S = r * B
    n_trace = len(trace_P)
    n_arr = len(arr_time)

    def group_of(slot: int) -> tuple[int, int]:
        return slot // B, (slot % B) % m

    def worker_slots(w: int) -> range:
        return range(w * B, (w + 1) * B)

    def kv_reserved(w: int) -> int:
        # KV a worker has promised: final context P + D of each request in its slots.
        return sum(int(slot_P[s] + slot_D[s]) for s in worker_slots(w) if slot_active[s])

    def admit(slot: int, p: int, d: int, arrival_s: float, clock: float, step: int) -> None:
        slot_P[slot] = p
        slot_D[slot] = d
        slot_start[slot] = step
        slot_t0[slot] = clock
        slot_arr[slot] = arrival_s
        slot_active[slot] = 1

    while int(state_i[SI_STEP]) < step_end:
        step = int(state_i[SI_STEP])
        clock = float(state_f[SF_CLOCK])
        measuring = step >= warmup
        if measuring and state_f[SF_MEASURE_START] < 0.0:
            state_f[SF_MEASURE_START] = clock

        # 1. Admissions.
        if is_open:
            seen = int(state_i[SI_SEEN])
            while seen < n_arr and arr_time[seen] <= clock:
                if measuring and arr_time[seen] > state_f[SF_MEASURE_START]:
                    state_f[SF_IN_SYSTEM] += clock - float(arr_time[seen])
                    state_f[SF_ARRIVALS] += 1.0
                seen += 1
            state_i[SI_SEEN] = seen
            if seen == n_arr:
                return RC_NEED_ARRIVALS
            head = int(state_i[SI_HEAD])
            while head < seen:
                p, d = int(arr_P[head]), int(arr_D[head])
                candidates = []
                for w in range(r):
                    free = B - sum(int(slot_active[s]) for s in worker_slots(w))
                    if free > 0 and (kv_cap < 0 or kv_reserved(w) + p + d <= kv_cap):
                        candidates.append((-free, w))
                if not candidates:
                    break
                w = min(candidates)[1]
                group_free = [
                    sum(1 for b in range(j, B, m) if not slot_active[w * B + b]) for j in range(m)
                ]
                j = max(range(m), key=lambda jj: (group_free[jj], -jj))
                slot = next(w * B + b for b in range(j, B, m) if not slot_active[w * B + b])
                admit(slot, p, d, float(arr_time[head]), clock, step)
                head += 1
            state_i[SI_HEAD] = head
            if not any(slot_active[s] for s in range(S)):
                gap = float(arr_time[seen]) - clock
                if measuring:
                    state_f[SF_IDLE] += gap
                    state_f[SF_TIME] += gap
                    batch_acc[(step - warmup) * n_batches // measured_steps, 1] += gap
                state_f[SF_CLOCK] = arr_time[seen]
                continue
        else:
            # Closed loop: every empty slot wants its next request, in slot order.
            for slot in range(S):
                if slot_active[slot]:
                    continue
                if slot_next[slot] < 0:
                    if replay:
                        slot_next[slot] = int(state_i[SI_REPLAY]) % n_trace
                        state_i[SI_REPLAY] += 1
                    else:
                        slot_next[slot] = request_index(seed, slot, int(slot_count[slot]), n_trace)
                    slot_count[slot] += 1
                idx = int(slot_next[slot])
                p, d = int(trace_P[idx]), int(trace_D[idx])
                if kv_cap < 0 or kv_reserved(slot // B) + p + d <= kv_cap:
                    slot_next[slot] = -1
                    admit(slot, p, d, clock, clock, step)

        if int(state_i[SI_COMP]) + S > len(comp_out):
            return RC_BUFFER_FULL

        # 2. Loads recomputed from the slots: L_{w,j} = Σ (P + step − start).
        load = [[0] * m for _ in range(r)]
        count = [[0] * m for _ in range(r)]
        for slot in range(S):
            if slot_active[slot]:
                w, j = group_of(slot)
                load[w][j] += int(slot_P[slot]) + step - int(slot_start[slot])
                count[w][j] += 1
        n_tok = sum(sum(c) for c in count)
        load_tot = sum(sum(x) for x in load)

        # t_A,w,j = (α_A + β_A·L_w,j)·ε_w; a worker (group) with nothing to decode takes 0.
        t_attn = [[0.0] * m for _ in range(r)]
        for w in range(r):
            for j in range(m):
                if count[w][j]:
                    t = alpha_a + beta_a * load[w][j]
                    if use_jitter:
                        t = t * float(jitter[step - jitter_step0, w])
                    t_attn[w][j] = t

        attn_sum = 0.0
        attn_max = 0.0
        comm_tot = 0.0
        ffn_tot = 0.0
        if pipeline != 2:
            times = [t_attn[w][0] for w in range(r)]
            for t in times:
                attn_sum += t
            attn_max = max(times)
            nmax = max(count[w][0] for w in range(r))
            comm_tot = alpha_c + beta_c * nmax + gamma_c * n_tok
            ffn_tot = alpha_f + beta_f * n_tok
            if pipeline == 1:
                tau = attn_max + comm_tot + ffn_tot
            else:
                tau = max(attn_max, comm_tot, ffn_tot)
        else:
            stage = []
            for j in range(m):
                times = [t_attn[w][j] for w in range(r)]
                for t in times:
                    attn_sum += t
                a_j = max(times)
                n_j = sum(count[w][j] for w in range(r))
                nmax = max(count[w][j] for w in range(r))
                c_j = alpha_c + beta_c * nmax + gamma_c * n_j if n_j else 0.0
                f_j = alpha_f + beta_f * n_j if n_j else 0.0
                attn_max += a_j
                comm_tot += c_j
                ffn_tot += f_j
                stage.append((a_j / layers, c_j / layers, f_j / layers))
            # Flow shop: per layer, microbatch j goes A → C → F; each stage serves one at a time
            # and microbatch j's next-layer Attention waits for its FFN.
            free_a = free_c = free_f = 0.0
            done_f = [0.0] * m
            for _layer in range(layers):
                for j in range(m):
                    free_a = max(free_a, done_f[j]) + stage[j][0]
                    free_c = max(free_c, free_a) + stage[j][1]
                    free_f = max(free_f, free_c) + stage[j][2]
                    done_f[j] = free_f
            tau = free_f
        attn_mean = attn_sum / r

        # 3. Book-keeping.
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
                in_system += int(state_i[SI_SEEN]) - int(state_i[SI_HEAD])
            state_f[SF_IN_SYSTEM] += in_system * tau
            k = (step - warmup) * n_batches // measured_steps
            batch_acc[k, 0] += n_tok
            batch_acc[k, 1] += tau
        clock = clock + tau
        state_f[SF_CLOCK] = clock

        # 4.–5. Completions (the step's contexts grew by one; nothing to update here).
        for slot in range(S):
            if not slot_active[slot]:
                continue
            d = int(slot_D[slot])
            if int(slot_start[slot]) + d - 1 != step:
                continue
            slot_active[slot] = 0
            if slot_start[slot] >= warmup:
                tpot = (clock - float(slot_t0[slot])) / d
                queue = float(slot_t0[slot]) - float(slot_arr[slot])
                sojourn = clock - float(slot_arr[slot])
                n_completed = int(state_f[SF_COMPLETED])
                state_f[SF_COMPLETED] += 1.0
                state_f[SF_TPOT_SUM] += tpot
                state_f[SF_QUEUE_SUM] += queue
                state_f[SF_SOJOURN_SUM] += sojourn
                if n_completed % comp_stride == 0:
                    c = int(state_i[SI_COMP])
                    comp_out[c, COMP_TPOT] = tpot
                    comp_out[c, COMP_QUEUE] = queue
                    comp_out[c, COMP_SOJOURN] = sojourn
                    state_i[SI_COMP] = c + 1
        state_i[SI_STEP] = step + 1
    return RC_DONE
