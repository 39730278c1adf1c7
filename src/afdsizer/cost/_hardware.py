"""Hardware specs: peak FLOP/s, HBM, interconnect of one GPU; presets and user YAML (design §5).

An *instance* (Attention or FFN) is a group of ``gpus`` identical GPUs; the roofline scales the
per-GPU numbers by the group size. The presets live in ``cost/presets/hardware.yaml``, each number
with its source in a comment. A user file has the same keys as one preset entry (plus ``name``).
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import yaml

from afdsizer._io import read_text_file
from afdsizer._yaml import safe_load
from afdsizer.errors import DataFileError, InputError

__all__ = ["HARDWARE_PRESETS", "HardwareSpec", "load_hardware_spec"]


class _HardwareFile(pydantic.BaseModel):
    """Schema of one hardware entry (preset or user YAML); validated once, at the boundary."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    description: str = ""
    dense_flops_per_s: dict[str, pydantic.PositiveFloat]
    hbm_bandwidth_bytes_per_s: pydantic.PositiveFloat
    hbm_capacity_bytes: pydantic.PositiveFloat
    scale_up_bandwidth_bytes_per_s: pydantic.PositiveFloat
    scale_up_latency_s: pydantic.PositiveFloat
    scale_up_domain_gpus: pydantic.PositiveInt = 8
    scale_out_bandwidth_bytes_per_s: pydantic.PositiveFloat
    scale_out_latency_s: pydantic.PositiveFloat


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HardwareSpec:
    """One GPU's datasheet numbers, SI units.

    Parameters
    ----------
    name : str
        Preset name or file path.
    dense_flops_per_s : dict of str to float
        Peak dense tensor FLOP/s per dtype (``"bf16"``, ``"fp8"``).
    hbm_bandwidth_bytes_per_s : float
        HBM bandwidth, bytes/s.
    hbm_capacity_bytes : float
        HBM capacity, bytes.
    scale_up_bandwidth_bytes_per_s, scale_up_latency_s : float
        NVLink-class link of one GPU, one direction, bytes/s; small-message latency, s.
    scale_up_domain_gpus : int
        GPUs that share the scale-up fabric (8 for HGX, 72 for GB200 NVL72).
    scale_out_bandwidth_bytes_per_s, scale_out_latency_s : float
        NIC of one GPU, one direction, bytes/s; latency, s.
    description : str
        Human-readable name.
    """

    name: str
    dense_flops_per_s: dict[str, float]
    hbm_bandwidth_bytes_per_s: float
    hbm_capacity_bytes: float
    scale_up_bandwidth_bytes_per_s: float
    scale_up_latency_s: float
    scale_up_domain_gpus: int
    scale_out_bandwidth_bytes_per_s: float
    scale_out_latency_s: float
    description: str = ""

    def __post_init__(self) -> None:
        if "bf16" not in self.dense_flops_per_s:
            raise InputError(f"dense_flops_per_s of {self.name} must give bf16")

    def flops_per_s(self, weight_dtype: str | int) -> float:
        """Peak dense FLOP/s for GEMMs on weights of ``weight_dtype``, FLOP/s.

        FP8 weights with dynamic FP8 activations run on the FP8 tensor cores where the GPU has
        them; elsewhere (A100) they are upcast and run at the bf16 peak. ``weight_dtype`` may
        also be the bytes per weight (1 means fp8), as older callers pass.
        """
        fp8 = weight_dtype in ("fp8", 1)
        if fp8 and "fp8" in self.dense_flops_per_s:
            return self.dense_flops_per_s["fp8"]
        return self.dense_flops_per_s["bf16"]

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, name: str) -> HardwareSpec:
        """Validate one hardware entry (keys as in ``presets/hardware.yaml``).

        Raises
        ------
        InputError
            A key is missing, unknown, or not a positive number; the message names it.
        """
        try:
            entry = _HardwareFile.model_validate(data)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise InputError(
                f"hardware {name}: {loc}: {err['msg']}, got {err.get('input')!r}"
            ) from None
        fields = entry.model_dump()
        fields["name"] = entry.name or name
        return cls(**fields)

    @classmethod
    def from_preset(cls, name: str) -> HardwareSpec:
        """Load a bundled preset (see :data:`HARDWARE_PRESETS`).

        Raises
        ------
        InputError
            Unknown name; the message lists the known ones.
        """
        presets = _presets()
        if name not in presets:
            raise InputError(
                f"unknown hardware {name!r}; known presets: {', '.join(presets)} "
                "(or give a YAML path)"
            )
        return cls.from_mapping(presets[name], name=name)


@functools.cache  # the bundled file never changes; every preset lookup read it again
def _presets() -> dict[str, dict[str, Any]]:
    text = resources.files("afdsizer.cost").joinpath("presets/hardware.yaml").read_text()
    data: dict[str, dict[str, Any]] = safe_load(text)
    return data


HARDWARE_PRESETS: tuple[str, ...] = tuple(_presets())
"""Bundled hardware presets: h100-sxm, h200, b200, gb200, a100-80g, h20, mi300x."""


def load_hardware_spec(hardware: str | Path) -> HardwareSpec:
    """Resolve ``hardware``: a preset name (:data:`HARDWARE_PRESETS`) or a YAML file path.

    Raises
    ------
    InputError
        Unknown preset, or invalid entries in the file.
    DataFileError
        The file cannot be read or is not YAML.

    Examples
    --------
    >>> load_hardware_spec("h100-sxm").hbm_bandwidth_bytes_per_s
    3350000000000.0
    """
    text = str(hardware)
    path = Path(text)
    if text in HARDWARE_PRESETS or not (path.suffix in (".yaml", ".yml") or path.exists()):
        return HardwareSpec.from_preset(text)
    try:
        data = safe_load(read_text_file(path))
    except OSError as exc:
        raise DataFileError(f"cannot read hardware file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise DataFileError(f"hardware file {path} is not valid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise InputError(f"hardware file {path} must hold a mapping, got {type(data).__name__}")
    return HardwareSpec.from_mapping(data, name=str(path))
