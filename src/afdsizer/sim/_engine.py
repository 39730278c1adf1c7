"""The public simulation entry points: :func:`simulate` and :func:`sweep_ratios`.

They validate the inputs once, lay the bundle's state out in flat arrays, draw the random numbers
that are not counter-based (jitter, open-loop arrivals) in fixed-size blocks, and drive the
compiled kernel (or the plain reference) chunk by chunk, so a progress callback can run between
chunks. Metrics are computed here from the accumulators the engine fills.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError
from afdsizer.sim import _layout as lay
from afdsizer.sim._config import SimConfig
from afdsizer.sim._result import RatioSweep, SimResult, StepSeries

if TYPE_CHECKING:
    from afdsizer.cost import CostCoefficients

__all__ = ["simulate", "sweep_ratios"]

Engine = Literal["kernel", "reference"]
ProgressFn = Callable[[int, int], None]

CHUNK_STEPS = 1 << 16
"""Steps per engine call. Fixed, not derived from r: jitter is drawn per (worker, chunk), so
a worker's jitter sequence is the same whatever r is (common random numbers)."""
ARRIVAL_BLOCK = 1 << 16
"""Open-loop arrivals generated per block (more are generated as the clock reaches them)."""
MIN_COMPLETION_BUFFER = 1 << 16
"""Rows of the completion buffer, at least; drained whenever it could overflow in a step."""
PERCENTILE_SAMPLE_TARGET = 1 << 20
"""About this many completed requests (a systematic sample, every k-th) feed the TPOT and
queue-delay percentiles; means use every request. Bounds memory on long runs."""

MAX_QUEUED_REQUESTS = 20_000_000
"""An open loop whose queue passes this many requests is overloaded: stop with an error rather
than let memory grow without bound."""

_MAX_TRACE_ROWS = 1 << 32
_STREAM_JITTER = 1
_STREAM_ARRIVALS = 2


