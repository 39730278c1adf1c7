"""The closed-form screen: every (layout, B, r) candidate at once, vectorised with numpy.

Mean field with a Gaussian barrier per microbatch (docs/design.md §4, §9). For a layout with w
workers per Attention instance (g_A under DP attention, else 1) and m microbatches, a worker
has b = B/w slots and a microbatch s = b/m; with R = r·w workers in the bundle, per step (all
layers), per microbatch:

    a = α_A + β_A·(s·θ + sqrt(s)·σ·z_R)      (the slowest of R workers; z_R = E[max of R N(0,1)])
    c = α_C + β_C·s + γ_C·R·s,   f = α_F + β_F·R·s

and the step is the m·L-stage flow shop of the simulator's microbatch mode, taken in closed
form for identical microbatches: one layer's fill a + c + f + (m − 1)·max(a, c, f), then L − 1
cycles of P = max(m·a, m·c, m·f, a + c + f), each over L (the "overlapped" pipeline is the
paper's max(m·a, m·c, m·f)). The 99th percentile uses the 0.99 quantile of the slowest worker
in place of z_R. The screen only ranks: the layouts kept are sized by ``recommend``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
from scipy import special

from afdsizer.theory import expected_max_std_normal

__all__ = ["ScreenInputs", "ScreenResult", "pipeline_step_s", "screen"]

FloatArray = npt.NDArray[np.float64]
_P99 = 0.99
_REGIMES = np.array(["attention", "communication", "ffn"])


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScreenInputs:
    """Per-layout parameters, shape (n_layouts,) each, and the (B, r) grid.

    Attributes
    ----------
    alpha_attn_s, beta_attn_s_per_token, alpha_comm_s, beta_comm_s_per_token,
    gamma_comm_s_per_token, alpha_ffn_s, beta_ffn_s_per_token : ndarray
        Worker-level coefficients of each layout, s and s/token (all layers).
    kv_capacity_tokens : ndarray
        KV tokens one worker holds (inf: unlimited).
    workers : ndarray of int
        w, barrier workers per Attention instance.
    microbatches, layers : ndarray of int
        m and L.
    overlapped : ndarray of bool
        The paper's overlapped step instead of the microbatch flow shop.
    weight_attn, weight_ffn : ndarray
        (w_A, w_F) of the objective r·B/((w_A·r + w_F)·E[τ]) (GPUs, or prices).
    attn_gpus, ffn_gpus : ndarray of int
        g_A, g_F.
    slots_per_microbatch : ndarray of int, shape (n_s,)
        s grid; B = s·m·w.
    ratios : ndarray of int, shape (n_r,)
        r grid.
    """

    alpha_attn_s: FloatArray
    beta_attn_s_per_token: FloatArray
    alpha_comm_s: FloatArray
    beta_comm_s_per_token: FloatArray
    gamma_comm_s_per_token: FloatArray
    alpha_ffn_s: FloatArray
    beta_ffn_s_per_token: FloatArray
    kv_capacity_tokens: FloatArray
    workers: npt.NDArray[np.int64]
    microbatches: npt.NDArray[np.int64]
    layers: npt.NDArray[np.int64]
    overlapped: npt.NDArray[np.bool_]
    weight_attn: FloatArray
    weight_ffn: FloatArray
    attn_gpus: npt.NDArray[np.int64]
    ffn_gpus: npt.NDArray[np.int64]
    slots_per_microbatch: npt.NDArray[np.int64]
    ratios: npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ScreenResult:
    """Screen values, shape (n_layouts, n_s, n_r) each.

    Attributes
    ----------
    batch : ndarray of int
        B, slots per Attention instance.
    ratio : ndarray of int
        r.
    step_time_s, step_time_p99_s : ndarray
        E[τ] and its 99th percentile, s.
    throughput_per_gpu : ndarray
        r·B/((r·g_A + g_F)·E[τ]), tokens/s per GPU.
    objective : ndarray
        r·B/((w_A·r + w_F)·E[τ]).
    kv_ok : ndarray of bool
        The kv_quantile of a worker's load fits its KV capacity.
    regime : ndarray of str
        Largest of m·a, m·c, m·f.
    gpus : ndarray of int
        r·g_A + g_F.
    """

    batch: npt.NDArray[np.int64]
    ratio: npt.NDArray[np.int64]
    step_time_s: FloatArray
    step_time_p99_s: FloatArray
    throughput_per_gpu: FloatArray
    objective: FloatArray
    kv_ok: npt.NDArray[np.bool_]
    regime: npt.NDArray[np.str_]
    gpus: npt.NDArray[np.int64]


def pipeline_step_s(
    a: FloatArray,
    c: FloatArray,
    f: FloatArray,
    microbatches: npt.ArrayLike,
    layers: npt.ArrayLike,
    overlapped: npt.ArrayLike,
) -> FloatArray:
    """Step time of m identical microbatches of all-layer stage times a, c, f, s (module notes)."""
    m = np.asarray(microbatches, dtype=np.float64)
    L = np.asarray(layers, dtype=np.float64)
    slowest = np.maximum(np.maximum(a, c), f)
    cycle = np.maximum(m * slowest, a + c + f)
    flow = ((L - 1.0) * cycle + a + c + f + (m - 1.0) * slowest) / L
    return np.where(np.asarray(overlapped, dtype=bool), m * slowest, flow)


def _slowest_quantile(workers: FloatArray, q: float) -> FloatArray:
    """z with P(max of R iid N(0,1) <= z) = q."""
    return np.asarray(special.ndtri(q ** (1.0 / workers)), dtype=np.float64)


def screen(
    inputs: ScreenInputs,
    *,
    theta_tokens: float,
    slot_load_std_tokens: float,
    kv_quantile: float,
) -> ScreenResult:
    """Evaluate every (layout, s, r) candidate of ``inputs`` in closed form (module notes).

    Returns
    -------
    ScreenResult
        Arrays of shape (n_layouts, n_s, n_r).
    """
    p = inputs

    def lay(x: npt.ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=np.float64)[:, None, None]

    s = np.asarray(p.slots_per_microbatch, dtype=np.float64)[None, :, None]
    r = np.asarray(p.ratios, dtype=np.float64)[None, None, :]
    w, m = lay(p.workers), lay(p.microbatches)
    workers = r * w
    theta, sigma = float(theta_tokens), float(slot_load_std_tokens)
    z_mean = np.asarray(expected_max_std_normal(workers.ravel()), dtype=np.float64)
    z_mean = z_mean.reshape(workers.shape)
    z_p99 = _slowest_quantile(workers, _P99)
    beta_a, alpha_a = lay(p.beta_attn_s_per_token), lay(p.alpha_attn_s)
    spread = beta_a * np.sqrt(s) * sigma
    a_mean = alpha_a + beta_a * s * theta
    c = lay(p.alpha_comm_s) + lay(p.beta_comm_s_per_token) * s
    c = c + lay(p.gamma_comm_s_per_token) * workers * s
    f = lay(p.alpha_ffn_s) + lay(p.beta_ffn_s_per_token) * workers * s
    L, over = lay(p.layers), lay(p.overlapped) > 0.5
    tau = pipeline_step_s(a_mean + spread * z_mean, c, f, m, L, over)
    tau_p99 = pipeline_step_s(a_mean + spread * np.maximum(z_p99, z_mean), c, f, m, L, over)
    batch = s * m * w
    b_worker = s * m
    z_kv = float(special.ndtri(kv_quantile))
    kv_load = b_worker * theta + z_kv * np.sqrt(b_worker) * sigma
    kv_ok = kv_load <= lay(p.kv_capacity_tokens)
    gpus = r * lay(p.attn_gpus) + lay(p.ffn_gpus)
    tokens_per_s = r * batch / tau
    stacked = np.stack(np.broadcast_arrays(a_mean + spread * z_mean, c, f))
    shape = tau.shape
    return ScreenResult(
        batch=np.broadcast_to(batch, shape).astype(np.int64),
        ratio=np.broadcast_to(r, shape).astype(np.int64),
        step_time_s=tau,
        step_time_p99_s=tau_p99,
        throughput_per_gpu=tokens_per_s / gpus,
        objective=tokens_per_s / (r * lay(p.weight_attn) + lay(p.weight_ffn)),
        kv_ok=np.broadcast_to(kv_ok, shape),
        regime=_REGIMES[np.argmax(stacked, axis=0)],
        gpus=np.broadcast_to(gpus, shape).astype(np.int64),
    )
