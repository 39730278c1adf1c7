"""What a simulation returns (:class:`SimResult`, :class:`StepSeries`, :class:`RatioSweep`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

__all__ = ["RatioSweep", "SimResult", "StepSeries"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StepSeries:
    """Per-step time series of a run (warm-up steps included), each of shape (steps,).

    Attributes
    ----------
    step_time_s : ndarray of float64
        τ, the step's duration, s.
    attention_max_s : ndarray of float64
        Attention time of the slowest worker (summed over microbatches of per-microbatch
        maxima in microbatch mode), s.
    attention_mean_s : ndarray of float64
        Mean over workers of the Attention busy time, s.
    comm_s : ndarray of float64
        t_C, communication time, s.
    ffn_s : ndarray of float64
        t_F, FFN busy time, s.
    active_slots : ndarray of int64
        N, requests decoded in the step (tokens through the FFN).
    load_tokens : ndarray of int64
        Σ_w L_w, KV tokens attended over the whole bundle.
    """

    step_time_s: FloatArray
    attention_max_s: FloatArray
    attention_mean_s: FloatArray
    comm_s: FloatArray
    ffn_s: FloatArray
    active_slots: IntArray
    load_tokens: IntArray


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Metrics of one simulated rA–1F bundle; field names are the ``simulate --json`` keys.

    Every metric covers the measured window only (warm-up steps discarded); T below is its
    length in seconds (step times plus, in open loop, idle gaps with nothing to decode).

    Attributes
    ----------
    ratio, batch : int
        r and B.
    steps : int
        Measured steps (after warm-up).
    warmup_steps : int
        Steps discarded.
    pipeline : str
        Pipeline mode of the run.
    arrivals : str
        ``closed``, ``trace`` or ``poisson``.
    seed : int
        The seed of the run.
    microbatches : int
        m, microbatch groups per worker (1 unless the pipeline is microbatch).
    layers : int or None
        L of the microbatch pipeline (None for the others).
    workers_per_instance : int
        k, barrier workers per Attention instance (g_A under DP attention, else 1).
    attn_gpus, ffn_gpus : int
        g_A and g_F, GPUs per Attention and per FFN instance.
    gpus_per_bundle : int
        r·g_A + g_F.
    throughput_per_instance : float
        Λ = tokens / T / (r + 1), tokens/s per instance (Attention and FFN instances counted).
    throughput_stderr : float
        Standard error of ``throughput_per_instance`` by batch means (``batch_means`` contiguous
        batches of steps), tokens/s per instance; nan with fewer than 2 batches. (The per-GPU
        figure's is this times (r + 1) / gpus_per_bundle.)
    throughput_per_gpu : float
        tokens / T / (r·g_A + g_F), tokens/s per GPU: what operators pay for (docs/design.md §9).
    tokens_per_s : float
        Tokens decoded per second by the bundle.
    attention_idle : float
        1 − Σ_steps mean_w(t_A,w) / T: fraction of the time an average Attention worker is not
        computing (waiting at the barrier, for communication or FFN, or idle).
    barrier_idle : float
        Σ_steps (max_w t_A,w − mean_w t_A,w) / T: the part of ``attention_idle`` spent waiting
        for the slowest worker (per microbatch in microbatch mode).
    ffn_idle : float
        1 − Σ_steps t_F / T: fraction of the time the FFN instance is not computing.
    comm_idle : float
        1 − Σ_steps t_C / T: fraction of the time the links carry nothing.
    step_time_mean_s, step_time_p50_s, step_time_p99_s : float
        τ mean, median and 99th percentile over measured steps, s.
    tpot_mean_s, tpot_p50_s, tpot_p99_s : float
        Time per output token of each request admitted after warm-up and finished in the run:
        (time from the start of its first step to the end of its last) / D, s.
    queue_delay_mean_s, queue_delay_p99_s : float
        Arrival to admission, s (open loop; 0 in closed loop).
    mean_time_in_system_s : float
        W, arrival to completion, s (requests admitted after warm-up).
    mean_in_system : float
        L, time-average number of requests queued or in a slot.
    arrival_rate_per_s : float
        λ, realised arrivals per second in the window (open loop; nan in closed loop).
    mean_slot_load : float
        Realised mean KV tokens a busy slot attends to per step (must match θ in closed loop).
    slot_occupancy : float
        Mean fraction of the r·B slots busy per step.
    completed_requests : int
        Requests admitted after warm-up that finished in the run.
    simulated_time_s : float
        T, s.
    series : StepSeries or None
        Per-step series when ``record_series`` was set.
    """

    ratio: int
    batch: int
    steps: int
    warmup_steps: int
    pipeline: str
    arrivals: str
    seed: int
    microbatches: int
    layers: int | None
    workers_per_instance: int
    attn_gpus: int
    ffn_gpus: int
    gpus_per_bundle: int
    throughput_per_instance: float
    throughput_stderr: float
    throughput_per_gpu: float
    tokens_per_s: float
    attention_idle: float
    barrier_idle: float
    ffn_idle: float
    comm_idle: float
    step_time_mean_s: float
    step_time_p50_s: float
    step_time_p99_s: float
    tpot_mean_s: float
    tpot_p50_s: float
    tpot_p99_s: float
    queue_delay_mean_s: float
    queue_delay_p99_s: float
    mean_time_in_system_s: float
    mean_in_system: float
    arrival_rate_per_s: float
    mean_slot_load: float
    slot_occupancy: float
    completed_requests: int
    simulated_time_s: float
    series: StepSeries | None = None

    def summary(self) -> dict[str, float | int | str | None]:
        """All scalar fields as a dict (the JSON payload without the series)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "series"
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RatioSweep:
    """Simulations over several r with common random numbers (same seed and requests per slot).

    Attributes
    ----------
    results : tuple of SimResult
        One per ratio, in the order given.
    best_ratio : int
        The r with the highest simulated throughput per instance.
    """

    results: tuple[SimResult, ...]
    best_ratio: int

    @property
    def best(self) -> SimResult:
        """The result at :attr:`best_ratio`."""
        return next(res for res in self.results if res.ratio == self.best_ratio)
