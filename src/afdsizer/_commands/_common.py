"""Options and input resolution shared by several commands (size, simulate, report, validate).

A command takes its workload from ``--trace`` (default: the bundled sample) or from
``--theta/--slot-load-std``, and its cost coefficients from ``--coeffs FILE``, or
``--profile FILE``, or ``--model/--hardware`` (roofline presets). These helpers turn the options
into plain values; the commands call the public API with them.
"""

from __future__ import annotations

import json
import math
import re
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
    "MAX_BATCH",
    "MAX_SEED",
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
    "MaxHoursOpt",
    "MaxMemoryGbOpt",
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
    "seed_option",
    "tpot_target_s",
    "unsigned_zero",
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
MAX_BATCH = 2**31 - 1
"""Largest B, slots per Attention instance, a command accepts: r·B·θ must stay far inside int64."""
MAX_SEED = 2**63 - 1
"""Largest seed: every seed feeds numpy's SeedSequence, which takes 0 <= seed < 2**63 here."""


def seed_option(help_text: str, name: str = "--seed") -> Any:
    """A ``--seed`` option limited to 0 … 2**63 − 1, so a bad seed is a usage error, not numpy's."""
    return typer.Option(name, min=0, max=MAX_SEED, help=help_text)


MaxMemoryGbOpt = Annotated[
    float | None,
    typer.Option(
        "--max-memory-gb",
        help="Refuse runs estimated to need more memory, GiB (default: 80% of this machine's).",
    ),
]
MaxHoursOpt = Annotated[
    float | None,
    typer.Option("--max-hours", help="Refuse runs estimated to take longer, hours (default 24)."),
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


_NEGATIVE_ZERO = re.compile(r"(?<![\w.])-(0(?:\.0+)?)(?![\d.])")


def unsigned_zero(text: str) -> str:
    """Drop the sign of every number in ``text`` that rounds to zero: ``-0.0%`` → ``0.0%``.

    A float a hair below zero (an idle fraction of -1e-17, say) formats as ``-0.0``, which
    reads as a real negative figure. Table cells go through this before printing.

    Examples
    --------
    >>> unsigned_zero("idle -0.0%, Δ (-0.00), -0.03, x-0.0")
    'idle 0.0%, Δ (0.00), -0.03, x-0.0'
    """
    return _NEGATIVE_ZERO.sub(r"\1", text)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as indented strict JSON on stdout."""
    sys.stdout.write(json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n")
