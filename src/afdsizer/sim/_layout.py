"""Index layout of the arrays shared by the numba kernel and the plain-Python reference.

Both engines take the same flat arrays (numba wants arrays and scalars only); these named
indices keep the two in step. Nothing here computes anything.
"""

from __future__ import annotations

# --- params_f (float64): cost coefficients, s and s/token (DESIGN.md §2) -------------------------
PF_ALPHA_A = 0
PF_BETA_A = 1
PF_ALPHA_C = 2
PF_BETA_C = 3
PF_GAMMA_C = 4
PF_ALPHA_F = 5
PF_BETA_F = 6
N_PARAMS_F = 7

# --- params_i (int64) ----------------------------------------------------------------------------
PI_RATIO = 0
"""r, Attention workers."""
PI_BATCH = 1
"""B, slots per worker."""
PI_GROUPS = 2
"""m, microbatch groups per worker (1 unless pipeline is microbatch)."""
PI_PIPELINE = 3
"""0 overlapped, 1 serial, 2 microbatch."""
PI_LAYERS = 4
"""Layers the microbatch pipeline flows through."""
PI_OPEN = 5
"""0 closed loop, 1 open loop."""
PI_REPLAY = 6
"""0 resample (hash of seed, slot, count), 1 replay the trace in admission order."""
PI_SEED = 7
PI_KV_CAP = 8
"""KV capacity per worker in tokens, -1 for unlimited."""
PI_WARMUP = 9
PI_N_BATCHES = 10
PI_MEASURED = 11
"""Measured steps (steps - warm-up), for the batch-means index."""
PI_RECORD = 12
PI_JITTER = 13
PI_HORIZON = 14
"""H, calendar length: a power of two > the longest decode length."""
PI_COMP_STRIDE = 15
"""Every this-many-th measured completion is written to the completion buffer (percentiles)."""
N_PARAMS_I = 16

PIPELINE_CODES = {"overlapped": 0, "serial": 1, "microbatch": 2}

# --- state_i (int64) -----------------------------------------------------------------------------
SI_STEP = 0
SI_REPLAY = 1
"""Next trace index when replaying in order (closed loop)."""
SI_HEAD = 2
"""Open loop: first arrival (window index) not yet admitted."""
SI_SEEN = 3
"""Open loop: first arrival (window index) not yet in the system (arrival time > clock)."""
SI_PENDING = 4
"""Closed loop: entries used in the pending list."""
SI_COMP = 5
"""Rows used in the completion buffer."""
SI_ACTIVE = 6
"""Active slots in the bundle, N."""
SI_LOAD = 7
"""Total KV tokens attended over all active slots, Σ_w L_w."""
N_STATE_I = 8

# --- state_f (float64) ---------------------------------------------------------------------------
SF_CLOCK = 0
SF_MEASURE_START = 1
"""Clock at the start of the first measured step, -1 before."""
SF_TIME = 2
"""Measured wall time, s (step times plus open-loop idle gaps)."""
SF_TAU = 3
SF_TOKENS = 4
SF_ATTN_MEAN = 5
SF_ATTN_MAX = 6
SF_FFN = 7
SF_COMM = 8
SF_LOAD = 9
SF_IDLE = 10
SF_IN_SYSTEM = 11
"""∫ (requests queued or in a slot) dt over the measured window, request·s."""
SF_ARRIVALS = 12
SF_COMPLETED = 13
"""Requests admitted after warm-up that finished (all of them, not only the sampled ones)."""
SF_TPOT_SUM = 14
SF_QUEUE_SUM = 15
SF_SOJOURN_SUM = 16
N_STATE_F = 17

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
