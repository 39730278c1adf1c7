"""The named records shared by the numba kernel and the plain-Python reference.

numba takes arrays, scalars and tuples of them, so the simulator's state travels as a few named
records instead of dozens of positional arrays:

- :class:`Params` — the run's constants (cost coefficients, bundle shape, modes);
- ``counters`` — one row of :data:`COUNTER_DTYPE`: the mutable scalars (clock, step, running
  sums of the metrics);
- ``slots`` — one row of :data:`SLOT_DTYPE` per request slot: the request it holds;
- :class:`Bundle` — ``slots`` plus the kernel's incremental book-keeping (per-group loads, the
  calendar of finish steps, the closed-loop pending list);
- ``trace`` (rows of :data:`REQUEST_DTYPE`) and :class:`Arrivals` — the requests to draw from
  and the open-loop arrivals;
- :class:`Outputs` — what a chunk of steps writes out (step times, series, completions, batches).

Nothing here computes anything.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__: list[str] = []

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
RecordArray = npt.NDArray[np.void]

PIPELINE_OVERLAPPED = 0
PIPELINE_SERIAL = 1
PIPELINE_MICROBATCH = 2
PIPELINE_CODES = {
    "overlapped": PIPELINE_OVERLAPPED,
    "serial": PIPELINE_SERIAL,
    "microbatch": PIPELINE_MICROBATCH,
}


PHASE_DRAW = 1 << 62
"""Hash counter of a slot's initial-phase draw (``stagger``); no slot ever draws this many."""


class Params(NamedTuple):
    """Constants of one run; the kernel and the reference read them, never write them."""

    alpha_a: float
    """α_A, Attention fixed time per step and microbatch, s."""
    beta_a: float
    """β_A, s per KV token attended."""
    alpha_c: float
    beta_c: float
    """β_C, s per token of the busiest worker's batch."""
    gamma_c: float
    """γ_C, s per token of the FFN batch (FFN-side ingress)."""
    alpha_f: float
    beta_f: float
    workers: int
    """Barrier workers, r·k (k = workers per Attention instance)."""
    slots_per_worker: int
    """b = B/k."""
    groups: int
    """m, microbatch groups per worker (1 unless the pipeline is microbatch)."""
    pipeline: int
    """One of the PIPELINE_* codes."""
    layers: int
    """L, layers the microbatch pipeline flows through."""
    open_loop: bool
    replay: bool
    """Refill from the trace rows in order instead of the seeded hash."""
    seed: int
    kv_cap: int
    """KV capacity per worker, tokens; -1 for unlimited."""
    warmup: int
    n_batches: int
    """Batches of the batch-means standard error."""
    measured: int
    """Measured steps (steps − warm-up), for the batch index."""
    record: bool
    jitter: bool
    horizon: int
    """H, calendar length: a power of two above the longest decode length."""
    comp_stride: int
    """Every this-many-th measured completion goes to the completion buffer (percentiles)."""
    stagger: bool
    """Closed loop: each slot's first request starts at a drawn step of its decode."""


COUNTER_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("replay_next", np.int64),  # closed loop: next trace row when replaying in order
        ("head", np.int64),  # open loop: first arrival (window index) not yet admitted
        ("seen", np.int64),  # open loop: first arrival not yet in the system (arrival > clock)
        ("pending", np.int64),  # kernel only, closed loop: entries used in the pending list
        ("comp_rows", np.int64),  # rows used in the completion buffer
        ("active", np.int64),  # kernel only: N, active slots in the bundle
        ("load", np.int64),  # kernel only: Σ_w L_w, KV tokens of all active slots
        ("completed", np.int64),  # measured requests finished (all, not only the sampled)
        ("sample_left", np.int64),  # kernel only: completions to skip before the next sample
        ("clock", np.float64),  # s
        ("measure_start", np.float64),  # clock at the first measured step, -1 before
        ("time", np.float64),  # measured wall time, s: step times plus open-loop idle gaps
        ("tau", np.float64),  # Σ τ over measured steps, s
        ("tokens", np.float64),  # Σ N
        ("attn_mean", np.float64),  # Σ mean_w t_A,w, s
        ("attn_max", np.float64),  # Σ barrier maxima, s
        ("ffn", np.float64),  # Σ t_F, s
        ("comm", np.float64),  # Σ t_C, s
        ("load_sum", np.float64),  # Σ Σ_w L_w, tokens
        ("idle", np.float64),  # open loop: time with nothing to decode, s
        ("in_system", np.float64),  # ∫ (requests queued or in a slot) dt, request·s
        ("arrivals", np.float64),  # measured arrivals
        ("tpot_sum", np.float64),  # s
        ("queue_sum", np.float64),  # s
        ("sojourn_sum", np.float64),  # s
    ]
)
"""The mutable scalars of a run: one row, updated in place by both engines."""

