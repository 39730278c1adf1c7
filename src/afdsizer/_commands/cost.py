"""`afdsizer cost`, `afdsizer calibrate`, `afdsizer profile`: the cost-model stage's commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from afdsizer._commands._common import (
    DEFAULT_ATTN_GPUS,
    DEFAULT_FFN_GPUS,
    DEFAULT_HARDWARE,
    DEFAULT_MODEL,
    AttnGpusOpt,
    FfnGpusOpt,
    HardwareOpt,
    JsonOpt,
    KvDtypeOpt,
    ModelOpt,
    ProfileOpt,
    emit_json,
    seed_option,
)
from afdsizer._io import check_output_path
from afdsizer.deployment import Deployment as _Deployment
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.cost._roofline import LinkKind
    from afdsizer.deployment import AttnParallel, Deployment, FfnParallel

__all__ = ["register"]

FfnHardwareOpt = Annotated[
    str | None,
    typer.Option("--ffn-hardware", help="FFN-pool hardware preset or YAML (default: --hardware)."),
]
LinkOpt = Annotated[
    str,
    typer.Option(
        "--link",
        help="Attention↔FFN fabric: auto, scale-up or scale-out (auto: scale-up on NVL72).",
    ),
]
FfnIngressOpt = Annotated[
    bool, typer.Option("--ffn-ingress", help="Charge the FFN side's ingress as γ_C (grows with r).")
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write.")]
SiliconOpt = Annotated[
    Path | None,
    typer.Option("--silicon", help="One GPU folder of the aiconfigurator silicon layout."),
]
ProfileCsvOpt = Annotated[
    Path | None, typer.Option("--profile-csv", help="CSV written by `afdsizer profile`.")
]
AttnParallelOpt = Annotated[
    str,
    typer.Option(
        "--attn-parallel",
        help="Attention instance: tp (heads split, one batch) or dp (each GPU its own batch).",
    ),
]
FfnParallelOpt = Annotated[
    str,
    typer.Option("--ffn-parallel", help="FFN instance: ep, tp or auto (EP for MoE, TP dense)."),
]
WeightDtypeOpt = Annotated[
    str | None,
    typer.Option("--weight-dtype", help="Weights: bf16, fp16 or fp8 (default: the checkpoint's)."),
]
ContextTokensOpt = Annotated[
    float | None,
    typer.Option(
        "--context-tokens", help="KV tokens per slot: also report the largest batch that fits."
    ),
]
_DEFAULTS = _Deployment()
"""Defaults of the deployment flags come from Deployment, the one place they live."""
KernelOpt = Annotated[str | None, typer.Option(help="kernel_source filter (default: busiest).")]


def register(app: typer.Typer) -> None:
    """Register ``cost``, ``calibrate`` and ``profile`` on ``app``."""
    app.command("cost")(cost)
    app.command("calibrate")(calibrate)
    app.command("profile")(profile)


def _check_kv_dtype(kv_dtype: str) -> None:
    from afdsizer.cost import KV_DTYPE_BYTES

    if kv_dtype not in KV_DTYPE_BYTES:
        raise InputError(f"--kv-dtype must be one of {', '.join(KV_DTYPE_BYTES)}, got {kv_dtype!r}")


def _print_pairs(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


def _coeff_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    cap = d.get("kv_capacity_tokens")
    return [
        ("α_A  attention fixed", f"{d['alpha_attn_s'] * 1e3:.4g} ms"),
        ("β_A  per KV token", f"{d['beta_attn_s_per_token'] * 1e9:.4g} ns"),
        ("α_C  communication fixed", f"{d['alpha_comm_s'] * 1e3:.4g} ms"),
        ("β_C  per token of B", f"{d['beta_comm_s_per_token'] * 1e6:.4g} µs"),
        ("γ_C  per token of r·B", f"{d['gamma_comm_s_per_token'] * 1e6:.4g} µs"),
        ("α_F  FFN fixed", f"{d['alpha_ffn_s'] * 1e3:.4g} ms"),
        ("β_F  per token of r·B", f"{d['beta_ffn_s_per_token'] * 1e6:.4g} µs"),
        ("KV capacity per worker", "unlimited" if cap is None else f"{cap:,.0f} tokens"),
        ("source", str(d.get("source", ""))),
    ]


def _profile_context(profile: Path) -> tuple[str | None, str | None]:
    """Model and hardware a profile.yaml names, when they still resolve here."""
    import yaml

    from afdsizer._io import read_text_file
    from afdsizer._yaml import safe_load
    from afdsizer.cost import HARDWARE_PRESETS, MODEL_PRESETS

    try:
        data = safe_load(read_text_file(profile))
    except (OSError, yaml.YAMLError):
        return None, None  # load_coefficients reports the problem
    if not isinstance(data, dict):
        return None, None
    model, hardware = data.get("model"), data.get("hardware")
    model_ok = isinstance(model, str) and (model in MODEL_PRESETS or Path(model).is_file())
    hardware_ok = isinstance(hardware, str) and hardware in HARDWARE_PRESETS
    return (model if model_ok else None), (hardware if hardware_ok else None)


def _deployment_from_options(
    kv_dtype: str,
    attn_gpus: int,
    ffn_gpus: int,
    attn_parallel: str,
    ffn_parallel: str,
    weight_dtype: str | None,
) -> Deployment:
    """The cost command's deployment flags as a :class:`Deployment` (option names in errors)."""
    from afdsizer.deployment import Deployment

    _check_kv_dtype(kv_dtype)
    for option, value, allowed in (
        ("--attn-parallel", attn_parallel, ("tp", "dp")),
        ("--ffn-parallel", ffn_parallel, ("auto", "ep", "tp")),
        ("--weight-dtype", weight_dtype, (None, "bf16", "fp16", "fp8")),
    ):
        if value not in allowed:
            names = ", ".join(a for a in allowed if a)
            raise InputError(f"{option} must be one of {names}, got {value!r}")
    return Deployment(
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        attn_parallel=cast("AttnParallel", attn_parallel),
        ffn_parallel=cast("FfnParallel", ffn_parallel),
        kv_dtype=kv_dtype,
        weight_dtype=weight_dtype,
    )


