"""The six per-step latency coefficients every later stage consumes (docs/design.md §2)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from afdsizer.errors import InputError

__all__ = ["COEFFICIENT_KEYS", "CostCoefficients"]

COEFFICIENT_KEYS = (
    "alpha_attn_s",
    "beta_attn_s_per_token",
    "alpha_comm_s",
    "beta_comm_s_per_token",
    "alpha_ffn_s",
    "beta_ffn_s_per_token",
)
"""The six required keys of a coefficient file and of ``afdsizer cost --json``."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CostCoefficients:
    """Affine per-decode-step latencies of one rA–1F bundle, all layers, in seconds.

    t_A,w = α_A + β_A·L_w, t_C = α_C + β_C·B + γ_C·r·B, t_F = α_F + β_F·N (N = tokens in the FFN
    batch, r·B when full). α is the fixed overhead, β the slope (the paper swaps the two letters).

    Parameters
    ----------
    alpha_attn_s : float
        α_A, Attention fixed time per step, s. Must be > 0.
    beta_attn_s_per_token : float
        β_A, Attention time per KV token attended (summed over a worker's B slots), s/token. > 0.
    alpha_comm_s : float
        α_C, communication fixed time per step (both directions, all layers), s. > 0.
    beta_comm_s_per_token : float
        β_C, communication time per token of one Attention instance's batch B, s/token. > 0.
    alpha_ffn_s : float
        α_F, FFN fixed time per step (weights read), s. > 0.
    beta_ffn_s_per_token : float
        β_F, FFN time per token of the aggregated batch r·B, s/token. > 0.
    gamma_comm_s_per_token : float, default 0
        γ_C, FFN-side ingress time per token of r·B, s/token. 0 in the paper's first version.
    kv_capacity_tokens : float or None, default None
        KV tokens one Attention worker can hold after weights (the instance under TP
        attention, one GPU under DP); None means unlimited.
    layers : int or None, default None
        L, the model's decoder layers the per-step times run through (the microbatch pipeline
        has m·L stages); None when unknown (a bare coefficient file).
    source : str, default ""
        Where the numbers came from (roofline, calibration file, user file), for reports.
    """

    alpha_attn_s: float
    beta_attn_s_per_token: float
    alpha_comm_s: float
    beta_comm_s_per_token: float
    alpha_ffn_s: float
    beta_ffn_s_per_token: float
    gamma_comm_s_per_token: float = 0.0
    kv_capacity_tokens: float | None = None
    layers: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for key in COEFFICIENT_KEYS:
            value = getattr(self, key)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InputError(f"{key} must be a finite number > 0, got {value!r}")
        g = self.gamma_comm_s_per_token
        if not isinstance(g, int | float) or not math.isfinite(g) or g < 0:
            raise InputError(f"gamma_comm_s_per_token must be a finite number >= 0, got {g!r}")
        cap = self.kv_capacity_tokens
        if cap is not None and (not isinstance(cap, int | float) or not cap > 0):
            raise InputError(f"kv_capacity_tokens must be > 0 or None, got {cap!r}")
        L = self.layers
        if L is not None and (isinstance(L, bool) or not isinstance(L, int) or L < 1):
            raise InputError(f"layers must be an integer >= 1 or None, got {L!r}")

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, source: str = "") -> CostCoefficients:
        """Build from a dict with the six keys (extra keys other than the optional ones ignored).

        Raises
        ------
        InputError
            A required key is missing or a value is not a positive number.
        """
        missing = [k for k in COEFFICIENT_KEYS if k not in data]
        if missing:
            where = f" in {source}" if source else ""
            raise InputError(
                f"coefficients{where} lack key(s) {', '.join(missing)}; "
                f"expected all of {', '.join(COEFFICIENT_KEYS)}"
            )
        kwargs: dict[str, Any] = {}
        for key in (*COEFFICIENT_KEYS, "gamma_comm_s_per_token", "kv_capacity_tokens"):
            if key in data and data[key] is not None:
                value = data[key]
                try:
                    kwargs[key] = float(value)
                except (TypeError, ValueError):
                    raise InputError(f"{key} must be a number, got {value!r}") from None
        layers = data.get("layers")
        if layers is not None:
            # Integral floats (YAML "94.0") are fine; 94.5 layers is not.
            ok = isinstance(layers, int | float) and not isinstance(layers, bool)
            if not ok or not float(layers).is_integer():
                raise InputError(f"layers must be an integer >= 1, got {layers!r}")
            kwargs["layers"] = int(layers)
        return cls(**kwargs, source=source or str(data.get("source", "")))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields (JSON/YAML friendly)."""
        return dataclasses.asdict(self)

    def attention_time_s(self, load_tokens: float | npt.NDArray[np.float64]) -> Any:
        """t_A = α_A + β_A·L for a worker load L (tokens); s."""
        return self.alpha_attn_s + self.beta_attn_s_per_token * load_tokens

    def comm_time_s(
        self,
        batch: float | npt.NDArray[np.float64],
        ratio: float | npt.NDArray[np.float64] = 1.0,
    ) -> Any:
        """t_C = α_C + β_C·B + γ_C·r·B for batch B and ratio r; s."""
        return (
            self.alpha_comm_s
            + self.beta_comm_s_per_token * batch
            + self.gamma_comm_s_per_token * ratio * batch
        )

    def ffn_time_s(self, tokens: float | npt.NDArray[np.float64]) -> Any:
        """t_F = α_F + β_F·N for N tokens in the FFN batch; s."""
        return self.alpha_ffn_s + self.beta_ffn_s_per_token * tokens
