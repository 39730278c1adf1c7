"""Per-step measurements of one model from aiconfigurator's measured kernel tables.

The layout (``shared/calibration/aiconfigurator_silicon/<gpu>/``) holds one-layer latencies of
decode attention (GQA) or the MLA module, GEMMs, fused MoE layers and NCCL collectives, in ms.
This module turns them into per-decode-step times **through all layers** of one model, the
quantities the affine model of DESIGN.md §2 describes:

- Attention at (B, s): layers · (attention kernel(B, s) + q/k/v/o GEMMs at m = B) + LM head(B).
  For MLA the module table already includes the projections. The KV load is L = B·(s + 1):
  ``step`` is the KV length already cached and the new token attends to itself too.
- FFN at N tokens: MoE layers · fused MoE(N) + shared-expert GEMMs(N) + dense layers' GEMMs(N).
- Communication at B: 2 directions · layers · NCCL latency(message of B·h elements).

Each table is filtered to one kernel_source and one dtype at a time (the busiest kernel when not
given); the filters are returned so a profile can say what it was fitted on. Tables are read
lazily with polars and filtered before they are collected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from afdsizer.cost._model import ModelSpec
from afdsizer.errors import DataFileError, InputError

__all__ = ["StepMeasurements", "read_silicon"]

_MS = 1e-3
"""The tables' latency column is in milliseconds."""

_TABLES = {
    "attention": "attention/*/*/generation_attention_perf.parquet",
    "mla": "mla/*/*/mla_generation_module_perf.parquet",
    "gemm": "gemm/*/*/gemm_perf.parquet",
    "moe": "moe/*/*/moe_perf.parquet",
    "comm": "comm/*/*/nccl_perf.parquet",
}

_Array = npt.NDArray[np.float64]

_KV_DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StepMeasurements:
    """Measured per-step times (all layers) of one model on one device, ready to fit.

    Parameters
    ----------
    attention_batch : ndarray of shape (n_a,)
        B of each attention point, tokens (requests).
    attention_load_tokens : ndarray of shape (n_a,)
        L, KV tokens attended summed over the batch.
    attention_time_s : ndarray of shape (n_a,)
        t_A per step, s.
    ffn_tokens : ndarray of shape (n_f,)
        N, tokens in the FFN batch.
    ffn_time_s : ndarray of shape (n_f,)
        t_F per step, s.
    comm_batch, comm_time_s : ndarray of shape (n_c,) or None
        B and t_C per step (None when the source measured no communication).
    device : str
        GPU the rows were measured on.
    filters : dict
        Per table, the kernel and dtype filters applied (and notes on lookups).
    """

    attention_batch: npt.NDArray[np.float64]
    attention_load_tokens: npt.NDArray[np.float64]
    attention_time_s: npt.NDArray[np.float64]
    ffn_tokens: npt.NDArray[np.float64]
    ffn_time_s: npt.NDArray[np.float64]
    comm_batch: npt.NDArray[np.float64] | None = None
    comm_time_s: npt.NDArray[np.float64] | None = None
    device: str = ""
    filters: dict[str, Any] = dataclasses.field(default_factory=dict)


def _table(root: Path, key: str) -> pl.LazyFrame:
    hits = sorted(root.glob(_TABLES[key]))
    if not hits:
        raise DataFileError(f"{root} has no {_TABLES[key]} (aiconfigurator silicon layout)")
    return pl.scan_parquet(hits[-1])


def _pick(lf: pl.LazyFrame, column: str, wanted: str | None, what: str) -> tuple[pl.LazyFrame, str]:
    """Filter ``lf`` to one value of ``column``: ``wanted`` or else the one with most rows."""
    counts = lf.group_by(column).len().sort(["len", column], descending=True).collect()
    values = counts[column].to_list()
    if not values:
        raise InputError(f"no {what} rows match the model's shapes")
    if wanted is None:
        wanted = str(values[0])
    elif wanted not in values:
        raise InputError(f"{column} {wanted!r} has no {what} rows; available: {', '.join(values)}")
    return lf.filter(pl.col(column) == wanted), wanted