def _as_lengths(name: str, values: Any, minimum: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
            raise InputError(f"{name} must hold integers (tokens), got dtype {arr.dtype}")
        if np.any(arr != np.round(arr)):
            bad = int(np.flatnonzero(arr != np.round(arr))[0])
            raise InputError(f"{name} must hold integers (tokens), got {arr[bad]} at index {bad}")
    out = arr.astype(np.int64)
    if out.min() < minimum:
        bad = int(np.argmin(out))
        raise InputError(f"{name} must be >= {minimum} tokens, got {out[bad]} at index {bad}")
    return np.ascontiguousarray(out)


def _kv_capacity(
    config: SimConfig,
    coefficients: CostCoefficients,
    prompt: npt.NDArray[np.int64],
    decode: npt.NDArray[np.int64],
) -> int:
    """KV capacity per worker in whole tokens, or -1 for unlimited; checks that B can fit."""
    cap = config.kv_capacity_tokens
    if cap is None:
        cap = coefficients.kv_capacity_tokens
    if cap is None:
        return -1
    cap_tokens = math.floor(cap)
    final = prompt + decode
    largest = int(final.max())
    if largest > cap_tokens:
        n_big = int(np.count_nonzero(final > cap_tokens))
        raise InputError(
            f"kv_capacity_tokens ({cap_tokens} tokens per worker) is below the final context "
            f"P+D of {n_big} request(s) (largest {largest} tokens); they could never be admitted"
        )
    smallest = int(final.min())
    b, k = config.slots_per_worker, config.workers_per_instance
    if b * smallest > cap_tokens:
        per = f"B/k = {b} slots" if k > 1 else f"B={config.batch}"
        raise InputError(
            f"batch {per} does not fit in KV memory: even the smallest requests "
            f"(P+D = {smallest} tokens) need {b * smallest} tokens per worker "
            f"> kv_capacity_tokens {cap_tokens}; use B <= {k * (cap_tokens // smallest)}"
        )
    return cap_tokens


class _Arrivals:
    """Open-loop arrival stream, generated in blocks: (time s, P, D) per request."""

    def __init__(
        self,
        config: SimConfig,
        prompt: npt.NDArray[np.int64],
        decode: npt.NDArray[np.int64],
        arrival_s: npt.NDArray[np.float64] | None,
    ) -> None:
        self._config = config
        self._prompt = prompt
        self._decode = decode
        self._block = 0
        self._last_s = 0.0
        if config.arrivals == "trace":
            assert arrival_s is not None
            base = (arrival_s - arrival_s[0]) * config.trace_time_scale
            n = base.size
            span = float(base[-1])
            # The trace repeats, shifted by its span plus one mean gap, so runs may outlast it.
            self._period = span + span / (n - 1)
            copies = max(1, ARRIVAL_BLOCK // n)
            self._times = np.concatenate([base + c * self._period for c in range(copies)])
            self._copies = copies

    def next_block(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        cfg = self._config
        b = self._block
        self._block += 1
        n = self._prompt.size
        if cfg.arrivals == "trace":
            times = self._times + b * self._copies * self._period
            return times, np.tile(self._prompt, self._copies), np.tile(self._decode, self._copies)
        rng = np.random.default_rng([cfg.seed, _STREAM_ARRIVALS, b])
        assert cfg.arrival_rate_per_s is not None
        gaps = rng.exponential(1.0 / cfg.arrival_rate_per_s, ARRIVAL_BLOCK)
        times = self._last_s + np.cumsum(gaps)
        self._last_s = float(times[-1])
        if cfg.refill == "replay":
            idx = (b * ARRIVAL_BLOCK + np.arange(ARRIVAL_BLOCK)) % n
        else:
            idx = rng.integers(0, n, ARRIVAL_BLOCK)
        return times, self._prompt[idx], self._decode[idx]


def _jitter_block(config: SimConfig, chunk: int, n_steps: int) -> npt.NDArray[np.float64]:
    """Multiplicative Attention jitter, mean 1 and CV ``jitter_cv``, shape (n_steps, r·k)."""
    cv = float(config.jitter_cv)
    n_workers = config.ratio * config.workers_per_instance
    out = np.empty((n_steps, n_workers), dtype=np.float64)
    for w in range(n_workers):
        # One stream per (worker, chunk): worker w sees the same noise whatever r is.
        rng = np.random.default_rng([config.seed, _STREAM_JITTER, w, chunk])
        if config.jitter_dist == "gamma":
            out[:, w] = rng.gamma(1.0 / cv**2, cv**2, n_steps)
        else:
            sigma = math.sqrt(math.log1p(cv**2))
            out[:, w] = rng.lognormal(-0.5 * sigma**2, sigma, n_steps)
    return out


def _percentiles(values: npt.NDArray[np.float64], qs: tuple[float, ...]) -> list[float]:
    if not values.size:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(values, qs)]


def simulate(
    prompt_tokens: npt.ArrayLike,
    decode_tokens: npt.ArrayLike,
    coefficients: CostCoefficients,
    config: SimConfig,
    *,
    arrival_s: npt.ArrayLike | None = None,
    engine: Engine = "kernel",
    progress: ProgressFn | None = None,
) -> SimResult:
    """Simulate one rA–1F bundle step by step and measure throughput, idle time and latency.

    Each of r Attention workers runs B slots (paper symbols r, B). At step t a slot holding
    request (P, D) admitted at step s attends to P + (t − s) KV tokens and the request leaves
    after its D-th step (slot convention of docs/architecture.md). Per step:

    1. admissions: closed loop — every empty slot takes its next request (resampled by a
       counter-based hash of (seed, slot, count), or the trace rows in order); open loop —
       arrivals up to now join a FIFO queue, and the head goes to the worker with the most free
       slots (lowest index on ties) while a worker has room; with a KV capacity a request is
       admitted only if the final contexts P + D of the worker's requests, the new one
       included, fit (so the cache never overflows later);
    2. t_A,w = (α_A + β_A·L_w)·ε_w (ε_w the jitter, 1 without), 0 for a worker with no active
       slot; t_C = α_C + β_C·max_w n_w + γ_C·N and t_F = α_F + β_F·N with n_w the active slots
       of worker w and N = Σ n_w the tokens actually present;
    3. τ = max_w t_A,w + t_C + t_F (serial), max(max_w t_A,w, t_C, t_F) (overlapped), or for
       ``microbatch``: each worker's slots split into m groups (slot b in group b mod m); group
       j has its own a_j = max_w t_A,w,j, c_j and f_j from its loads and tokens, and microbatch
       j flows A → C → F through ``layers`` layers, 1/layers of each time per layer, each stage
       serving one microbatch at a time and layer l+1 Attention of j waiting for its layer-l FFN;
       τ is the makespan of that flow shop (m = 1 gives the serial sum; many layers and balanced
       stages approach the overlapped max, plus the m-fold fixed overheads);
    4. every active context grows by one token; requests whose D-th step this was leave.

    In open loop a step with nothing to decode is skipped: the clock jumps to the next arrival
    (idle time, counted in T and in every idle fraction).

    Parameters
    ----------
    prompt_tokens : array-like of int, shape (n,)
        P of each trace request, tokens (>= 0).
    decode_tokens : array-like of int, shape (n,)
        D of each trace request, tokens (>= 1); pairs (P, D) are kept together.
    coefficients : CostCoefficients
        α, β (and γ_C, KV capacity) of the per-step latencies, s and s/token.
    config : SimConfig
        Bundle shape, length, pipeline, jitter and workload mode.
    arrival_s : array-like of float, shape (n,), optional
        Arrival times of the trace requests, s, non-decreasing; needed for
        ``arrivals="trace"``.
    engine : {"kernel", "reference"}, default "kernel"
        The compiled numba kernel, or the plain-Python reference (slow; for tests).
    progress : callable(done_steps, total_steps), optional
        Called after each chunk of :data:`CHUNK_STEPS` steps.

    Returns
    -------
    SimResult
        Metrics over the measured window (see its attribute docs for exact definitions).

    Raises
    ------
    InputError
        Lengths are malformed, arrivals are missing or unsorted, or B does not fit in the KV
        capacity even for the smallest requests (or one request never fits).

    Notes
    -----
    docs/design.md §6. A step costs O(r) plus the requests that finish in it (calendar of finish
    steps; a worker's load grows by its active slots each step). Common random numbers: for a
    fixed seed, slot w·B + b receives the same request sequence for every r (closed loop,
    ``refill="resample"``), and worker w the same jitter.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-7, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-5)
    >>> res = simulate([100, 300], [10, 20], c, SimConfig(ratio=2, batch=8, steps=500))
    >>> res.steps, res.throughput_per_instance > 0
    (450, True)
    """
    prompt = _as_lengths("prompt_tokens", prompt_tokens, 0)
    decode = _as_lengths("decode_tokens", decode_tokens, 1)
    if prompt.size != decode.size:
        raise InputError(
            f"prompt_tokens and decode_tokens must have the same length, got {prompt.size} "
            f"and {decode.size}"
        )
    if prompt.size >= _MAX_TRACE_ROWS:
        raise InputError(
            f"trace must have fewer than 2**32 requests (hash range), got {prompt.size:,}"
        )
    if engine not in ("kernel", "reference"):
        raise InputError(f"engine must be 'kernel' or 'reference', got {engine!r}")
    arrivals_arr: npt.NDArray[np.float64] | None = None
    if config.arrivals == "trace":
        if arrival_s is None:
            raise InputError("arrivals='trace' needs arrival_s (the trace has no timestamps)")
        arrivals_arr = np.asarray(arrival_s, dtype=np.float64)
        if arrivals_arr.shape != prompt.shape:
            raise InputError(
                f"arrival_s must have shape {prompt.shape} like the lengths, "
                f"got {arrivals_arr.shape}"
            )
        if not np.all(np.isfinite(arrivals_arr)) or np.any(np.diff(arrivals_arr) < 0):
            raise InputError("arrival_s must be finite and non-decreasing (seconds)")
        if prompt.size < 2 or arrivals_arr[-1] <= arrivals_arr[0]:
            raise InputError("arrival_s must span a positive time (at least two distinct times)")
    kv_cap = _kv_capacity(config, coefficients, prompt, decode)
    return _run(prompt, decode, coefficients, config, arrivals_arr, kv_cap, engine, progress)


def _params(
    config: SimConfig, coefficients: CostCoefficients, kv_cap: int, decode: npt.NDArray[np.int64]
) -> lay.Params:
    """The run's constants, as the engines read them."""
    c = coefficients
    steps, warmup = config.steps, config.effective_warmup_steps
    measured = steps - warmup
    expected_done = measured * config.ratio * config.batch / float(decode.mean())
    return lay.Params(
        alpha_a=float(c.alpha_attn_s),
        beta_a=float(c.beta_attn_s_per_token),
        alpha_c=float(c.alpha_comm_s),
        beta_c=float(c.beta_comm_s_per_token),
        gamma_c=float(c.gamma_comm_s_per_token),
        alpha_f=float(c.alpha_ffn_s),
        beta_f=float(c.beta_ffn_s_per_token),
        workers=config.ratio * config.workers_per_instance,
        slots_per_worker=config.slots_per_worker,
        groups=config.groups_per_worker,
        pipeline=lay.PIPELINE_CODES[config.pipeline],
        layers=config.layers,
        open_loop=config.arrivals != "closed",
        replay=config.refill == "replay",
        seed=config.seed,
        kv_cap=kv_cap,
        warmup=warmup,
        n_batches=min(config.batch_means, measured),
        measured=measured,
        record=config.record_series,
        jitter=config.jitter_cv > 0,
        # Calendar ring: a power of two (bucket = step & (H − 1)) longer than any decode length.
        horizon=1 << int(decode.max()).bit_length(),
        comp_stride=max(1, math.ceil(expected_done / PERCENTILE_SAMPLE_TARGET)),
        stagger=config.stagger,
    )


def _new_bundle(params: lay.Params) -> lay.Bundle:
    """Empty slots (closed loop: every one pending, in slot order, so step 0 fills them all)."""
    n_workers, b, m = params.workers, params.slots_per_worker, params.groups
    n_slots, n_groups = n_workers * b, n_workers * m
    slots = np.zeros(n_slots, dtype=lay.SLOT_DTYPE)
    index = np.arange(n_slots, dtype=np.int64)
    slots["worker"] = index // b
    slots["group"] = slots["worker"] * m + (index % b) % m
    slots["next_row"] = -1
    return lay.Bundle(
        slots=slots,
        pending=index.copy(),
        drawn=np.zeros(n_slots, dtype=lay.REQUEST_DTYPE),
        cal_head=np.full(params.horizon, -1, dtype=np.int64),
        cal_next=np.full(n_slots, -1, dtype=np.int32),
        groups=np.zeros(n_groups, dtype=lay.GROUP_DTYPE),
        workers=np.zeros(n_workers, dtype=lay.WORKER_DTYPE),
        finished=np.zeros((2, n_slots), dtype=np.int64),
        flow=np.zeros(4 * m, dtype=np.float64),
    )


def _new_counters(params: lay.Params) -> npt.NDArray[np.void]:
    counters = np.zeros(1, dtype=lay.COUNTER_DTYPE)
    counters["measure_start"] = -1.0
    if not params.open_loop:
        counters["pending"] = params.workers * params.slots_per_worker
    return counters


class _Collected:
    """Per-chunk outputs gathered over the run: step times, series, sampled completions."""

    def __init__(self, open_loop: bool) -> None:
        self.open_loop = open_loop
        self.step_times: list[npt.NDArray[np.float64]] = []
        self.series: list[npt.NDArray[np.float64]] = []
        self.tpot: list[npt.NDArray[np.float64]] = []
        self.queue: list[npt.NDArray[np.float64]] = []

    def drain(self, counters: npt.NDArray[np.void], completions: npt.NDArray[np.float64]) -> None:
        n = int(counters["comp_rows"][0])
        if n:
            self.tpot.append(completions[:n, lay.COMP_TPOT].copy())
            if self.open_loop:  # closed loop: every queue delay is 0, no need to keep them
                self.queue.append(completions[:n, lay.COMP_QUEUE].copy())
        counters["comp_rows"] = 0


def _run(
    prompt: npt.NDArray[np.int64],
    decode: npt.NDArray[np.int64],
    coefficients: CostCoefficients,
    config: SimConfig,
    arrival_s: npt.NDArray[np.float64] | None,
    kv_cap: int,
    engine: Engine,
    progress: ProgressFn | None,
) -> SimResult:
    params = _params(config, coefficients, kv_cap, decode)
    bundle = _new_bundle(params)
    counters = _new_counters(params)
    run_chunk: Callable[..., int]
    if engine == "kernel":
        from afdsizer.sim import _kernel

        _kernel.fill_slot_keys(bundle.slots, params.seed)
        run_chunk = _kernel.run_chunk
    else:
        from afdsizer.sim import reference

        run_chunk = reference.run_chunk
    n_slots = params.workers * params.slots_per_worker
    trace = np.empty(prompt.size, dtype=lay.REQUEST_DTYPE)
    trace["prompt"] = prompt
    trace["decode"] = decode
    completions = np.zeros((max(2 * n_slots, MIN_COMPLETION_BUFFER), lay.N_COMP))
    batch_acc = np.zeros((params.n_batches, 2), dtype=np.float64)
    stream = _Arrivals(config, prompt, decode, arrival_s) if params.open_loop else None
    arrivals = lay.Arrivals(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if stream is not None:
        arrivals = lay.Arrivals(*stream.next_block())
    got = _Collected(params.open_loop)
    no_jitter = np.ones((1, params.workers), dtype=np.float64)
    steps = config.steps
    for chunk, step0 in enumerate(range(0, steps, CHUNK_STEPS)):
        step_end = min(steps, step0 + CHUNK_STEPS)
        n_chunk = step_end - step0
        # Without jitter, one row of factors 1 (the kernel multiplies by it; exact).
        jitter = _jitter_block(config, chunk, n_chunk) if params.jitter else no_jitter
        out = lay.Outputs(
            step_time=np.zeros(n_chunk, dtype=np.float64),
            series=np.zeros((n_chunk if params.record else 0, lay.N_SERIES)),
            completions=completions,
            batch_acc=batch_acc,
        )
        while True:
            rc = run_chunk(
                step_end, params, trace, arrivals, jitter, step0, step0, counters, bundle, out
            )
            if rc == lay.RC_DONE:
                break
            if rc == lay.RC_BUFFER_FULL:
                got.drain(counters, completions)
            else:  # RC_NEED_ARRIVALS: drop admitted arrivals, append the next block
                assert stream is not None
                arrivals = _next_window(stream, arrivals, counters)
        got.step_times.append(out.step_time)
        if params.record:
            got.series.append(out.series)
        if progress is not None:
            progress(step_end, steps)
    got.drain(counters, completions)
    return _metrics(config, counters[0], np.concatenate(got.step_times)[params.warmup :],
                    batch_acc, got)  # fmt: skip


def _next_window(
    stream: _Arrivals, arrivals: lay.Arrivals, counters: npt.NDArray[np.void]
) -> lay.Arrivals:
    """The arrivals not yet admitted followed by the next block; counters re-indexed to it."""
    head = int(counters["head"][0])
    queued = int(counters["seen"][0]) - head
    if queued > MAX_QUEUED_REQUESTS:
        raise InputError(
            f"open loop overloaded: {queued:,} requests queued at step "
            f"{int(counters['step'][0]):,} (limit {MAX_QUEUED_REQUESTS:,}); "
            "lower the arrival rate or raise r or B"
        )
    t_new, p_new, d_new = stream.next_block()
    counters["head"] = 0
    counters["seen"] -= head
    return lay.Arrivals(
        time=np.concatenate([arrivals.time[head:], t_new]),
        prompt=np.concatenate([arrivals.prompt[head:], p_new]),
        decode=np.concatenate([arrivals.decode[head:], d_new]),
    )


def _metrics(
    config: SimConfig,
    c: np.void,
    step_times: npt.NDArray[np.float64],
    batch_acc: npt.NDArray[np.float64],
    got: _Collected,
) -> SimResult:
    r, B = config.ratio, config.batch
    measured = step_times.size
    total_s = float(c["time"])
    tokens = float(c["tokens"])
    per_instance = tokens / total_s / (r + 1)
    gpus = config.gpus_per_bundle
    batch_thr = batch_acc[:, 0] / batch_acc[:, 1] / (r + 1)
    stderr = (
        float(np.std(batch_thr, ddof=1) / math.sqrt(batch_thr.size))
        if batch_thr.size >= 2
        else math.nan
    )
    n_done = int(c["completed"])
    is_open = config.arrivals != "closed"
    tpot = np.concatenate(got.tpot) if got.tpot else np.zeros(0)
    queue = np.concatenate(got.queue) if got.queue else np.zeros(min(n_done, 1))
    tpot_p50, tpot_p99 = _percentiles(tpot, (50.0, 99.0))
    step_p50, step_p99 = _percentiles(step_times, (50.0, 99.0))
    series = None
    if got.series:
        s = np.concatenate(got.series)
        series = StepSeries(
            step_time_s=s[:, lay.SER_STEP_TIME].copy(),
            attention_max_s=s[:, lay.SER_ATTN_MAX].copy(),
            attention_mean_s=s[:, lay.SER_ATTN_MEAN].copy(),
            comm_s=s[:, lay.SER_COMM].copy(),
            ffn_s=s[:, lay.SER_FFN].copy(),
            active_slots=s[:, lay.SER_ACTIVE].astype(np.int64),
            load_tokens=s[:, lay.SER_LOAD].astype(np.int64),
        )
    nan = math.nan
    return SimResult(
        ratio=r,
        batch=B,
        steps=measured,
        warmup_steps=config.effective_warmup_steps,
        pipeline=config.pipeline,
        arrivals=config.arrivals,
        seed=config.seed,
        microbatches=config.groups_per_worker,
        layers=config.layers if config.pipeline == "microbatch" else None,
        workers_per_instance=config.workers_per_instance,
        attn_gpus=config.attn_gpus,
        ffn_gpus=config.ffn_gpus,
        gpus_per_bundle=gpus,
        throughput_per_instance=per_instance,
        throughput_stderr=stderr,
        throughput_per_gpu=tokens / total_s / gpus,
        tokens_per_s=tokens / total_s,
        attention_idle=1.0 - float(c["attn_mean"]) / total_s,
        barrier_idle=float(c["attn_max"] - c["attn_mean"]) / total_s,
        ffn_idle=1.0 - float(c["ffn"]) / total_s,
        comm_idle=1.0 - float(c["comm"]) / total_s,
        step_time_mean_s=float(step_times.mean()),
        step_time_p50_s=step_p50,
        step_time_p99_s=step_p99,
        tpot_mean_s=float(c["tpot_sum"]) / n_done if n_done else nan,
        tpot_p50_s=tpot_p50,
        tpot_p99_s=tpot_p99,
        queue_delay_mean_s=float(c["queue_sum"]) / n_done if n_done else nan,
        queue_delay_p99_s=_percentiles(queue, (99.0,))[0],
        mean_time_in_system_s=float(c["sojourn_sum"]) / n_done if n_done else nan,
        mean_in_system=float(c["in_system"]) / total_s,
        arrival_rate_per_s=float(c["arrivals"]) / total_s if is_open else nan,
        mean_slot_load=float(c["load_sum"]) / tokens,
        slot_occupancy=tokens / (measured * r * B),
        completed_requests=n_done,
        simulated_time_s=total_s,
        series=series,
    )


def sweep_ratios(
    prompt_tokens: npt.ArrayLike,
    decode_tokens: npt.ArrayLike,
    coefficients: CostCoefficients,
    config: SimConfig,
    ratios: Sequence[int],
    *,
    arrival_s: npt.ArrayLike | None = None,
    engine: Engine = "kernel",
    progress: ProgressFn | None = None,
) -> RatioSweep:
    """Simulate each r in ``ratios`` with the same seed (common random numbers) and find the best.

    Parameters
    ----------
    prompt_tokens, decode_tokens, coefficients, arrival_s, engine
        As for :func:`simulate`.
    config : SimConfig
        Template; its ``ratio`` is replaced by each entry of ``ratios``.
    ratios : sequence of int
        The r values, each >= 1; at least one.
    progress : callable(done_steps, total_steps), optional
        Called with steps done over all ratios.

    Returns
    -------
    RatioSweep
        One result per ratio and the r with the highest throughput per instance (the lowest
        such r on ties).

    Raises
    ------
    InputError
        ``ratios`` is empty, or as :func:`simulate`.

    Examples
    --------
    >>> from afdsizer.cost import CostCoefficients
    >>> c = CostCoefficients(alpha_attn_s=1e-3, beta_attn_s_per_token=1e-7, alpha_comm_s=1e-4,
    ...     beta_comm_s_per_token=1e-7, alpha_ffn_s=5e-3, beta_ffn_s_per_token=1e-5)
    >>> sw = sweep_ratios([100, 300], [10, 20], c, SimConfig(ratio=1, batch=8, steps=300), [1, 2])
    >>> [res.ratio for res in sw.results]
    [1, 2]
    """
    ratios = list(ratios)
    if not ratios:
        raise InputError("ratios must list at least one r >= 1, got none")
    total = config.steps * len(ratios)
    results = []
    for i, ratio in enumerate(ratios):
        cfg = dataclasses.replace(config, ratio=ratio)
        offset = i * config.steps

        def _progress(done: int, _total: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        results.append(
            simulate(
                prompt_tokens,
                decode_tokens,
                coefficients,
                cfg,
                arrival_s=arrival_s,
                engine=engine,
                progress=_progress,
            )
        )
    best = max(results, key=lambda res: (res.throughput_per_instance, -res.ratio))
    return RatioSweep(results=tuple(results), best_ratio=best.ratio)
