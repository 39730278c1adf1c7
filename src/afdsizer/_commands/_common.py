"""Options and input resolution shared by several commands (size, simulate, report, validate).

A command takes its workload from ``--trace`` (default: the bundled sample) or from
``--theta/--slot-load-std``, and its cost coefficients from ``--coeffs FILE``, or
``--profile FILE``, or ``--model/--hardware`` (roofline presets). These helpers turn the options
into plain values; the commands call the public API with them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from afdsizer._json import jsonable
from afdsizer._sizing import DEFAULT_HARDWARE, DEFAULT_MODEL
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.cost import CostCoefficients

__all__ = [
    "DEFAULT_ATTN_GPUS",
    "DEFAULT_FFN_GPUS",
    "DEFAULT_HARDWARE",
    "DEFAULT_MODEL",
    "AttnGpusOpt",
    "AttnGpusOptional",
    "AttnParallelOpt",
    "BatchPerGpuOpt",
    "CoeffsOpt",
    "DropInvalidOpt",
    "FfnGpusOpt",
    "FfnGpusOptional",
    "FfnParallelOpt",
    "HardwareOpt",
    "IslOpt",
    "JsonOpt",
    "KvDtypeOpt",
    "KvDtypeOptional",
    "LayersOpt",
    "MicrobatchesOpt",
    "ModelOpt",
    "MoeRoutingOpt",
    "ObjectiveOpt",
    "OslOpt",
    "PipelineOpt",
    "ProfileOpt",
    "SlotLoadStdOpt",
    "ThetaOpt",
    "TpotMsOpt",
    "TpotP99MsOpt",
    "TraceOpt",
    "WeightDtypeOpt",
    "check_workload_options",
    "coefficients_from_options",
    "emit_json",
    "jsonable",
    "tpot_target_s",
]

DEFAULT_ATTN_GPUS = Deployment().attn_gpus
"""GPUs per Attention instance unless --attn-gpus says otherwise (:class:`Deployment`'s)."""
DEFAULT_FFN_GPUS = Deployment().ffn_gpus
"""GPUs per FFN instance unless --ffn-gpus says otherwise (:class:`Deployment`'s)."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
TraceOpt = Annotated[
    Path | None,
    typer.Option(
        "--trace", help="Request trace (CSV/JSONL/Parquet, .gz ok). Default: bundled sample."
    ),
]
DropInvalidOpt = Annotated[
    bool, typer.Option("--drop-invalid", help="Drop malformed trace rows instead of stopping.")
]
ThetaOpt = Annotated[
    float | None, typer.Option("--theta", help="θ, mean slot load in tokens (instead of a trace).")
]
SlotLoadStdOpt = Annotated[
    float | None,
    typer.Option("--slot-load-std", help="σ, std of one slot's load in tokens (with --theta)."),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Model preset name or HF config.json path.")
]
HardwareOpt = Annotated[
    str | None, typer.Option("--hardware", help="Hardware preset name or YAML path.")
]
ProfileOpt = Annotated[
    Path | None, typer.Option("--profile", help="profile.yaml written by `afdsizer calibrate`.")
]
CoeffsOpt = Annotated[
    Path | None,
    typer.Option("--coeffs", help="JSON/YAML file with the six cost coefficients (s, s/token)."),
]
KvDtypeOpt = Annotated[str, typer.Option("--kv-dtype", help="KV cache dtype: bf16 or fp8.")]
AttnGpusOpt = Annotated[int, typer.Option("--attn-gpus", help="GPUs per Attention instance.")]
FfnGpusOpt = Annotated[
    int, typer.Option("--ffn-gpus", help="GPUs per FFN instance (default: one 8-GPU node).")
]


KvDtypeOptional = Annotated[
    str | None, typer.Option("--kv-dtype", help="KV cache dtype: bf16 (default) or fp8.")
]
AttnGpusOptional = Annotated[
    int | None, typer.Option("--attn-gpus", help="g_A, GPUs per Attention instance (default 1).")
]
FfnGpusOptional = Annotated[
    int | None,
    typer.Option("--ffn-gpus", help="g_F, GPUs per FFN instance (default: one 8-GPU node)."),
]
IslOpt = Annotated[
    int | None,
    typer.Option("--isl", help="Fixed prompt length per request, tokens (with --osl)."),
]
OslOpt = Annotated[
    int | None,
    typer.Option("--osl", help="Fixed decode length per request, tokens (with --isl)."),
]
AttnParallelOpt = Annotated[
    str | None,
    typer.Option(
        "--attn-parallel",
        help="Attention instance: 'tp' (one batch over its GPUs) or 'dp' (each GPU its own "
        "batch and a full copy of the attention weights). Default tp.",
    ),
]
FfnParallelOpt = Annotated[
    str | None,
    typer.Option("--ffn-parallel", help="FFN instance: 'ep', 'tp' or 'auto' (EP for MoE)."),
]
MicrobatchesOpt = Annotated[
    int | None,
    typer.Option(
        "--microbatches",
        help="m, microbatches per worker ping-ponging through the layers (default 1: the "
        "paper's free overlap; engines run 2 or 3).",
    ),
]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        help="'overlapped' (ideal overlap) or 'microbatch' (the m·L-stage flow shop; m = 1 is "
        "serial). Default: overlapped for m = 1, microbatch for m >= 2.",
    ),
]
LayersOpt = Annotated[
    int | None,
    typer.Option("--layers", help="L, decoder layers (default: the model's or the profile's)."),
]
WeightDtypeOpt = Annotated[
    str | None,
    typer.Option("--weight-dtype", help="Weight dtype bf16/fp8 (default: the checkpoint's)."),
]
BatchPerGpuOpt = Annotated[
    int | None,
    typer.Option("--batch-per-gpu", help="b, slots per Attention GPU (DP): B = b·GPUs."),
]
TpotP99MsOpt = Annotated[
    float | None,
    typer.Option(
        "--tpot-p99-ms", help="Tail target: 99th percentile of the step time at most this (ms)."
    ),
]
MoeRoutingOpt = Annotated[
    str | None,
    typer.Option(
        "--moe-routing",
        help="Expert loads the MoE kernels are costed at: 'power_law' (default for MoE: what "
        "serving traffic shows) or 'balanced'.",
    ),
]
ObjectiveOpt = Annotated[
    str | None,
    typer.Option(
        "--objective",
        help="Maximise tokens/s per 'gpu' (default), per 'instance' (the paper's), or per "
        "'dollar' (with --price-attn/--price-ffn).",
    ),
]
TpotMsOpt = Annotated[
    float | None,
    typer.Option("--tpot-ms", help="TPOT target: expected step time at most this many ms."),
]

_MS_PER_S = 1e3


def check_workload_options(
    trace: Path | None, theta: float | None, slot_load_std: float | None
) -> None:
    """The workload comes from a trace or from θ and σ together, never both.

    Raises
    ------
    InputError
        ``--theta`` or ``--slot-load-std`` alone, or either with ``--trace``.
    """
    if theta is None and slot_load_std is None:
        return
    if trace is not None:
        raise InputError("--trace excludes --theta/--slot-load-std; give one or the other")
    if theta is None or slot_load_std is None:
        raise InputError(
            "--theta and --slot-load-std go together (θ and σ in tokens; "
            "--slot-load-std 0 ignores the barrier)"
        )


def tpot_target_s(tpot_ms: float | None, *, option: str = "--tpot-ms") -> float | None:
    """A TPOT target in ms as seconds (None when not given).

    Raises
    ------
    InputError
        The target is not a finite number > 0 ms.
    """
    if tpot_ms is None:
        return None
    if not (math.isfinite(tpot_ms) and tpot_ms > 0):
        raise InputError(f"{option} must be a finite number > 0 ms, got {tpot_ms!r}")
    return tpot_ms / _MS_PER_S


def coefficients_from_options(
    *,
    model: str | None,
    hardware: str | None,
    profile: Path | None,
    coeffs: Path | None,
    kv_dtype: str = "bf16",
    attn_gpus: int = DEFAULT_ATTN_GPUS,
    ffn_gpus: int = DEFAULT_FFN_GPUS,
) -> CostCoefficients:
    """Resolve the cost options of a command into :class:`CostCoefficients`.

    ``--coeffs`` wins and excludes ``--model/--hardware/--profile``; otherwise the model and
    hardware presets (defaults :data:`DEFAULT_MODEL`, :data:`DEFAULT_HARDWARE`) go through the
    roofline, or through the fitted ``--profile`` (:func:`afdsizer._sizing.resolve_coefficients`).
    """
    from afdsizer._sizing import resolve_coefficients

    deployment = Deployment(kv_dtype=kv_dtype, attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
    return resolve_coefficients(
        deployment=deployment, model=model, hardware=hardware, profile=profile, coeffs=coeffs
    )


def emit_json(payload: Any) -> None:
    """Print ``payload`` as indented strict JSON on stdout."""
    sys.stdout.write(json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n")