def _cost_rows(payload: dict[str, Any]) -> list[tuple[str, str]]:
    gb = 1e9
    precision = payload["weight_dtype"] + (
        f" ({payload['quantization']})" if payload["quantization"] else ""
    )
    worker = "per GPU (DP)" if payload["attn_parallel"] == "dp" else "per instance (TP)"
    return [
        ("model / hardware", f"{payload['model']} / {payload['hardware']}"),
        ("weights / KV cache", f"{precision} / {payload['kv_dtype']}"),
        ("layers", str(payload["layers"])),
        (
            "GPUs per instance",
            f"Attention {payload['attn_gpus']} {payload['attn_parallel']}, "
            f"FFN {payload['ffn_gpus']} {payload['ffn_parallel']}",
        ),
        ("coefficients describe", f"one Attention worker, {worker}"),
        ("KV bytes per token", f"{payload['kv_bytes_per_token']:,}"),
        (
            "Attention GPU memory",
            f"weights {payload['attn_weight_bytes_per_gpu'] / gb:.1f} GB of "
            f"{payload['attn_usable_bytes_per_gpu'] / gb:.1f} GB usable",
        ),
        (
            "FFN GPU memory",
            f"weights {payload['ffn_weight_bytes_per_gpu'] / gb:.1f} GB + activations "
            f"{payload['ffn_activation_bytes_per_gpu'] / gb:.2f} GB of "
            f"{payload['ffn_usable_bytes_per_gpu'] / gb:.1f} GB usable",
        ),
    ]


