"""Cost model: per-step Attention, communication and FFN latency (docs/design.md §2, §5).

Model specs (HF config.json or presets), hardware specs (presets or YAML), the roofline, the
least-squares calibration on measured kernel tables, and the optional PyTorch profiler.
"""

from afdsizer.cost._api import cost_coefficients, load_coefficients
from afdsizer.cost._calibrate import CalibrationResult, calibrate, write_profile
from afdsizer.cost._coefficients import COEFFICIENT_KEYS, CostCoefficients
from afdsizer.cost._crosscheck import coefficients_at, load_profile, out_of_range_warnings
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._hardware import HARDWARE_PRESETS, HardwareSpec, load_hardware_spec
from afdsizer.cost._model import (
    KV_DTYPE_BYTES,
    MODEL_PRESETS,
    WEIGHT_DTYPE_BYTES,
    ModelSpec,
    load_model_spec,
)
from afdsizer.cost._moe_curve import ExpertCurve, FfnCurve, linearise_ffn
from afdsizer.cost._profile_csv import PROFILE_COLUMNS, read_profile_csv, write_profile_csv
from afdsizer.cost._profiler import profile_model
from afdsizer.cost._roofline import (
    DEFAULT_FFN_TOKENS_RANGE,
    RooflineEfficiency,
    ffn_roofline_time_s,
    kv_capacity_tokens,
    roofline_coefficients,
    roofline_memory,
)
from afdsizer.cost._sharding import DeploymentMemory, check_batch_fits, max_batch_per_worker
from afdsizer.cost._silicon import StepMeasurements, read_silicon

__all__ = [
    "COEFFICIENT_KEYS",
    "DEFAULT_FFN_TOKENS_RANGE",
    "HARDWARE_PRESETS",
    "KV_DTYPE_BYTES",
    "MODEL_PRESETS",
    "PROFILE_COLUMNS",
    "WEIGHT_DTYPE_BYTES",
    "CalibrationResult",
    "CostCoefficients",
    "CostFitter",
    "DeploymentMemory",
    "ExpertCurve",
    "FfnCurve",
    "HardwareSpec",
    "ModelSpec",
    "RooflineEfficiency",
    "StepMeasurements",
    "calibrate",
    "check_batch_fits",
    "coefficients_at",
    "cost_coefficients",
    "ffn_roofline_time_s",
    "kv_capacity_tokens",
    "linearise_ffn",
    "load_coefficients",
    "load_hardware_spec",
    "load_model_spec",
    "load_profile",
    "max_batch_per_worker",
    "out_of_range_warnings",
    "profile_model",
    "read_profile_csv",
    "read_silicon",
    "roofline_coefficients",
    "roofline_memory",
    "write_profile",
    "write_profile_csv",
]
