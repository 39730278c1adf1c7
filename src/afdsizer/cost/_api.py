"""Public entry points of the cost stage: coefficients from presets, files or a fitted profile."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
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
    resolve_deployment,
    roofline_coefficients,
)
from afdsizer.deployment import Deployment
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
    ``gamma_comm_s_per_token``, ``kv_capacity_tokens``, ``layers``); a profile written by
    ``afdsizer calibrate`` holds them under ``coefficients``.

    Raises
    ------
    DataFileError
        The file cannot be read or parsed.
    InputError
        A key is missing or a value is not a positive number.
    """
    path = Path(path)
    return _coefficients_of(_read_mapping(path), source=str(path))


def _coefficients_of(data: Mapping[str, Any], *, source: str) -> CostCoefficients:
    """The coefficients of a parsed file: at top level, or under a profile's ``coefficients``."""
    if isinstance(data.get("coefficients"), dict):
        data = data["coefficients"]
    return CostCoefficients.from_mapping(dict(data), source=source)


def cost_coefficients(
    *,
    model: str | Path | ModelSpec,
    hardware: str | Path | HardwareSpec,
    deployment: Deployment | None = None,
    kv_dtype: str | None = None,
    attn_gpus: int | None = None,
    ffn_gpus: int | None = None,
    profile: str | Path | None = None,
    profile_doc: Mapping[str, Any] | None = None,
    ffn_hardware: str | Path | HardwareSpec | None = None,
    link: LinkKind = "auto",
    ffn_ingress: bool = False,
    efficiency: RooflineEfficiency | None = None,
    ffn_tokens_range: tuple[int, int] = DEFAULT_FFN_TOKENS_RANGE,
    moe_routing: str | None = None,
    slot_context_tokens: float | None = None,
) -> CostCoefficients:
    """Per-step cost coefficients of a model on some hardware and deployment (design §5, §9).

    Without ``profile`` the roofline gives them (:func:`roofline_coefficients` explains each
    term). With ``profile`` (a ``profile.yaml`` from ``afdsizer calibrate``) the fitted
    coefficients are returned as fitted; ``model``/``hardware``/``deployment`` then only supply
    the KV capacity and the layers when the profile has none.

    Parameters
    ----------
    model : str, path or ModelSpec
        Preset name (``llama-3.1-70b``, ``qwen3-235b-a22b-fp8``, ...) or HF config.json path.
    hardware : str, path or HardwareSpec
        Preset name (``h100-sxm``, ``h200``, ...) or YAML path; the Attention side's GPU.
    deployment : Deployment, optional
        GPUs and parallelism per side, KV dtype, weight dtype (None: the checkpoint's); every
        default comes from :class:`~afdsizer.deployment.Deployment`. Under DP attention the
        coefficients describe one GPU (one barrier worker), under TP one instance.
    kv_dtype, attn_gpus, ffn_gpus : optional
        Older keywords for the deployment's fields; they must agree with ``deployment``.
    profile : path, optional
        Fitted profile; replaces the roofline.
    profile_doc : mapping, optional
        ``profile`` as :func:`load_profile` already parsed it (not read again).
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
    moe_routing : {"balanced", "power_law"}, optional
        Expert-load law of the MoE kernels; default power law, aiconfigurator's choice for
        every MoE family (Qwen3 α = 1.2, DeepSeek and others 1.01).
    slot_context_tokens : float, optional
        θ, mean KV tokens per slot (e.g. ``Workload.theta_tokens``): the per-slot Attention
        work is folded into β_A as δ_A/θ; without it, left out.

    Returns
    -------
    CostCoefficients
        α_A, β_A, α_C, β_C, α_F, β_F (s, s/token; all layers; α per pass), γ_C, KV capacity
        per worker (tokens), layers.

    Raises
    ------
    InputError
        Unknown model or hardware (the message lists the presets), bad option values, or
        weights that do not fit a GPU of their side.

    Examples
    --------
    >>> c = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm")
    >>> c.alpha_attn_s > 0 and c.beta_ffn_s_per_token > 0, c.layers
    (True, 80)
    >>> dp = Deployment(attn_gpus=4, attn_parallel="dp", ffn_gpus=8, kv_dtype="fp8")
    >>> cost_coefficients(model="qwen3-235b-a22b-fp8", hardware="h200", deployment=dp).layers
    94
    """
    dep = resolve_deployment(deployment, kv_dtype=kv_dtype, attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
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
        fitted = (
            load_coefficients(profile)
            if profile_doc is None
            else _coefficients_of(profile_doc, source=str(profile))
        )
        if fitted.kv_capacity_tokens is None:
            cap = kv_capacity_tokens(spec, hw, efficiency=efficiency, deployment=dep)
            fitted = dataclasses.replace(fitted, kv_capacity_tokens=cap)
        if fitted.layers is None:
            fitted = dataclasses.replace(fitted, layers=spec.num_layers)
        return fitted
    return roofline_coefficients(
        spec,
        hw,
        deployment=dep,
        ffn_hardware=fhw,
        link=link,
        ffn_ingress=ffn_ingress,
        efficiency=efficiency,
        ffn_tokens_range=ffn_tokens_range,
        moe_routing=moe_routing,
        slot_context_tokens=slot_context_tokens,
    )