SLOT_DTYPE = np.dtype(
    [
        ("prompt", np.int64),  # P of the request in the slot, tokens
        ("decode", np.int64),  # D, tokens
        ("start", np.int64),  # step of its admission
        ("t0", np.float64),  # clock at its admission, s
        ("arrival", np.float64),  # its arrival time, s (= t0 in closed loop)
        ("next_row", np.int64),  # closed loop: trace row drawn for the slot's next request, -1
        ("draws", np.int64),  # requests the slot has drawn so far (the hash counter)
        ("key", np.uint64),  # kernel only: the slot's hash prefix, from (seed, slot)
        ("worker", np.int32),  # kernel only: w
        ("group", np.int32),  # kernel only: w·m + j, its (worker, microbatch) group
        ("active", np.int32),  # 1 while it holds a request
    ],
    align=True,
)
"""One request slot; a record (not one array per field) so a request's fields share cache lines."""


REQUEST_DTYPE = np.dtype([("prompt", np.int64), ("decode", np.int64)])
"""One trace request (P, D) in tokens; a record so that a draw reads one cache line."""


GROUP_DTYPE = np.dtype([("load", np.int64), ("active", np.int64)])
"""One (worker, microbatch) group: KV tokens its active slots attend to, and how many there are."""

WORKER_DTYPE = np.dtype([("active", np.int64), ("kv", np.int64)])
"""One barrier worker: active slots, and the final contexts P + D reserved on it (tokens)."""


class Bundle(NamedTuple):
    """The state of the bundle besides the counters; the reference uses ``slots`` only."""

    slots: RecordArray
    """(r·k·b,) of SLOT_DTYPE; slot s belongs to worker s // b, microbatch (s mod b) mod m."""
    pending: IntArray
    """Closed loop: empty slots waiting for a request, in slot order (first counters.pending)."""
    drawn: RecordArray
    """(r·k·b,) of REQUEST_DTYPE, scratch: the request drawn for each pending slot."""
    cal_head: IntArray
    """(H,) first slot finishing at each step mod H, -1 for none."""
    cal_next: npt.NDArray[np.int32]
    """(r·k·b,) next slot in the same calendar bucket, -1 at the end. NOTE: its own compact
    array, not a slot field, so that walking a bucket stays in the L1 cache."""
    groups: RecordArray
    """(r·k·m,) of GROUP_DTYPE, group w·m + j."""
    workers: RecordArray
    """(r·k,) of WORKER_DTYPE."""
    finished: IntArray
    """(2, r·k·b) scratch: the slots finishing in a step, as found and in slot order."""
    flow: FloatArray
    """(4·m,) scratch of the microbatch flow shop: per-layer stage times and finish times."""


class Arrivals(NamedTuple):
    """Open-loop arrivals of the current window, in time order (empty in closed loop)."""

    time: FloatArray
    prompt: IntArray
    decode: IntArray


class Outputs(NamedTuple):
    """What the steps of a chunk write; rows are indexed by step − out_step0."""

    step_time: FloatArray
    """(n,) τ of each step, s."""
    series: FloatArray
    """(n, N_SERIES) per-step series, or (0, N_SERIES) when not recorded."""
    completions: FloatArray
    """(cap, N_COMP) sampled completions; drained by the caller on RC_BUFFER_FULL."""
    batch_acc: FloatArray
    """(n_batches, 2) tokens and time of each batch-means batch."""


# --- series columns ------------------------------------------------------------------------------
SER_STEP_TIME = 0
SER_ATTN_MAX = 1
SER_ATTN_MEAN = 2
SER_COMM = 3
SER_FFN = 4
SER_ACTIVE = 5
SER_LOAD = 6
N_SERIES = 7

# --- completion buffer columns -------------------------------------------------------------------
COMP_TPOT = 0
COMP_QUEUE = 1
COMP_SOJOURN = 2
N_COMP = 3

# --- return codes --------------------------------------------------------------------------------
RC_DONE = 0
RC_NEED_ARRIVALS = 1
RC_BUFFER_FULL = 2
