"""Per-step measurements of one model from aiconfigurator's measured kernel tables (design §10).

The layout (``shared/calibration/aiconfigurator_silicon/<gpu>/``) holds one-layer latencies of
decode attention (GQA) or the MLA module, GEMMs, fused MoE layers and NCCL collectives, in ms.
This module turns them into per-decode-step times **through all layers** of one model:

- Attention at (B, s): layers · (attention kernel(B, s) + q/k/v/o GEMMs at m = B) + LM head(B).
  For MLA the module table already includes the projections. The KV load is L = B·(s + 1):
  ``step`` is the KV length already cached and the new token attends to itself too.
- FFN at N tokens: MoE layers · fused MoE(N) + shared-expert GEMMs(N) + dense layers' GEMMs(N).
- Communication at B: 2 directions · layers · all-to-all latency(B·h·c/g_A elements per GPU),
  c = top-k fan-out to the EP ranks.

Rows are selected **per part** (``attention``, ``attn_gemm``, ``moe``, ``ffn_gemm``, ``comm``):
each part has its own dtype (default: the checkpoint's quantization) and its own kernel (default:
the fastest kernel that is not a flat floor, :mod:`afdsizer.cost._kernels`), each overridable.
The LM head stays bf16 (quantised checkpoints leave it unquantised). What each part used is
returned in ``selections`` so a profile can say what it was fitted on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from afdsizer.cost._kernels import KernelChoice, KernelCurve, choose_kernel
from afdsizer.cost._model import ModelSpec
from afdsizer.errors import DataFileError, InputError

__all__ = [
    "MOE_ROUTINGS",
    "MOE_ROW_MODES",
    "StepMeasurements",
    "checkpoint_quantization",
    "default_part_dtypes",
    "moe_routings",
    "read_silicon",
]

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
_QUANT_TO_TABLE_DTYPE = {None: "bfloat16", "fp8": "fp8", "fp8_block": "fp8_block"}

MOE_ROUTINGS = ("balanced", "power_law_1.01", "power_law_1.2")
"""Expert-load distributions of the MoE rows; ``power_law`` and ``auto`` mean ``power_law_1.2``."""

_COVER_FRAC = 0.5
"""A kernel covers a part when its measured work spans this share of the fit range (log)."""


def checkpoint_quantization(model: ModelSpec) -> str | None:
    """The checkpoint's weight quantization: ``"fp8_block"``, ``"fp8"`` or None (bf16/fp16).

    It is :attr:`ModelSpec.quantization`, read from the checkpoint's ``quantization_config``
    (or set by :meth:`ModelSpec.with_weight_dtype` for a deployment that serves FP8).
    """
    return model.quantization


def default_part_dtypes(model: ModelSpec) -> dict[str, str]:
    """Table dtype of each part for ``model``'s checkpoint (LM head always bf16)."""
    dtype = _QUANT_TO_TABLE_DTYPE.get(checkpoint_quantization(model), "bfloat16")
    return {"attn_gemm": dtype, "lm_head": "bfloat16", "moe": dtype, "ffn_gemm": dtype}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StepMeasurements:
    """Measured per-step times (all layers) of one model on one device, ready to fit.

    Parameters
    ----------
    attention_batch : ndarray of shape (n_a,)
        B of each attention point, requests (per worker).
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
    moe_tokens, moe_call_time_s : ndarray of shape (n_m,) or None
        The fused-MoE rows over their whole token range: N and time of one call (one layer).
    moe_shape : dict or None
        ``num_experts``, ``experts_per_token``, ``local_experts`` (of the rows), ``calls`` (MoE
        layers) and ``rank_share`` (1/ep when 1-GPU rows stand for one EP rank, else 1).
    moe_ep_tokens, moe_ep_call_time_s : ndarray or None
        The EP layout's own MoE rows when the 1-GPU rows were scaled instead (for comparison).
    ffn_gemm_tokens, ffn_gemm_time_s : ndarray or None
        The GEMM part of t_F (dense layers, shared experts) per step, at its own token points.
    attention_gemm_time_s : ndarray of shape (n_a,) or None
        The GEMM share of each attention point per step (projections and LM head), s.
    comm_fan_out : float
        c, copies of a token sent to distinct FFN GPUs (top-k fan-out), for the γ_C term.
    selections : dict
        Per part: table, kernel, dtype, layout and the :class:`KernelChoice` record.
    warnings : list of str
        Row-selection warnings (flat-floor kernels, missing layouts).
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
    moe_tokens: npt.NDArray[np.float64] | None = None
    moe_call_time_s: npt.NDArray[np.float64] | None = None
    moe_shape: dict[str, float] | None = None
    moe_ep_tokens: npt.NDArray[np.float64] | None = None
    moe_ep_call_time_s: npt.NDArray[np.float64] | None = None
    ffn_gemm_tokens: npt.NDArray[np.float64] | None = None
    ffn_gemm_time_s: npt.NDArray[np.float64] | None = None
    attention_gemm_time_s: npt.NDArray[np.float64] | None = None
    comm_fan_out: float = 1.0
    selections: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)


def _table(root: Path, key: str) -> pl.LazyFrame:
    hits = sorted(root.glob(_TABLES[key]))
    if not hits:
        raise DataFileError(f"{root} has no {_TABLES[key]} (aiconfigurator silicon layout)")
    return pl.scan_parquet(hits[-1])


def _device(lf: pl.LazyFrame) -> str:
    return str(lf.select(pl.col("device").first()).collect().item())


def _covers(work: _Array, bounds: tuple[float, float]) -> bool:
    """The kernel's measured work spans at least half of ``bounds`` in log space."""
    lo, hi = max(float(work.min()), bounds[0]), min(float(work.max()), bounds[1])
    if bounds[1] <= bounds[0]:
        return bool(lo <= hi)
    return bool(hi > lo and np.log(hi / lo) >= _COVER_FRAC * np.log(bounds[1] / bounds[0]))


