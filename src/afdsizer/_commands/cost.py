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
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.cost._roofline import LinkKind

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
        ("KV capacity", "unlimited" if cap is None else f"{cap:,.0f} tokens"),
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


def cost(
    model: ModelOpt = None,
    hardware: HardwareOpt = None,
    kv_dtype: KvDtypeOpt = "bf16",
    attn_gpus: AttnGpusOpt = DEFAULT_ATTN_GPUS,
    ffn_gpus: FfnGpusOpt = DEFAULT_FFN_GPUS,
    profile: ProfileOpt = None,
    ffn_hardware: FfnHardwareOpt = None,
    link: LinkOpt = "auto",
    ffn_ingress: FfnIngressOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Per-step cost coefficients (all layers) of a model on hardware: roofline or --profile."""
    from afdsizer.cost import cost_coefficients, load_hardware_spec, load_model_spec

    _check_kv_dtype(kv_dtype)
    if link not in ("auto", "scale-up", "scale-out"):
        raise InputError(f"--link must be auto, scale-up or scale-out, got {link!r}")
    if profile is not None:
        # A profile records what it was fitted for; use that unless told otherwise.
        fitted_model, fitted_hardware = _profile_context(profile)
        model, hardware = model or fitted_model, hardware or fitted_hardware
    spec = load_model_spec(model or DEFAULT_MODEL)
    hw = load_hardware_spec(hardware or DEFAULT_HARDWARE)
    coeffs = cost_coefficients(
        model=spec,
        hardware=hw,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        profile=profile,
        ffn_hardware=ffn_hardware,
        link=cast("LinkKind", link),
        ffn_ingress=ffn_ingress,
    )
    payload: dict[str, Any] = {
        "model": spec.name,
        "hardware": hw.name,
        "ffn_hardware": ffn_hardware or hw.name,
        "kv_dtype": kv_dtype,
        "attn_gpus": attn_gpus,
        "ffn_gpus": ffn_gpus,
        "kv_bytes_per_token": spec.kv_bytes_per_token(kv_dtype),
        **coeffs.to_dict(),
        "attention_weight_bytes": spec.attention_weight_bytes,
        "ffn_weight_bytes": spec.ffn_weight_bytes,
        "attention_flop_per_token": spec.attention_flop_per_token,
        "attention_flop_per_kv_token": spec.attention_flop_per_kv_token,
        "ffn_flop_per_token": spec.ffn_flop_per_token,
        "ffn_weights_fit": spec.ffn_weight_bytes <= ffn_gpus * hw.hbm_capacity_bytes,
        "profile": None if profile is None else str(profile),
    }
    if json_out:
        emit_json(payload)
        return
    rows = [
        ("model / hardware", f"{spec.name} / {hw.name} (kv {kv_dtype})"),
        ("GPUs per instance", f"Attention {attn_gpus}, FFN {ffn_gpus}"),
        ("KV bytes per token", f"{payload['kv_bytes_per_token']:,}"),
        (
            "weights A / F",
            f"{spec.attention_weight_bytes / 2**30:.1f} / {spec.ffn_weight_bytes / 2**30:.1f} GiB",
        ),
        *_coeff_rows(payload),
    ]
    _print_pairs("afdsizer cost (per decode step, all layers)", rows)
    if not payload["ffn_weights_fit"]:
        typer.echo(f"note: FFN weights do not fit in {ffn_gpus} x {hw.name}; use more --ffn-gpus")


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


def calibrate(
    output: OutputOpt,
    silicon: SiliconOpt = None,
    profile_csv: ProfileCsvOpt = None,
    model: ModelOpt = None,
    hardware: Annotated[
        str | None,
        typer.Option(
            "--hardware", help="Hardware for KV capacity (default: named like the silicon folder)."
        ),
    ] = None,
    kv_dtype: KvDtypeOpt = "bf16",
    attn_gpus: AttnGpusOpt = 1,
    ffn_gpus: FfnGpusOpt = 1,
    attention_kernel: KernelOpt = None,
    gemm_kernel: KernelOpt = None,
    moe_kernel: KernelOpt = None,
    gemm_dtype: Annotated[
        str | None, typer.Option(help="GEMM/MoE dtype: bfloat16, fp8, fp8_block.")
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
    """Fit the coefficients to measured kernel tables or a profile CSV; write profile.yaml."""
    from afdsizer.cost._calibrate import calibrate as run_calibration
    from afdsizer.cost._calibrate import write_profile
    from afdsizer.cost._fit import (
        DEFAULT_ATTENTION_BATCH_RANGE,
        DEFAULT_ATTENTION_CONTEXT_RANGE,
        DEFAULT_COMM_BATCH_RANGE,
        CostFitter,
    )
    from afdsizer.cost._roofline import DEFAULT_FFN_TOKENS_RANGE

    _check_kv_dtype(kv_dtype)
    check_output_path(
        output,
        option="--output",
        inputs={"--profile-csv": profile_csv, "--model": model, "--hardware": hardware},
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
    )
    result = run_calibration(
        model=model or DEFAULT_MODEL,
        silicon=silicon,
        profile_csv=profile_csv,
        hardware=hardware,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        fitter=fitter,
        attention_kernel=attention_kernel,
        gemm_kernel=gemm_kernel,
        moe_kernel=moe_kernel,
        gemm_dtype=gemm_dtype,
    )
    write_profile(result, output)
    payload = result.to_dict() | {"profile": str(output)}
    if json_out:
        emit_json(payload)
        return
    fit = result.fit
    rows = [
        ("model / device", f"{result.model} / {result.device}"),
        *_coeff_rows(payload),
        (
            "attention fit",
            f"median {fit['attention_fit_median_rel_error']:.1%}, "
            f"max {fit['attention_fit_max_rel_error']:.1%} ({fit['n_points']['attention']} points)",
        ),
        (
            "FFN fit",
            f"median {fit['ffn_fit_median_rel_error']:.1%}, "
            f"max {fit['ffn_fit_max_rel_error']:.1%} ({fit['n_points']['ffn']} points)",
        ),
        ("communication", result.comm_source),
        ("written", str(output)),
    ]
    _print_pairs("afdsizer calibrate", rows)


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
