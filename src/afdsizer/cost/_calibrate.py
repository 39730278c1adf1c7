"""Calibration: fit the coefficients to measured tables and write a reusable ``profile.yaml``.

Two sources of measurements: the aiconfigurator silicon layout (:func:`read_silicon`, one GPU
folder) and afdsizer's own profile CSV (:func:`read_profile_csv`, written by ``afdsizer
profile``). The CSV has no communication points; its α_C, β_C come from the roofline of the
given hardware, and the profile says so (``comm_source``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from afdsizer._io import atomic_write_text
from afdsizer._yaml import safe_dump
from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._hardware import HARDWARE_PRESETS, HardwareSpec, load_hardware_spec
from afdsizer.cost._model import ModelSpec, load_model_spec
from afdsizer.cost._profile_csv import read_profile_csv
from afdsizer.cost._roofline import kv_capacity_tokens, roofline_coefficients
from afdsizer.cost._silicon import read_silicon
from afdsizer.errors import InputError

__all__ = ["PROFILE_FORMAT_VERSION", "CalibrationResult", "calibrate", "write_profile"]

PROFILE_FORMAT_VERSION = 1
"""Value of the ``afdsizer_profile`` key of a profile.yaml."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationResult:
    """Fitted coefficients with the fit's quality and what it was fitted on.

    Parameters
    ----------
    coefficients : CostCoefficients
        The fitted α, β (s, s/token; per decode step, all layers) and KV capacity.
    model : str
        Model preset or config path.
    device : str
        GPU the measurements come from.
    source : str
        Silicon folder or profile CSV.
    kv_dtype : str
        KV-cache dtype.
    attn_gpus, ffn_gpus : int
        GPUs per Attention / FFN instance the tables were selected for.
    hardware : str or None
        Hardware spec used for the KV capacity (and the CSV's communication), if any.
    comm_source : str
        ``measured`` or the roofline the communication terms come from.
    fit : dict
        :meth:`CostFitter.fit_report`: median/max relative errors, points, ranges fitted.
    filters : dict
        Kernel and dtype filters applied to each table.
    """

    coefficients: CostCoefficients
    model: str
    device: str
    source: str
    kv_dtype: str
    attn_gpus: int
    ffn_gpus: int
    hardware: str | None
    comm_source: str
    fit: dict[str, Any]
    filters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Flat summary (the ``calibrate --json`` payload): coefficients, fit errors, context."""
        out: dict[str, Any] = self.coefficients.to_dict()
        out.update(self.fit)
        out.update(
            model=self.model,
            device=self.device,
            measured_from=self.source,
            kv_dtype=self.kv_dtype,
            attn_gpus=self.attn_gpus,
            ffn_gpus=self.ffn_gpus,
            hardware=self.hardware,
            comm_source=self.comm_source,
            filters=self.filters,
        )
        return out


def _hardware_for_folder(folder: Path) -> str | None:
    """Hardware preset named like a silicon folder (h100_sxm -> h100-sxm, h200_sxm -> h200)."""
    name = folder.name.lower()
    for candidate in (name.replace("_", "-"), name.removesuffix("_sxm").replace("_", "-")):
        if candidate in HARDWARE_PRESETS:
            return candidate
    return None


def calibrate(
    *,
    model: str | Path | ModelSpec,
    silicon: str | Path | None = None,
    profile_csv: str | Path | None = None,
    hardware: str | Path | HardwareSpec | None = None,
    kv_dtype: str = "bf16",
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    fitter: CostFitter | None = None,
    attention_kernel: str | None = None,
    gemm_kernel: str | None = None,
    moe_kernel: str | None = None,
    gemm_dtype: str | None = None,
) -> CalibrationResult:
    """Fit the six coefficients of ``model`` to measured timings.

    Parameters
    ----------
    model : str, path or ModelSpec
        Preset name or HF config.json.
    silicon : path, optional
        One GPU folder of the aiconfigurator layout (exactly one of ``silicon``/``profile_csv``).
    profile_csv : path, optional
        CSV written by ``afdsizer profile``.
    hardware : str, path or HardwareSpec, optional
        For the KV capacity (and the CSV's communication). Default: the preset named like the
        silicon folder, if any; required with ``profile_csv``.
    kv_dtype : {"bf16", "fp8"}
        KV-cache dtype (selects rows; sets KV bytes).
    attn_gpus, ffn_gpus : int
        Tensor parallelism of Attention; tp·ep of FFN.
    fitter : CostFitter, optional
        Operating ranges; default :class:`CostFitter()`.
    attention_kernel, gemm_kernel, moe_kernel, gemm_dtype : str, optional
        Table filters (default: busiest kernel; dtype from the checkpoint).

    Raises
    ------
    InputError
        Not exactly one source, no rows match, too few points in a range.
    DataFileError
        Missing or unreadable tables.
    """
    if (silicon is None) == (profile_csv is None):
        raise InputError("give exactly one of --silicon DIR or --profile-csv FILE")
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    hw: HardwareSpec | None = None
    if isinstance(hardware, HardwareSpec):
        hw = hardware
    elif hardware is not None:
        hw = load_hardware_spec(hardware)
    elif silicon is not None and (guess := _hardware_for_folder(Path(silicon))) is not None:
        hw = HardwareSpec.from_preset(guess)
    fitter = fitter or CostFitter()

    comm: CostCoefficients | None = None
    if silicon is not None:
        meas = read_silicon(
            silicon,
            spec,
            kv_dtype=kv_dtype,
            attn_gpus=attn_gpus,
            ffn_gpus=ffn_gpus,
            attention_kernel=attention_kernel,
            gemm_kernel=gemm_kernel,
            moe_kernel=moe_kernel,
            gemm_dtype=gemm_dtype,
        )
        source = str(silicon)
        comm_source = "measured (NCCL table)"
    else:
        assert profile_csv is not None
        if hw is None:
            raise InputError(
                "--profile-csv has no communication timings: give --hardware for the roofline ones"
            )
        meas = read_profile_csv(profile_csv, spec)
        source = str(profile_csv)
        comm = roofline_coefficients(
            spec, hw, kv_dtype=kv_dtype, attn_gpus=attn_gpus, ffn_gpus=ffn_gpus
        )
        comm_source = f"roofline ({hw.name})"
    fitter.fit(meas)
    cap = None
    if hw is not None:
        cap = kv_capacity_tokens(spec, hw, kv_dtype=kv_dtype, attn_gpus=attn_gpus)
    coeffs = fitter.coefficients(
        comm=comm,
        kv_capacity_tokens=cap,
        source=f"calibrated: {spec.name} on {meas.device} ({source})",
    )
    return CalibrationResult(
        coefficients=coeffs,
        model=spec.name,
        device=meas.device,
        source=source,
        kv_dtype=kv_dtype,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        hardware=hw.name if hw is not None else None,
        comm_source=comm_source,
        fit=fitter.fit_report(),
        filters=meas.filters,
    )


def write_profile(result: CalibrationResult, path: str | Path) -> None:
    """Write ``result`` as a profile.yaml (atomically) that :func:`load_coefficients` reads."""
    body = result.to_dict()
    coeff_keys = set(result.coefficients.to_dict())
    doc: dict[str, Any] = {
        "afdsizer_profile": PROFILE_FORMAT_VERSION,
        "coefficients": result.coefficients.to_dict(),
    }
    doc.update({k: v for k, v in body.items() if k not in coeff_keys})
    atomic_write_text(path, safe_dump(doc))
