"""Calibration: fit the coefficients to measured tables and write a reusable ``profile.yaml``.

Two sources of measurements: the aiconfigurator silicon layout (:func:`read_silicon`, one GPU
folder) and afdsizer's own profile CSV (:func:`read_profile_csv`, written by ``afdsizer
profile``). The CSV has no communication points; its α_C, β_C come from the roofline of the
given hardware, and the profile says so (``comm_source``).

A calibration cannot fool itself (docs/design.md §10): rows are chosen per part, flat-floor kernels
are passed over, and every fitted coefficient is set beside the roofline's for the same
deployment (:mod:`afdsizer.cost._crosscheck`); each part records the range it was fitted on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from afdsizer._io import atomic_write_text
from afdsizer._yaml import safe_dump
from afdsizer.cost._coefficients import CostCoefficients
from afdsizer.cost._crosscheck import fit_entries, roofline_for
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._hardware import HARDWARE_PRESETS, HardwareSpec, load_hardware_spec
from afdsizer.cost._model import ModelSpec, load_model_spec
from afdsizer.cost._moe_curve import FfnCurve
from afdsizer.cost._profile_csv import read_profile_csv
from afdsizer.cost._roofline import kv_capacity_tokens
from afdsizer.cost._silicon import moe_routings, read_silicon
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = [
    "PROFILE_FORMAT_VERSION",
    "CalibrationResult",
    "calibrate",
    "write_profile",
]

PROFILE_FORMAT_VERSION = 2
"""Value of the ``afdsizer_profile`` key of a profile.yaml (2: per-part ``fits``, FFN curve)."""


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
        Hardware spec used for the KV capacity, the roofline cross-check (and the CSV's
        communication), if any.
    comm_source : str
        ``measured`` or the roofline the communication terms come from.
    fit : dict
        :meth:`CostFitter.fit_report`: median/max relative errors, points, ranges fitted.
    filters : dict
        Kernel and dtype filters applied to each table.
    fits : list of dict
        One entry per part (``attention``, ``attn_gemm``, ``moe``, ``ffn_gemm``, ``ffn``,
        ``comm``): kernel, dtype, rows, fitted range, errors, roofline and ratio, warnings.
    warnings : list of str
        Every warning of the calibration (row selection, roofline cross-check).
    ffn_curve : FfnCurve or None
        t_F(N) as curves, for :func:`linearise_ffn` at the operating point.
    deployment : dict
        What the profile was fitted for: GPUs, parallelism, dtypes, layers.
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
    fits: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    ffn_curve: FfnCurve | None = None
    deployment: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Summary (the ``calibrate --json`` payload): coefficients, fits, context."""
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
            deployment=dict(self.deployment),
            layers=self.deployment.get("layers"),
            fits=[dict(f) for f in self.fits],
            ffn_curve=None if self.ffn_curve is None else self.ffn_curve.to_dict(),
            warnings=list(self.warnings),
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


def _resolve_hardware(
    hardware: str | Path | HardwareSpec | None, silicon: str | Path | None
) -> HardwareSpec | None:
    if isinstance(hardware, HardwareSpec):
        return hardware
    if hardware is not None:
        return load_hardware_spec(hardware)
    if silicon is not None and (guess := _hardware_for_folder(Path(silicon))) is not None:
        return HardwareSpec.from_preset(guess)
    return None


def _resolve_deployment(
    deployment: Deployment | None,
    kv_dtype: str | None,
    attn_gpus: int | None,
    ffn_gpus: int | None,
) -> Deployment:
    dep = deployment or Deployment()
    changes: dict[str, object] = {}
    for name, value in (("kv_dtype", kv_dtype), ("attn_gpus", attn_gpus), ("ffn_gpus", ffn_gpus)):
        if value is not None:
            changes[name] = value
    return dep.replace(**changes) if changes else dep