def cost(
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    kv_dtype: KvDtypeOpt = _DEFAULTS.kv_dtype,
    attn_gpus: AttnGpusOpt = DEFAULT_ATTN_GPUS,
    ffn_gpus: FfnGpusOpt = DEFAULT_FFN_GPUS,
    attn_parallel: AttnParallelOpt = _DEFAULTS.attn_parallel,
    ffn_parallel: FfnParallelOpt = _DEFAULTS.ffn_parallel,
    weight_dtype: WeightDtypeOpt = _DEFAULTS.weight_dtype,
    context_tokens: ContextTokensOpt = None,
    profile: ProfileOpt = None,
    ffn_hardware: FfnHardwareOpt = None,
    link: LinkOpt = "auto",
    ffn_ingress: FfnIngressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Per-step cost coefficients (all layers) of a model on a deployment: roofline or --profile."""
    from afdsizer.cost import (
        cost_coefficients,
        load_hardware_spec,
        load_model_spec,
        max_batch_per_worker,
        roofline_memory,
    )

    deployment = _deployment_from_options(
        kv_dtype, attn_gpus, ffn_gpus, attn_parallel, ffn_parallel, weight_dtype
    )
    if link not in ("auto", "scale-up", "scale-out"):
        raise InputError(f"--link must be auto, scale-up or scale-out, got {link!r}")
    if context_tokens is not None and not context_tokens > 0:
        raise InputError(f"--context-tokens must be > 0 tokens, got {context_tokens!r}")
    if profile is not None:
        # A profile records what it was fitted for; use that unless told otherwise.
        fitted_model, fitted_hardware = _profile_context(profile)
        model, hardware = model or fitted_model, hardware or fitted_hardware
    spec = load_model_spec(model or DEFAULT_MODEL).with_weight_dtype(weight_dtype)
    hw = load_hardware_spec(hardware or DEFAULT_HARDWARE)
    fhw = load_hardware_spec(ffn_hardware) if ffn_hardware is not None else None
    memory = roofline_memory(spec, hw, deployment, ffn_hardware=fhw)
    coeffs = cost_coefficients(
        model=spec,
        hardware=hw,
        deployment=deployment,
        profile=profile,
        ffn_hardware=fhw,
        link=cast("LinkKind", link),
        ffn_ingress=ffn_ingress,
    )
    payload: dict[str, Any] = {
        "model": spec.name,
        "hardware": hw.name,
        "ffn_hardware": fhw.name if fhw is not None else hw.name,
        "weight_dtype": spec.weight_dtype,
        "quantization": spec.quantization,
        "activation_scheme": spec.activation_scheme,
        "kv_dtype": kv_dtype,
        "attn_gpus": attn_gpus,
        "ffn_gpus": ffn_gpus,
        "kv_bytes_per_token": spec.kv_bytes_per_token(kv_dtype),
        **memory.to_dict(),
        **coeffs.to_dict(),
        "attention_weight_bytes": spec.attention_weight_bytes,
        "ffn_weight_bytes": spec.ffn_weight_bytes,
        "attention_flop_per_token": spec.attention_flop_per_token,
        "attention_flop_per_kv_token": spec.attention_flop_per_kv_token,
        "ffn_flop_per_token": spec.ffn_flop_per_token,
        "ffn_weights_fit": True,  # weights that do not fit are refused above
        "context_tokens": context_tokens,
        "max_batch_per_worker": None
        if context_tokens is None
        else max_batch_per_worker(coeffs.kv_capacity_tokens, context_tokens),
        "profile": None if profile is None else str(profile),
    }
    if json_out:
        emit_json(payload)
        return
    rows = [*_cost_rows(payload), *_coeff_rows(payload)]
    if context_tokens is not None:
        rows.append(
            (f"largest batch per worker at {context_tokens:,.0f} KV tokens/slot",
             str(payload["max_batch_per_worker"]))
        )  # fmt: skip
    _print_pairs("afdsizer cost (per decode step, all layers; α per pass)", rows)


def _parse_range(
    text: str | None, option: str, default: tuple[float, float]
) -> tuple[float, float]:
    if text is None:
        return default
    try:
        lo, hi = (float(p) for p in text.split(":"))
    except ValueError:
        raise InputError(f"{option} must be LOW:HIGH (two numbers), got {text!r}") from None
    return lo, hi


def _calibration_rows(result: Any, output: Path) -> list[tuple[str, str]]:
    rows = [("model / device", f"{result.model} / {result.device}")]
    rows += _coeff_rows(result.to_dict())
    for fit in result.fits:
        err = fit["median_rel_error"]
        ratio = fit["ratio_to_roofline"] or {}
        ratio_txt = ", ".join(f"{v:.2g}x" for v in ratio.values()) or "-"
        rng = "; ".join(f"{k} {v[0]:,.0f}-{v[1]:,.0f}" for k, v in fit["fitted_range"].items())
        candidates = len(fit.get("kernel_candidates") or [])
        chosen = f", fastest of {candidates}" if fit.get("kernel_choice") == "fastest" else ""
        rows.append(
            (
                f"{fit['part']} fit",
                f"{fit['kernel_source']} ({fit['dtype']}{chosen}), {fit['rows']} rows, {rng}, "
                + ("" if err is None else f"median {err:.1%}, max {fit['max_rel_error']:.1%}, ")
                + f"vs roofline {ratio_txt}",
            )
        )
    rows += [("communication", result.comm_source), ("written", str(output))]
    return rows


DtypeOpt = Annotated[str | None, typer.Option(help="Table dtype: bfloat16, fp8, fp8_block.")]


def calibrate(
    output: OutputOpt,
    silicon: SiliconOpt = None,
    profile_csv: ProfileCsvOpt = None,
    model: ModelOpt = None,
    hardware: Annotated[
        str | None,
        typer.Option(
            "--hardware",
            help="Hardware for KV capacity and the roofline check (default: named like --silicon).",
        ),
    ] = None,
    kv_dtype: KvDtypeOpt = "bf16",
    attn_gpus: AttnGpusOpt = DEFAULT_ATTN_GPUS,
    ffn_gpus: FfnGpusOpt = DEFAULT_FFN_GPUS,
    attn_parallel: Annotated[
        str, typer.Option(help="Attention instance: tp (heads split) or dp (one worker per GPU).")
    ] = "tp",
    ffn_parallel: Annotated[
        str, typer.Option(help="FFN instance: auto (EP for MoE), ep or tp.")
    ] = "auto",
    weight_dtype: WeightDtypeOpt = None,
    attention_kernel: KernelOpt = None,
    attn_gemm_dtype: DtypeOpt = None,
    attn_gemm_kernel: KernelOpt = None,
    moe_kernel: KernelOpt = None,
    moe_dtype: DtypeOpt = None,
    ffn_gemm_dtype: DtypeOpt = None,
    ffn_gemm_kernel: KernelOpt = None,
    moe_routing: Annotated[
        str,
        typer.Option(
            help="MoE rows: auto (power law, as the roofline), balanced, power_law "
            "(=power_law_1.2), power_law_1.01."
        ),
    ] = "auto",
    moe_rows: Annotated[
        str,
        typer.Option(help="Under EP: auto, scaled (1-GPU rows moved to a rank) or measured."),
    ] = "auto",
    comm_op: Annotated[str, typer.Option(help="NCCL op standing for A<->F traffic.")] = "alltoall",
    comm_gpus: Annotated[
        int | None, typer.Option(help="GPU count of the NCCL rows (default: <= attn+ffn GPUs).")
    ] = None,
    ffn_ingress: FfnIngressOpt = False,
    ffn_tokens: Annotated[
        float | None,
        typer.Option(help="Operating point N = r·B: α_F, β_F are the FFN curve's secant there."),
    ] = None,
    batch_range: Annotated[
        str | None, typer.Option(help="Attention batch B fitted, LOW:HIGH (default 16:256).")
    ] = None,
    context_range: Annotated[
        str | None,
        typer.Option(help="KV tokens per request fitted, LOW:HIGH (default 256:32768)."),
    ] = None,
    ffn_range: Annotated[
        str | None, typer.Option(help="FFN tokens N = r·B fitted, LOW:HIGH (default 128:4096).")
    ] = None,
    comm_range: Annotated[
        str | None, typer.Option(help="Communication batch B fitted, LOW:HIGH (default 8:512).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit the coefficients per part to measured tables or a profile CSV; write profile.yaml."""
    from afdsizer.cost._calibrate import calibrate as run_calibration
    from afdsizer.cost._calibrate import write_profile
    from afdsizer.cost._fit import (
        DEFAULT_ATTENTION_BATCH_RANGE,
        DEFAULT_ATTENTION_CONTEXT_RANGE,
        DEFAULT_COMM_BATCH_RANGE,
        CostFitter,
    )
    from afdsizer.cost._roofline import DEFAULT_FFN_TOKENS_RANGE

    check_output_path(
        output,
        option="--output",
        inputs={"--profile-csv": profile_csv, "--model": model, "--hardware": hardware},
    )
    # The served precision selects the per-part rows (a bf16 checkpoint served FP8: fp8 rows).
    deployment = _deployment_from_options(
        kv_dtype, attn_gpus, ffn_gpus, attn_parallel, ffn_parallel, weight_dtype
    )
    fitter = CostFitter(
        attention_batch_range=_parse_range(
            batch_range, "--batch-range", DEFAULT_ATTENTION_BATCH_RANGE
        ),
        attention_context_range=_parse_range(
            context_range, "--context-range", DEFAULT_ATTENTION_CONTEXT_RANGE
        ),
        ffn_tokens_range=_parse_range(ffn_range, "--ffn-range", DEFAULT_FFN_TOKENS_RANGE),
        comm_batch_range=_parse_range(comm_range, "--comm-range", DEFAULT_COMM_BATCH_RANGE),
        ffn_operating_tokens=ffn_tokens,
    )
    result = run_calibration(
        model=model or DEFAULT_MODEL,
        silicon=silicon,
        profile_csv=profile_csv,
        hardware=hardware,
        deployment=deployment,
        fitter=fitter,
        attention_kernel=attention_kernel,
        attn_gemm_dtype=attn_gemm_dtype,
        attn_gemm_kernel=attn_gemm_kernel,
        moe_kernel=moe_kernel,
        moe_dtype=moe_dtype,
        ffn_gemm_dtype=ffn_gemm_dtype,
        ffn_gemm_kernel=ffn_gemm_kernel,
        moe_routing=moe_routing,
        moe_rows=moe_rows,
        comm_op=comm_op,
        comm_gpus=comm_gpus,
        ffn_ingress=ffn_ingress,
    )
    write_profile(result, output)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    payload = result.to_dict() | {"profile": str(output)}
    if json_out:
        emit_json(payload)
        return
    _print_pairs("afdsizer calibrate", _calibration_rows(result, output))


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{option} must list integers >= 1, got {text!r}")
    return values


def profile(
    output: OutputOpt,
    model: ModelOpt = None,
    batch_sizes: Annotated[
        str, typer.Option(help="Attention batch sizes B, comma-separated.")
    ] = "1,8,32,128",
    context_tokens: Annotated[
        str, typer.Option(help="KV tokens per request s, comma-separated.")
    ] = "256,1024,4096",
    ffn_tokens: Annotated[
        str, typer.Option(help="FFN batch sizes N, comma-separated.")
    ] = "16,64,256,1024,4096",
    attn_gpus: AttnGpusOpt = 1,
    ffn_gpus: FfnGpusOpt = 1,
    device: Annotated[str, typer.Option(help="torch device: auto, cpu, cuda, cuda:1.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU) or torch dtype.")] = (
        "auto"
    ),
    warmup: Annotated[int, typer.Option(help="Untimed runs per point.")] = 2,
    repeats: Annotated[int, typer.Option(help="Timed runs per point (median kept).")] = 5,
    seed: Annotated[int, seed_option("Seed of weights, caches and routing.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Time decode attention and FFN layers on the local device (torch); write the profile CSV."""
    from afdsizer.cost import load_model_spec
    from afdsizer.cost._profile_csv import write_profile_csv
    from afdsizer.cost._profiler import profile_model

    check_output_path(output, option="--output", inputs={"--model": model})
    spec = load_model_spec(model or DEFAULT_MODEL)
    rows = profile_model(
        spec,
        batch_sizes=_int_list(batch_sizes, "--batch-sizes"),
        context_tokens=_int_list(context_tokens, "--context-tokens"),
        ffn_tokens=_int_list(ffn_tokens, "--ffn-tokens"),
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        device=device,
        dtype=dtype,
        warmup=warmup,
        repeats=repeats,
        seed=seed,
    )
    write_profile_csv(rows, output)
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    payload = {
        "output": str(output),
        "model": spec.name,
        "device": rows[0]["device"] if rows else device,
        "dtype": rows[0]["dtype"] if rows else dtype,
        "rows": len(rows),
        "rows_by_kind": kinds,
    }
    if json_out:
        emit_json(payload)
    else:
        typer.echo(f"wrote {len(rows)} rows ({kinds}) on {payload['device']} to {output}")