def _choice_record(part: str, choice: KernelChoice, **extra: Any) -> dict[str, Any]:
    return {"part": part, "kernel_source": choice.kernel, **extra, "kernel": choice.to_dict()}


# ----------------------------------------------------------------------------- GEMMs
class _GemmKernel:
    """One kernel's GEMM rows for one dtype, looked up by shape.

    A shape not in the table takes its nearest (n, k) in log space, scaled by n·k / (n'·k'):
    at fixed m both the weight bytes and the FLOPs of a GEMM are proportional to n·k.
    """

    def __init__(self, df: pl.DataFrame, kernel: str, dtype: str) -> None:
        self.kernel, self.dtype = kernel, dtype
        self._n = df["n"].to_numpy()
        self._k = df["k"].to_numpy()
        self._m = df["m"].to_numpy().astype(np.float64)
        self._t = df["latency"].to_numpy() * _MS
        self._shapes = np.unique(np.column_stack([self._n, self._k]), axis=0)
        self.scaled: list[str] = []

    def _rows(self, n: int, k: int) -> tuple[_Array, _Array, float, str | None]:
        dist = np.abs(np.log(self._shapes[:, 0] / n)) + np.abs(np.log(self._shapes[:, 1] / k))
        n0, k0 = self._shapes[np.argmin(dist)]
        sel = (self._n == n0) & (self._k == k0)
        order = np.argsort(self._m[sel])
        scale = (n * k) / (n0 * k0)
        note = None if scale == 1.0 else f"{n}x{k} from {n0}x{k0}"
        return self._m[sel][order], self._t[sel][order], scale, note

    def m_values(self, shapes: list[tuple[int, int]]) -> _Array:
        """Token counts m measured for every one of ``shapes`` (their nearest table shapes)."""
        sets = [set(self._rows(n, k)[0].tolist()) for n, k in shapes]
        return np.array(sorted(set.intersection(*sets)), dtype=np.float64)

    def time_s(self, m: npt.ArrayLike, n: int, k: int) -> _Array:
        """Interpolated latency (s) at token counts m for an (n, k) weight."""
        ms, ts, scale, note = self._rows(n, k)
        if note is not None:
            self.scaled.append(note)
        logm = np.log(np.asarray(m, dtype=np.float64))
        out: _Array = scale * np.interp(logm, np.log(ms), ts)
        return out