def calibrate(
    *,
    model: str | Path | ModelSpec,
    silicon: str | Path | None = None,
    profile_csv: str | Path | None = None,
    hardware: str | Path | HardwareSpec | None = None,
    deployment: Deployment | None = None,
    kv_dtype: str | None = None,
    attn_gpus: int | None = None,
    ffn_gpus: int | None = None,
    fitter: CostFitter | None = None,
    attention_kernel: str | None = None,
    attn_gemm_dtype: str | None = None,
    attn_gemm_kernel: str | None = None,
    moe_kernel: str | None = None,
    moe_dtype: str | None = None,
    ffn_gemm_dtype: str | None = None,
    ffn_gemm_kernel: str | None = None,
    moe_routing: str | None = None,
    moe_rows: str = "auto",
    comm_op: str = "alltoall",
    comm_gpus: int | None = None,
    ffn_ingress: bool = False,
) -> CalibrationResult:
    """Fit the coefficients of ``model`` to measured timings, part by part.

    Parameters
    ----------
    model : str, path or ModelSpec
        Preset name or HF config.json.
    silicon : path, optional
        One GPU folder of the aiconfigurator layout (exactly one of ``silicon``/``profile_csv``).
    profile_csv : path, optional
        CSV written by ``afdsizer profile``.
    hardware : str, path or HardwareSpec, optional
        For the KV capacity, the roofline cross-check (and the CSV's communication). Default:
        the preset named like the silicon folder, if any; required with ``profile_csv``.
    deployment : Deployment, optional
        GPUs per instance, parallelism and KV dtype to fit for; default ``Deployment()``.
    kv_dtype : {"bf16", "fp8"}, optional
        Overrides ``deployment.kv_dtype`` (selects rows; sets KV bytes).
    attn_gpus, ffn_gpus : int, optional
        Override ``deployment.attn_gpus`` / ``deployment.ffn_gpus``.
    fitter : CostFitter, optional
        Operating ranges; default :class:`CostFitter()`.
    attention_kernel, attn_gemm_dtype, attn_gemm_kernel, moe_kernel, moe_dtype,
    ffn_gemm_dtype, ffn_gemm_kernel, moe_rows, comm_op, comm_gpus
        Per-part row selection (:func:`read_silicon`); defaults follow the checkpoint.
    moe_routing : {"balanced", "power_law", "power_law_1.2", "power_law_1.01"}, optional
        Expert loads of the MoE rows fitted. Default ``deployment.moe_routing``, whose
        ``auto`` is the power law (α = 1.2), as the roofline assumes (:func:`moe_routings`):
        fit and roofline then describe the same routing.
    ffn_ingress : bool, default False
        Charge the FFN side's ingress as γ_C (grows with r), as ``cost --ffn-ingress`` does.

    Raises
    ------
    InputError
        Not exactly one source, no rows match, too few points in a range.
    DataFileError
        Missing or unreadable tables.
    """
    if (silicon is None) == (profile_csv is None):
        raise InputError("give exactly one of --silicon DIR or --profile-csv FILE")
    dep = _resolve_deployment(deployment, kv_dtype, attn_gpus, ffn_gpus)
    loaded = model if isinstance(model, ModelSpec) else load_model_spec(model)
    # The precision served: the checkpoint's, or the deployment's weight_dtype when it sets one.
    spec = loaded.with_weight_dtype(dep.weight_dtype)
    table_routing, roof_routing = moe_routings(moe_routing or dep.moe_routing)
    hw = _resolve_hardware(hardware, silicon)
    fitter = fitter or CostFitter()
    roof = scale_up = None
    if hw is not None:
        kw: dict[str, Any] = {"ffn_ingress": ffn_ingress, "moe_routing": roof_routing}
        roof = roofline_for(spec, hw, dep, fitter, **kw)
        scale_up = roofline_for(spec, hw, dep, fitter, link="scale-up", **kw)

    comm: CostCoefficients | None = None
    if silicon is not None:
        meas = read_silicon(
            silicon,
            spec,
            kv_dtype=dep.kv_dtype,
            attn_gpus=dep.attn_gpus,
            ffn_gpus=dep.ffn_gpus,
            attn_parallel=dep.attn_parallel,
            ffn_parallel=dep.ffn_parallel,
            attention_kernel=attention_kernel,
            attn_gemm_dtype=attn_gemm_dtype,
            attn_gemm_kernel=attn_gemm_kernel,
            moe_kernel=moe_kernel,
            moe_dtype=moe_dtype,
            ffn_gemm_dtype=ffn_gemm_dtype,
            ffn_gemm_kernel=ffn_gemm_kernel,
            moe_routing=table_routing,
            moe_rows=moe_rows,
            comm_op=comm_op,
            comm_gpus=comm_gpus,
            batch_range=fitter.attention_batch_range,
            ffn_tokens_range=fitter.ffn_tokens_range,
        )
        source, comm_source = str(silicon), "measured (NCCL table)"
    else:
        assert profile_csv is not None
        if hw is None or roof is None:
            raise InputError(
                "--profile-csv has no communication timings: give --hardware for the roofline ones"
            )
        meas = read_profile_csv(profile_csv, spec)
        # The deployment's own fabric (auto: NICs across 8-GPU boards), not the NVLink proxy.
        comm = roof
        source, comm_source = str(profile_csv), f"roofline ({hw.name})"
    fitter.fit(meas)
    gpus_per_worker = dep.attn_gpus // dep.workers_per_instance  # g_A under TP, 1 under DP
    cap = None
    if hw is not None:
        cap = kv_capacity_tokens(spec, hw, kv_dtype=dep.kv_dtype, attn_gpus=gpus_per_worker)
    coeffs = fitter.coefficients(
        comm=comm,
        kv_capacity_tokens=cap,
        source=f"calibrated: {spec.name} on {meas.device} ({source})",
    )
    if ffn_ingress and meas.comm_time_s is not None:
        # The FFN GPUs take in r·B tokens over g_F GPUs at the rate one Attention GPU sends:
        # β_C is per worker token, a worker being g_A GPUs (TP) or one (DP).
        gamma = coeffs.beta_comm_s_per_token * gpus_per_worker / dep.ffn_gpus
        coeffs = dataclasses.replace(coeffs, gamma_comm_s_per_token=gamma)
    elif ffn_ingress and comm is not None:
        coeffs = dataclasses.replace(coeffs, gamma_comm_s_per_token=comm.gamma_comm_s_per_token)
    # The fitted times run through all the model's layers: L for the microbatch pipeline.
    coeffs = dataclasses.replace(coeffs, layers=spec.num_layers)
    fits, warnings = fit_entries(spec, meas, fitter, coeffs, roof, dep, hw, scale_up)
    if hw is None:
        warnings.append("no --hardware: the roofline cross-check was skipped")
    return CalibrationResult(
        coefficients=coeffs,
        model=spec.name,
        device=meas.device,
        source=source,
        kv_dtype=dep.kv_dtype,
        attn_gpus=dep.attn_gpus,
        ffn_gpus=dep.ffn_gpus,
        hardware=hw.name if hw is not None else None,
        comm_source=comm_source,
        fit=fitter.fit_report(),
        filters=meas.filters,
        fits=fits,
        warnings=warnings,
        ffn_curve=fitter.ffn_curve_,
        deployment=_deployment_record(spec, dep, meas, table_routing),
    )