def _device(lf: pl.LazyFrame) -> str:
    return str(lf.select(pl.col("device").first()).collect().item())


class _GemmTable:
    """Latency of [m, k] x [k, n] GEMMs for one dtype/kernel, looked up by shape.

    A shape not in the table takes its nearest (n, k) in log space, scaled by n·k / (n'·k'):
    at fixed m both the weight bytes and the FLOPs of a GEMM are proportional to n·k.
    """

    def __init__(self, lf: pl.LazyFrame, dtype: str, kernel: str | None) -> None:
        lf = lf.filter(pl.col("gemm_dtype") == dtype)
        lf, self.kernel = _pick(lf, "kernel_source", kernel, f"GEMM {dtype}")
        df = lf.group_by(["n", "k", "m"]).agg(pl.col("latency").median()).collect()
        self.dtype = dtype
        self._n = df["n"].to_numpy()
        self._k = df["k"].to_numpy()
        self._m = df["m"].to_numpy()
        self._t = df["latency"].to_numpy() * _MS
        self.scaled: list[str] = []

    def time_s(self, m: npt.ArrayLike, n: int, k: int) -> npt.NDArray[np.float64]:
        """Interpolated latency (s) at token counts m for an (n, k) weight."""
        shapes = np.unique(np.column_stack([self._n, self._k]), axis=0)
        dist = np.abs(np.log(shapes[:, 0] / n)) + np.abs(np.log(shapes[:, 1] / k))
        n0, k0 = shapes[np.argmin(dist)]
        scale = (n * k) / (n0 * k0)
        if scale != 1.0:
            self.scaled.append(f"{n}x{k} from {n0}x{k0}")
        sel = (self._n == n0) & (self._k == k0)
        order = np.argsort(self._m[sel])
        ms, ts = self._m[sel][order], self._t[sel][order]
        logm = np.log(np.asarray(m, dtype=np.float64))
        out: _Array = scale * np.interp(logm, np.log(ms), ts)
        return out


def _gemm_dtype(model: ModelSpec) -> str:
    # fp8 checkpoints (DeepSeek-V3) ship 128x128 block-scaled weights.
    return "fp8_block" if model.weight_bytes_per_param == 1 else "bfloat16"