def _gemm_part(
    gemm: pl.LazyFrame,
    part: str,
    dtype: str,
    shapes: list[tuple[int, int]],
    work_range: tuple[float, float],
    wanted: str | None,
) -> tuple[_GemmKernel, dict[str, Any], list[str]]:
    """Choose the GEMM kernel of ``part`` (all its shapes run on one kernel, as engines do)."""
    df = gemm.filter(pl.col("gemm_dtype") == dtype).collect()
    if df.height == 0:
        have = gemm.select(pl.col("gemm_dtype").unique()).collect()["gemm_dtype"].to_list()
        raise InputError(
            f"{part}: gemm_dtype {dtype!r} has no GEMM rows; available: {', '.join(sorted(have))}"
        )
    tables = {
        str(key[0]): _GemmKernel(sub, str(key[0]), dtype)
        for key, sub in df.group_by("kernel_source")
    }

    def curve_of(kernel: str) -> KernelCurve | None:
        table = tables[kernel]
        m = table.m_values(shapes)
        if m.size < 2 or not _covers(m, work_range):
            return None
        t = sum(table.time_s(m, n, k) for n, k in shapes)
        return KernelCurve(kernel=kernel, work=m, time_s=np.asarray(t))

    choice = choose_kernel(
        part,
        sorted(tables),
        curve_of,
        wanted=wanted,
        rows_of=lambda k: len(tables[k]._t),
        work_range=work_range,
    )
    table = tables[choice.kernel]
    shapes_txt = [f"{n}x{k}" for n, k in shapes]
    record = _choice_record(part, choice, table="gemm", dtype=dtype, shapes=shapes_txt)
    if dtype == "fp8_block":
        option = part.replace("_", "-") + "-dtype"
        record["notes"] = [_EAGER_FP8_BLOCK_NOTE.format(part=part, option=option)]
    return table, record, choice.warnings


_EAGER_FP8_BLOCK_NOTE = (
    "{part}: aiconfigurator's collector times block-FP8 GEMMs without CUDA graphs (its other "
    "GEMMs with them), so these rows carry host dispatch (~80-90 us a call at small m) that a "
    "CUDA-graph decode step does not pay; the roofline leaves it out (docs/cost.md); the "
    "per-tensor FP8 rows (--{option} fp8) were timed with CUDA graphs"
)


# ----------------------------------------------------------------------------- attention
def _kernel_curves(df: pl.DataFrame, work: str) -> dict[str, KernelCurve]:
    """Median time per work value of each kernel in ``df`` (columns kernel_source, work, t)."""
    out = {}
    for key, sub in df.group_by("kernel_source"):
        agg = sub.group_by(work).agg(pl.col("t").median()).sort(work)
        out[str(key[0])] = KernelCurve(
            kernel=str(key[0]),
            work=agg[work].to_numpy().astype(np.float64),
            time_s=agg["t"].to_numpy() * _MS,
        )
    return out