def _deployment_record(spec: ModelSpec, dep: Deployment, meas: Any, routing: str) -> dict[str, Any]:
    dtypes = {part: rec.get("dtype") for part, rec in meas.selections.items()}
    return {
        "attn_gpus": dep.attn_gpus,
        "ffn_gpus": dep.ffn_gpus,
        "attn_parallel": dep.attn_parallel,
        "ffn_parallel": dep.ffn_parallel,
        "kv_dtype": dep.kv_dtype,
        "weight_dtype": spec.weight_dtype,
        "quantization": spec.quantization,
        # moe_routing in Deployment's words; the table rows' own name beside it.
        "moe_routing": moe_routings(routing)[1] if spec.is_moe else None,
        "moe_rows_routing": routing if spec.is_moe else None,
        "dtypes": dtypes,
        "layers": spec.num_layers,
        "moe_layers": spec.num_moe_layers,
        "dense_layers": spec.num_dense_layers,
    }


def write_profile(result: CalibrationResult, path: str | Path) -> None:
    """Write ``result`` as a profile.yaml (atomically) that :func:`load_coefficients` reads.

    The file holds ``coefficients`` (what ``--profile`` uses), what it was fitted for (model,
    hardware, GPUs, dtypes, ``layers``), the per-part ``fits`` with their ranges and warnings,
    and the ``ffn_curve`` that :func:`linearise_ffn` evaluates at an operating point.
    """
    body = result.to_dict()
    coeff_keys = set(result.coefficients.to_dict())
    doc: dict[str, Any] = {
        "afdsizer_profile": PROFILE_FORMAT_VERSION,
        "coefficients": result.coefficients.to_dict(),
    }
    doc.update({k: v for k, v in body.items() if k not in coeff_keys})
    atomic_write_text(path, safe_dump(doc))
