"""Public entry points of the cost stage: coefficients from presets, files or a fitted profile."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from afdsizer._io import read_text_file
from afdsizer._yaml import safe_load
from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._hardware import HardwareSpec, load_hardware_spec
from afdsizer.cost._model import ModelSpec, load_model_spec
from afdsizer.cost._roofline import (
    DEFAULT_FFN_TOKENS_RANGE,
    LinkKind,
    RooflineEfficiency,
    kv_capacity_tokens,
    roofline_coefficients,
)
from afdsizer.errors import DataFileError, InputError

__all__ = ["cost_coefficients", "load_coefficients"]


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = read_text_file(path)
    except OSError as exc:
        reason = exc.strerror or exc
        raise DataFileError(f"cannot read coefficients file {path}: {reason}") from None
    try:
        # YAML 1.2 is a superset of JSON, but JSON files get the JSON parser's clearer errors.
        data = json.loads(text) if path.suffix == ".json" else safe_load(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"{path} is not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise DataFileError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of coefficients, got {type(data).__name__}")
    return data


def load_coefficients(path: str | Path) -> CostCoefficients:
    """Read the six coefficients from a JSON or YAML file, or from a ``profile.yaml``.

    A plain file holds the keys of :data:`COEFFICIENT_KEYS` at top level (optionally
    ``gamma_comm_s_per_token``, ``kv_capacity_tokens``); a profile written by
    ``afdsizer calibrate`` holds them under ``coefficients``.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed.
    InputError
        A key is missing or a value is not a positive number.
    """
    path = Path(path)
    data = _read_mapping(path)
    if isinstance(data.get("coefficients"), dict):
        data = data["coefficients"]
    return CostCoefficients.from_mapping(data, source=str(path))


def cost_coefficients(
    *,
    model: str | Path | ModelSpec,
    hardware: str | Path | HardwareSpec,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    profile: str | Path | None = None,
    ffn_hardware: str | Path | HardwareSpec | None = None,
    link: LinkKind = "auto",
    ffn_ingress: bool = False,
    efficiency: RooflineEfficiency | None = None,
    ffn_tokens_range: tuple[int, int] = DEFAULT_FFN_TOKENS_RANGE,
) -> CostCoefficients:
    """Per-step cost coefficients for a model on some hardware (DESIGN.md §2, §5).

    Without ``profile`` the roofline gives them (:func:`roofline_coefficients` explains each
    term). With ``profile`` (a ``profile.yaml`` from ``afdsizer calibrate``) the fitted
    coefficients are returned as fitted; ``model``/``hardware`` then only supply the KV capacity
    when the profile has none.

    Parameters
    ----------
    model : str, path or ModelSpec
        Preset name (``llama-3.1-70b``, ``deepseek-v3``, ...) or HF config.json path.
    hardware : str, path or HardwareSpec
        Preset name (``h100-sxm``, ``h200``, ...) or YAML path; the Attention side's GPU.
    kv_dtype : {"bf16", "fp8"}, default "bf16"
        KV-cache dtype.
    attn_gpus, ffn_gpus : int, default 1
        GPUs per Attention / FFN instance.
    profile : path, optional
        Fitted profile; replaces the roofline.
    ffn_hardware : str, path or HardwareSpec, optional
        FFN-side GPU if different from ``hardware``.
    link : {"auto", "scale-up", "scale-out"}, default "auto"
        Fabric between the pools (auto: scale-up only on rack-scale domains such as GB200 NVL72).
    ffn_ingress : bool, default False
        Charge the FFN side's ingress as γ_C (0 in the paper's first version).
    efficiency : RooflineEfficiency, optional
        Efficiency factors of the roofline.
    ffn_tokens_range : (int, int), default (128, 4096)
        Range of FFN batch sizes N = r·B over which t_F is linearised, tokens.

    Returns
    -------
    CostCoefficients
        α_A, β_A, α_C, β_C, α_F, β_F (s, s/token; all layers), γ_C, KV capacity (tokens).

    Raises
    ------
    InputError
        Unknown model or hardware (the message lists the presets), bad option values, or
        Attention-side weights that do not fit.

    Examples
    --------
    >>> c = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm")
    >>> c.alpha_attn_s > 0 and c.beta_ffn_s_per_token > 0
    True
    """
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    hw = hardware if isinstance(hardware, HardwareSpec) else load_hardware_spec(hardware)
    fhw: HardwareSpec | None = None
    if ffn_hardware is not None:
        fhw = (
            ffn_hardware
            if isinstance(ffn_hardware, HardwareSpec)
            else load_hardware_spec(ffn_hardware)
        )
    if profile is not None:
        fitted = load_coefficients(profile)
        if fitted.kv_capacity_tokens is None:
            cap = kv_capacity_tokens(
                spec, hw, kv_dtype=kv_dtype, attn_gpus=attn_gpus, efficiency=efficiency
            )
            fitted = dataclasses.replace(fitted, kv_capacity_tokens=cap)
        return fitted
    return roofline_coefficients(
        spec,
        hw,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        ffn_hardware=fhw,
        link=link,
        ffn_ingress=ffn_ingress,
        efficiency=efficiency,
        ffn_tokens_range=ffn_tokens_range,
    )