def _attention_rows(
    root: Path, model: ModelSpec, *, tp: int, kv_name: str, gemm_type: str
) -> tuple[pl.DataFrame, dict[str, Any]]:
    H = model.num_attention_heads
    if model.is_mla:
        if model.hidden_size != 7168 or model.kv_lora_rank != 512:
            raise InputError(
                f"the MLA table holds DeepSeek-V3 shapes only (hidden 7168, kv_lora_rank 512); "
                f"{model.name} has hidden {model.hidden_size}, kv_lora_rank {model.kv_lora_rank}"
            )
        lf = _table(root, "mla").filter(
            (pl.col("num_heads") == H // tp)
            & (pl.col("kv_cache_dtype") == kv_name)
            & (pl.col("gemm_type") == gemm_type)
        )
        filters: dict[str, Any] = {"table": "mla_generation_module", "kv_cache_dtype": kv_name}
        filters |= {"gemm_type": gemm_type, "num_heads": H // tp}
    else:
        kv_heads = max(model.num_kv_heads // tp, 1)
        lf = _table(root, "attention").filter(
            (pl.col("num_heads") == H // tp)
            & (pl.col("num_key_value_heads") == kv_heads)
            & (pl.col("head_dim") == model.head_dim)
            & (pl.col("window_size") == 0)
            & (pl.col("kv_cache_dtype") == kv_name)
        )
        filters = {"table": "generation_attention", "kv_cache_dtype": kv_name}
        filters |= {"num_heads": H // tp, "num_kv_heads": kv_heads}
    df = lf.select("kernel_source", "batch_size", "step", pl.col("latency").alias("t")).collect()
    df = df.with_columns((pl.col("batch_size") * (pl.col("step") + 1)).alias("load"))
    return df, filters


def _attention_points(
    root: Path,
    model: ModelSpec,
    gemm: pl.LazyFrame,
    *,
    kv_dtype: str,
    tp: int,
    kernel: str | None,
    gemm_dtype: str,
    gemm_kernel: str | None,
    batch_range: tuple[float, float],
) -> tuple[_Array, _Array, _Array, _Array, dict[str, Any], list[str], list[_GemmKernel]]:
    H = model.num_attention_heads
    if H % tp:
        raise InputError(f"attn_gpus={tp} must divide the {H} attention heads of {model.name}")
    kv_name = _KV_DTYPE_NAMES.get(kv_dtype, kv_dtype)
    gemm_type = gemm_dtype if model.is_mla else ""
    df, filters = _attention_rows(root, model, tp=tp, kv_name=kv_name, gemm_type=gemm_type)
    what = f"{'MLA' if model.is_mla else 'attention'} kv {kv_name}"
    if model.is_mla:
        what += f" gemm_type {gemm_type}"
    curves = _kernel_curves(df, "load")
    choice = choose_kernel(what, sorted(curves), curves.get, wanted=kernel)
    df = df.filter(pl.col("kernel_source") == choice.kernel)
    df = df.group_by(["batch_size", "step"]).agg(pl.col("t").median()).sort("batch_size", "step")
    B = df["batch_size"].to_numpy().astype(np.float64)
    step = df["step"].to_numpy().astype(np.float64)
    t_layer = df["t"].to_numpy() * _MS
    records = {"attention": _choice_record("attention", choice, dtype=kv_name, **filters)}
    warnings = list(choice.warnings)
    tables: list[_GemmKernel] = []
    t_gemm = np.zeros_like(t_layer)
    if not model.is_mla:
        shapes = [
            ((H + 2 * model.num_kv_heads) * model.head_dim // tp, model.hidden_size),
            (model.hidden_size, H * model.head_dim // tp),
        ]
        proj, rec, warn = _gemm_part(
            gemm, "attn_gemm", gemm_dtype, shapes, batch_range, gemm_kernel
        )
        t_gemm = model.num_layers * np.sum([proj.time_s(B, n, k) for n, k in shapes], axis=0)
        records["attn_gemm"], warnings, tables = rec, warnings + warn, [proj]
    lm_shape = [(model.vocab_size // tp, model.hidden_size)]
    lm, rec, warn = _gemm_part(gemm, "lm_head", "bfloat16", lm_shape, batch_range, None)
    t_gemm = t_gemm + lm.time_s(B, *lm_shape[0])
    t = model.num_layers * t_layer + t_gemm
    records["lm_head"], warnings, tables = rec, warnings + warn, [*tables, lm]
    return B, B * (step + 1.0), t, t_gemm, records, warnings, tables


# ----------------------------------------------------------------------------- FFN
def _moe_layout(lf: pl.LazyFrame, g: int, ffn_parallel: str, what: str) -> tuple[int, int]:
    layouts = lf.select("moe_tp_size", "moe_ep_size").unique().collect()
    pairs = {(int(t), int(e)) for t, e in layouts.iter_rows() if t * e == g}
    if not pairs:
        raise InputError(f"no MoE rows for {what} with tp*ep = ffn_gpus = {g}")
    if ffn_parallel == "tp":
        if (g, 1) not in pairs:
            raise InputError(f"no tensor-parallel MoE rows (moe_tp_size {g}) for {what}")
        return g, 1
    if ffn_parallel == "ep" and (1, g) not in pairs:
        raise InputError(f"no expert-parallel MoE rows (moe_ep_size {g}) for {what}")
    return (1, g) if (1, g) in pairs else max(pairs, key=lambda p: p[1])


MOE_ROW_MODES = ("auto", "measured", "scaled")
"""Which MoE rows stand for an EP rank: the EP layout's rows, or the 1-GPU rows scaled to a rank."""


def _moe_kernel_rows(
    lf: pl.LazyFrame,
    tp: int,
    ep: int,
    dtype: str,
    kernel: str | None,
    ffn_range: tuple[float, float],
) -> tuple[KernelCurve, KernelChoice]:
    rows = lf.filter((pl.col("moe_tp_size") == tp) & (pl.col("moe_ep_size") == ep))
    df = rows.select("kernel_source", "num_tokens", pl.col("latency").alias("t")).collect()
    curves = _kernel_curves(df, "num_tokens")
    kernels = sorted(curves)
    curves = {k: c for k, c in curves.items() if _covers(c.work, ffn_range)}
    choice = choose_kernel(f"MoE {dtype}", kernels, curves.get, wanted=kernel, work_range=ffn_range)
    return curves[choice.kernel], choice


def _moe_rows(
    root: Path,
    model: ModelSpec,
    *,
    g: int,
    dtype: str,
    routing: str,
    ffn_parallel: str,
    kernel: str | None,
    ffn_range: tuple[float, float],
    mode: str,
) -> dict[str, Any]:
    h = model.hidden_size
    what = (
        f"{model.name} (hidden {h}, expert {model.moe_intermediate_size}, "
        f"top-{model.experts_per_token} of {model.num_experts}, {dtype}, {routing})"
    )
    lf = _table(root, "moe").filter(
        (pl.col("hidden_size") == h)
        & (pl.col("inter_size") == model.moe_intermediate_size)
        & (pl.col("topk") == model.experts_per_token)
        & (pl.col("num_experts") == model.num_experts)
        & (pl.col("distribution") == routing)
        & (pl.col("moe_dtype") == dtype)
    )
    tp, ep = _moe_layout(lf, g, ffn_parallel, what)
    curve, choice = _moe_kernel_rows(lf, tp, ep, dtype, kernel, ffn_range)
    out: dict[str, Any] = {"ep": ep, "tokens": curve.work, "time_s": curve.time_s}
    record = _choice_record(
        "moe",
        choice,
        table="moe",
        dtype=dtype,
        distribution=routing,
        moe_tp_size=tp,
        moe_ep_size=ep,
        rows="measured",
    )
    has_single = lf.filter((pl.col("moe_tp_size") == 1) & (pl.col("moe_ep_size") == 1))
    single = ep > 1 and has_single.select(pl.len()).collect().item() > 0
    if mode == "scaled" and not single:
        raise InputError(f"--moe-rows scaled needs EP > 1 and 1-GPU MoE rows for {what}")
    if mode == "scaled" or (mode == "auto" and single):
        one, one_choice = _moe_kernel_rows(lf, 1, 1, dtype, kernel, ffn_range)
        out |= {"tokens": one.work, "time_s": one.time_s, "rank_share": 1.0 / ep}
        out |= {"ep_tokens": curve.work, "ep_time_s": curve.time_s}
        record = _choice_record(
            "moe",
            one_choice,
            table="moe",
            dtype=dtype,
            distribution=routing,
            moe_tp_size=1,
            moe_ep_size=1,
            rows=f"1-GPU rows scaled to one of {ep} EP ranks",
            ep_rows={"kernel_source": choice.kernel, "moe_tp_size": tp, "moe_ep_size": ep},
        )
        choice = one_choice
    out["record"], out["warnings"] = record, list(choice.warnings)
    return out


def _rank_curve(model: ModelSpec, moe: dict[str, Any]) -> Any:
    """The fused-MoE curve fitted on 1-GPU rows, moved to one EP rank (its experts and tokens)."""
    from afdsizer.cost._moe_curve import fit_expert_curve

    curve, _ = fit_expert_curve(
        moe["tokens"],
        moe["time_s"],
        part="moe",
        num_experts=model.num_experts,
        experts_per_token=model.experts_per_token,
        local_experts=model.num_experts,
    )
    return curve.for_rank(moe["rank_share"])


def _ffn_points(
    root: Path,
    model: ModelSpec,
    gemm: pl.LazyFrame,
    *,
    ffn_gpus: int,
    ffn_parallel: str,
    moe_kernel: str | None,
    moe_dtype: str,
    gemm_dtype: str,
    gemm_kernel: str | None,
    routing: str,
    ffn_range: tuple[float, float],
    moe_rows: str,
) -> dict[str, Any]:
    g, h = ffn_gpus, model.hidden_size
    out: dict[str, Any] = {"records": {}, "warnings": [], "tables": []}
    if model.is_moe:
        moe = _moe_rows(
            root,
            model,
            g=g,
            dtype=moe_dtype,
            routing=routing,
            ffn_parallel=ffn_parallel,
            kernel=moe_kernel,
            ffn_range=ffn_range,
            mode=moe_rows,
        )
        out["records"]["moe"], out["warnings"], out["moe"] = moe["record"], moe["warnings"], moe
        N = moe["tokens"]
        # Scaled rows: the per-step points are the rank's curve at the measured token counts.
        t_call = _rank_curve(model, moe).time_s(N) if "rank_share" in moe else moe["time_s"]
        t = model.num_moe_layers * t_call
    elif ffn_parallel == "ep":
        raise InputError(f"ffn_parallel 'ep' needs an MoE model; {model.name} is dense")
    # GEMM part: dense layers (TP over the FFN instance) and shared experts (split alike).
    shapes: list[tuple[tuple[int, int], int]] = []
    if model.shared_intermediate_size:
        I_s = model.shared_intermediate_size
        shapes += [((2 * I_s // g, h), model.num_moe_layers), ((h, I_s // g), model.num_moe_layers)]
    if model.num_dense_layers:
        inter = model.intermediate_size
        layers = model.num_dense_layers
        shapes += [((2 * inter // g, h), layers), ((h, inter // g), layers)]
    if shapes:
        table, rec, warn = _gemm_part(
            gemm, "ffn_gemm", gemm_dtype, [s for s, _ in shapes], ffn_range, gemm_kernel
        )
        out["records"]["ffn_gemm"] = rec | {"calls": {f"{n}x{k}": c for (n, k), c in shapes}}
        out["warnings"] += warn
        out["tables"].append(table)
        m = table.m_values([s for s, _ in shapes])
        t_gemm = sum(c * table.time_s(m, n, k) for (n, k), c in shapes)
        out["gemm"] = (m, np.asarray(t_gemm))
        if not model.is_moe:
            N, t = m, np.asarray(t_gemm)
        else:
            t = t + sum(c * table.time_s(N, n, k) for (n, k), c in shapes)
    out["points"] = (N, t)
    return out


# ----------------------------------------------------------------------------- comm
def _comm_points(
    root: Path,
    model: ModelSpec,
    *,
    attn_gpus: int,
    ffn_gpus: int,
    fan_out: float,
    op: str,
    gpus: int | None,
    gpus_per_worker: int,
) -> tuple[_Array, _Array, dict[str, Any]]:
    lf = _table(root, "comm").filter((pl.col("op_name") == op) & (pl.col("nccl_dtype") == "half"))
    measured = sorted(lf.select("num_gpus").unique().collect()["num_gpus"].to_list())
    if not measured:
        raise InputError(f"no NCCL rows for op {op!r} in half precision")
    notes: list[str] = []
    span = attn_gpus + ffn_gpus
    if gpus is None:
        below = [n for n in measured if n <= span]
        gpus = below[-1] if below else measured[0]
        if span > measured[-1]:
            # Nearly every AFD bundle spans more than one node's rows: information, not a
            # warning (the roofline cross-check warns when the fitted β_C is far off).
            notes.append(
                f"comm: {attn_gpus}+{ffn_gpus} GPUs exceed the {measured[-1]}-GPU NCCL rows "
                "(one node): the transfer across nodes is not measured"
            )
    elif gpus not in measured:
        have = ", ".join(str(n) for n in measured)
        raise InputError(f"--comm-gpus {gpus} has no {op} rows; measured: {have}")
    lf = lf.filter(pl.col("num_gpus") == gpus)
    df = lf.group_by("message_size").agg(pl.col("latency").median()).sort("message_size").collect()
    # Each Attention GPU sends its share of its worker's batch, c copies of h elements per
    # token: B/g_A under TP (the worker is the instance), its own b under DP. The fitted x is
    # then tokens per worker, what the theory charges β_C by.
    elements_per_token = model.hidden_size * fan_out / gpus_per_worker
    B = df["message_size"].to_numpy() / elements_per_token
    t = 2 * model.num_layers * df["latency"].to_numpy() * _MS
    record: dict[str, Any] = {"part": "comm", "table": "nccl", "kernel_source": "NCCL"}
    record |= {"op_name": op, "dtype": "half", "num_gpus": gpus, "fan_out": fan_out}
    record["elements_per_token_per_gpu"] = elements_per_token
    record["notes"] = notes
    return B, t, record


# ----------------------------------------------------------------------------- entry point
def _choice_of(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(
            f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got {value!r}"
        )
    return value


def moe_routings(routing: str) -> tuple[str, str]:
    """The MoE rows' routing and the roofline's for one ``--moe-routing`` value.

    ``auto`` is the power law, as ``resolve_moe_routing`` makes it for the roofline; the
    tables' ``power_law`` rows are those at α = 1.2, which the roofline's power-law slowdown
    was fitted on. ``power_law_1.01`` rows are compared with the same power-law roofline.

    Raises
    ------
    InputError
        ``routing`` is none of auto, balanced, power_law, power_law_1.2, power_law_1.01.
    """
    table = {"auto": "power_law_1.2", "power_law": "power_law_1.2"}.get(routing, routing)
    if table not in MOE_ROUTINGS:
        allowed = ", ".join(("auto", "power_law", *MOE_ROUTINGS))
        raise InputError(f"--moe-routing must be one of {allowed}, got {routing!r}")
    return table, "balanced" if table == "balanced" else "power_law"


def read_silicon(
    silicon_dir: str | Path,
    model: ModelSpec,
    *,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    attn_parallel: str = "tp",
    ffn_parallel: str = "auto",
    attention_kernel: str | None = None,
    attn_gemm_dtype: str | None = None,
    attn_gemm_kernel: str | None = None,
    moe_kernel: str | None = None,
    moe_dtype: str | None = None,
    ffn_gemm_dtype: str | None = None,
    ffn_gemm_kernel: str | None = None,
    moe_routing: str = "auto",
    moe_rows: str = "auto",
    comm_op: str = "alltoall",
    comm_gpus: int | None = None,
    batch_range: tuple[float, float] = (16, 256),
    ffn_tokens_range: tuple[float, float] = (128, 4096),
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
        g_A, GPUs per Attention instance; g_F = tp·ep of the FFN instance.
    attn_parallel : {"tp", "dp"}
        Tensor-parallel heads over g_A GPUs, or g_A data-parallel workers of one GPU each (the
        attention points are then those of one worker).
    ffn_parallel : {"auto", "ep", "tp"}
        MoE rows with moe_ep_size = g_F, moe_tp_size = g_F, or EP where measured (auto).
    attention_kernel, attn_gemm_kernel, moe_kernel, ffn_gemm_kernel : str, optional
        ``kernel_source`` of each part; default the fastest kernel that is not a flat floor.
    attn_gemm_dtype, moe_dtype, ffn_gemm_dtype : str, optional
        Table dtype of the attention projections (and MLA ``gemm_type``), the fused MoE, and
        the dense/shared GEMMs; default the checkpoint's (:func:`default_part_dtypes`).
    moe_routing : str, default "auto"
        Expert-load distribution of the MoE rows (:data:`MOE_ROUTINGS`, ``power_law`` or
        ``auto``, both the α = 1.2 rows: the roofline's default law, :func:`moe_routings`).
    moe_rows : {"auto", "measured", "scaled"}, default "auto"
        Under EP (g_F ranks): the EP layout's own rows ("measured"), or the 1-GPU rows with
        the fitted curve moved to one rank, E/ep experts and 1/ep of the tokens' work
        ("scaled": a dispatch that sends each rank only its tokens, as AFD does and the
        roofline assumes). "auto" is "scaled" when 1-GPU rows exist. The measured EP rows
        are kept for comparison (``moe_ep_tokens``).
    comm_op : str, default "alltoall"
        NCCL collective standing for the Attention↔FFN transfer.
    comm_gpus : int, optional
        GPU count of the NCCL rows; default the largest measured <= g_A + g_F.
    batch_range, ffn_tokens_range : (float, float)
        Work ranges the kernels are compared over (the fit's operating ranges).

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
    if attn_parallel not in ("tp", "dp"):
        raise InputError(f"attn_parallel must be tp or dp, got {attn_parallel!r}")
    if ffn_parallel not in ("auto", "ep", "tp"):
        raise InputError(f"ffn_parallel must be auto, ep or tp, got {ffn_parallel!r}")
    dtypes = default_part_dtypes(model)
    dtypes["attn_gemm"] = attn_gemm_dtype or dtypes["attn_gemm"]
    dtypes["moe"] = moe_dtype or dtypes["moe"]
    dtypes["ffn_gemm"] = ffn_gemm_dtype or dtypes["ffn_gemm"]
    gemm = _table(root, "gemm")
    tp = attn_gpus if attn_parallel == "tp" else 1
    aB, aL, at, a_gemm, records, warnings, tables = _attention_points(
        root,
        model,
        gemm,
        kv_dtype=kv_dtype,
        tp=tp,
        kernel=attention_kernel,
        gemm_dtype=dtypes["attn_gemm"],
        gemm_kernel=attn_gemm_kernel,
        batch_range=batch_range,
    )
    ffn = _ffn_points(
        root,
        model,
        gemm,
        ffn_gpus=ffn_gpus,
        ffn_parallel=ffn_parallel,
        moe_kernel=moe_kernel,
        moe_dtype=dtypes["moe"],
        gemm_dtype=dtypes["ffn_gemm"],
        gemm_kernel=ffn_gemm_kernel,
        routing=moe_routings(moe_routing)[0],
        moe_rows=_choice_of(moe_rows, "moe_rows", MOE_ROW_MODES),
        ffn_range=ffn_tokens_range,
    )
    records |= ffn["records"]
    warnings += ffn["warnings"]
    moe = ffn.get("moe")
    ep = moe["ep"] if moe else 1
    fan_out = float(min(model.experts_per_token, ep)) if model.is_moe and ep > 1 else 1.0
    cB, ct, comm_rec = _comm_points(
        root,
        model,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        fan_out=fan_out,
        op=comm_op,
        gpus=comm_gpus,
        gpus_per_worker=tp,
    )
    records["comm"] = comm_rec
    scaled = sorted({s for table in [*tables, *ffn["tables"]] for s in table.scaled})
    filters: dict[str, Any] = {part: _legacy_filter(rec) for part, rec in records.items()}
    if scaled:
        filters["gemm_shapes_scaled"] = scaled
    moe_shape = None
    if moe:
        share = moe.get("rank_share", 1.0)
        moe_shape = {
            "num_experts": model.num_experts,
            "experts_per_token": model.experts_per_token,
            "local_experts": model.num_experts / ep if share == 1.0 else model.num_experts,
            "calls": model.num_moe_layers,
            "rank_share": share,
        }
    fN, ft = ffn["points"]
    return StepMeasurements(
        attention_batch=aB,
        attention_load_tokens=aL,
        attention_time_s=at,
        ffn_tokens=np.asarray(fN, dtype=np.float64),
        ffn_time_s=np.asarray(ft, dtype=np.float64),
        comm_batch=cB,
        comm_time_s=ct,
        device=_device(gemm),
        filters=filters,
        moe_tokens=moe["tokens"] if moe else None,
        moe_call_time_s=moe["time_s"] if moe else None,
        moe_shape=moe_shape,
        moe_ep_tokens=moe.get("ep_tokens") if moe else None,
        moe_ep_call_time_s=moe.get("ep_time_s") if moe else None,
        ffn_gemm_tokens=ffn["gemm"][0] if "gemm" in ffn else None,
        ffn_gemm_time_s=ffn["gemm"][1] if "gemm" in ffn else None,
        attention_gemm_time_s=a_gemm,
        comm_fan_out=fan_out,
        selections=records,
        warnings=warnings,
    )


def _legacy_filter(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its kernel-choice detail (the ``filters`` summary)."""
    return {k: v for k, v in record.items() if k not in ("kernel", "part", "notes")}