def _attention_points(
    root: Path,
    model: ModelSpec,
    gemm: _GemmTable,
    *,
    kv_dtype: str,
    attn_gpus: int,
    kernel: str | None,
) -> tuple[_Array, _Array, _Array, dict[str, Any]]:
    tp = attn_gpus
    H = model.num_attention_heads
    if H % tp:
        raise InputError(f"attn_gpus={tp} must divide the {H} attention heads of {model.name}")
    kv_name = _KV_DTYPE_NAMES.get(kv_dtype, kv_dtype)
    if model.is_mla:
        if model.hidden_size != 7168 or model.kv_lora_rank != 512:
            raise InputError(
                f"the MLA table holds DeepSeek-V3 shapes only (hidden 7168, kv_lora_rank 512); "
                f"{model.name} has hidden {model.hidden_size}, kv_lora_rank {model.kv_lora_rank}"
            )
        lf = _table(root, "mla").filter(
            (pl.col("num_heads") == H // tp)
            & (pl.col("kv_cache_dtype") == kv_name)
            & (pl.col("gemm_type") == gemm.dtype)
        )
        lf, chosen = _pick(lf, "kernel_source", kernel, f"MLA kv {kv_name}")
        filters: dict[str, Any] = {"table": "mla_generation_module", "kernel_source": chosen}
        filters |= {"kv_cache_dtype": kv_name, "gemm_type": gemm.dtype, "num_heads": H // tp}
        per_layer_gemm = None
    else:
        kv_heads = max(model.num_kv_heads // tp, 1)
        lf = _table(root, "attention").filter(
            (pl.col("num_heads") == H // tp)
            & (pl.col("num_key_value_heads") == kv_heads)
            & (pl.col("head_dim") == model.head_dim)
            & (pl.col("window_size") == 0)
            & (pl.col("kv_cache_dtype") == kv_name)
        )
        lf, chosen = _pick(lf, "kernel_source", kernel, f"attention kv {kv_name}")
        filters = {"table": "generation_attention", "kernel_source": chosen}
        filters |= {"kv_cache_dtype": kv_name, "num_heads": H // tp, "num_kv_heads": kv_heads}
        per_layer_gemm = (
            ((H + 2 * model.num_kv_heads) * model.head_dim // tp, model.hidden_size),
            (model.hidden_size, H * model.head_dim // tp),
        )
    df = lf.group_by(["batch_size", "step"]).agg(pl.col("latency").median()).collect()
    B = df["batch_size"].to_numpy().astype(np.float64)
    step = df["step"].to_numpy().astype(np.float64)
    t_layer = df["latency"].to_numpy() * _MS
    if per_layer_gemm is not None:
        for n, k in per_layer_gemm:
            t_layer = t_layer + gemm.time_s(B, n, k)
    lm_head = gemm.time_s(B, model.vocab_size // tp, model.hidden_size)
    t = model.num_layers * t_layer + lm_head
    filters["gemm"] = {"gemm_dtype": gemm.dtype, "kernel_source": gemm.kernel}
    return B, B * (step + 1.0), t, filters


def _ffn_points(
    root: Path,
    model: ModelSpec,
    gemm: _GemmTable,
    *,
    ffn_gpus: int,
    kernel: str | None,
    distribution: str,
) -> tuple[_Array, _Array, dict[str, Any]]:
    g, h = ffn_gpus, model.hidden_size
    filters: dict[str, Any] = {"gemm": {"gemm_dtype": gemm.dtype, "kernel_source": gemm.kernel}}
    if model.is_moe:
        lf = _table(root, "moe").filter(
            (pl.col("hidden_size") == h)
            & (pl.col("inter_size") == model.moe_intermediate_size)
            & (pl.col("topk") == model.experts_per_token)
            & (pl.col("num_experts") == model.num_experts)
            & (pl.col("distribution") == distribution)
            & (pl.col("moe_dtype") == gemm.dtype)
            & (pl.col("moe_tp_size") * pl.col("moe_ep_size") == g)
        )
        # Prefer pure expert parallelism over the FFN instance's GPUs.
        layouts = lf.select("moe_tp_size", "moe_ep_size").unique().collect()
        if layouts.height == 0:
            raise InputError(
                f"no MoE rows for {model.name} (hidden {h}, expert {model.moe_intermediate_size}, "
                f"top-{model.experts_per_token} of {model.num_experts}, {gemm.dtype}, "
                f"{distribution}) with tp*ep = ffn_gpus = {g}"
            )
        eps = sorted(layouts["moe_ep_size"].to_list())
        ep = g if g in eps else eps[-1]
        lf = lf.filter(pl.col("moe_ep_size") == ep)
        lf, chosen = _pick(lf, "kernel_source", kernel, "MoE")
        filters["moe"] = {"kernel_source": chosen, "moe_dtype": gemm.dtype}
        filters["moe"] |= {"distribution": distribution, "moe_tp_size": g // ep}
        filters["moe"]["moe_ep_size"] = ep
        df = lf.group_by("num_tokens").agg(pl.col("latency").median()).sort("num_tokens").collect()
        N = df["num_tokens"].to_numpy().astype(np.float64)
        t = model.num_moe_layers * df["latency"].to_numpy() * _MS
        if model.shared_intermediate_size:
            I_s = model.shared_intermediate_size
            shared = gemm.time_s(N, 2 * I_s // g, h) + gemm.time_s(N, h, I_s // g)
            t = t + model.num_moe_layers * shared
    else:
        N = np.unique(gemm._m[gemm._m >= 1]).astype(np.float64)
        t = np.zeros_like(N)
    if model.num_dense_layers:
        inter = model.intermediate_size
        dense = gemm.time_s(N, 2 * inter // g, h) + gemm.time_s(N, h, inter // g)
        t = t + model.num_dense_layers * dense
    return N, t, filters


def _comm_points(
    root: Path, model: ModelSpec, *, ffn_gpus: int, op: str
) -> tuple[_Array, _Array, dict[str, Any]]:
    lf = _table(root, "comm").filter((pl.col("op_name") == op) & (pl.col("nccl_dtype") == "half"))
    gpus = sorted(lf.select("num_gpus").unique().collect()["num_gpus"].to_list())
    if not gpus:
        raise InputError(f"no NCCL rows for op {op!r} in half precision")
    lf = lf.filter(pl.col("num_gpus") == gpus[0])
    df = lf.group_by("message_size").agg(pl.col("latency").median()).sort("message_size").collect()
    copies = min(model.experts_per_token, ffn_gpus) if model.is_moe else 1
    B = df["message_size"].to_numpy() / (model.hidden_size * copies)
    t = 2 * model.num_layers * df["latency"].to_numpy() * _MS
    filters: dict[str, Any] = {"op_name": op, "nccl_dtype": "half", "num_gpus": gpus[0]}
    filters["copies_per_token"] = copies
    return B, t, filters


def read_silicon(
    silicon_dir: str | Path,
    model: ModelSpec,
    *,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    attention_kernel: str | None = None,
    gemm_kernel: str | None = None,
    moe_kernel: str | None = None,
    gemm_dtype: str | None = None,
    moe_distribution: str = "balanced",
    comm_op: str = "alltoall",
) -> StepMeasurements:
    """Per-step times of ``model`` from one GPU folder of the aiconfigurator silicon layout.

    Parameters
    ----------
    silicon_dir : path
        One GPU's folder, e.g. ``.../aiconfigurator_silicon/h100_sxm``.
    model : ModelSpec
        The model whose shapes select the rows.
    kv_dtype : {"bf16", "fp8"}
        KV-cache dtype filter.
    attn_gpus, ffn_gpus : int
        Tensor parallelism of the Attention instance; tp·ep of the FFN instance.
    attention_kernel, gemm_kernel, moe_kernel : str, optional
        ``kernel_source`` filters; by default the kernel with the most matching rows.
    gemm_dtype : str, optional
        GEMM and MoE dtype; default ``bfloat16``, or ``fp8_block`` for fp8 checkpoints.
    moe_distribution : str, default "balanced"
        Expert-load distribution of the MoE rows (uniform routing is what the roofline assumes).
    comm_op : str, default "alltoall"
        NCCL collective used as the proxy for the Attention↔FFN transfer (fewest GPUs measured).

    Raises
    ------
    DataFileError
        A table is missing.
    InputError
        No rows match the model's shapes and the filters.
    """
    root = Path(silicon_dir)
    if not root.is_dir():
        raise DataFileError(f"--silicon {root} is not a directory")
    gemm = _GemmTable(_table(root, "gemm"), gemm_dtype or _gemm_dtype(model), gemm_kernel)
    aB, aL, at, afilt = _attention_points(
        root, model, gemm, kv_dtype=kv_dtype, attn_gpus=attn_gpus, kernel=attention_kernel
    )
    fN, ft, ffilt = _ffn_points(
        root, model, gemm, ffn_gpus=ffn_gpus, kernel=moe_kernel, distribution=moe_distribution
    )
    cB, ct, cfilt = _comm_points(root, model, ffn_gpus=ffn_gpus, op=comm_op)
    filters: dict[str, Any] = {"attention": afilt, "ffn": ffilt, "comm": cfilt}
    if gemm.scaled:
        filters["gemm_shapes_scaled"] = sorted(set(gemm.scaled))
    return StepMeasurements(
        attention_batch=aB,
        attention_load_tokens=aL,
        attention_time_s=at,
        ffn_tokens=fN,
        ffn_time_s=ft,
        comm_batch=cB,
        comm_time_s=ct,
        device=_device(_table(root, "gemm")),
        filters=filters,
    )
