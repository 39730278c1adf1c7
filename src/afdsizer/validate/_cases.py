"""The default grid of cost cases: model × deployment × batch, spanning the three regimes.

Four cases' coefficients come from the cost model every other command uses
(:func:`afdsizer._sizing.resolve_coefficients`, i.e. :func:`afdsizer.cost.cost_coefficients`
on a hardware preset with the deployment's GPU counts), so validate judges the theory on the
numbers ``afdsizer size --model M --hardware H --attn-gpus A --ffn-gpus F`` starts from (size
also passes θ to the roofline and re-linearises t_F at its operating point; here one set of
coefficients serves every trace, shared by the theory and the simulator).
What is validated is r at a fixed B, so the KV capacity is dropped (the simulator does not model
it; the stress workload's B·θ would not fit). The same five cases run on every trace; which
regime each lands in is the theory's verdict on that trace (reported, never forced):

==========================  ======================================================  ==========
case                        deployment (bf16 KV, scale-out link)                    regime
==========================  ======================================================  ==========
``dense70b-h100-b128``      Llama-3.1-70B on H100, 1-GPU Attention, 8-GPU FFN,      Attention
                            B = 128
``dense70b-h100-b16``       the same at B = 16: few slots per worker, so the        Attention
                            barrier (σ·√B next to B·θ) is largest
``comm-handmade-b64``       hand-made, hand-checkable coefficients: a slow link     comm.
                            (β_C = 0.2 ms/token) beside fast Attention, B = 64;
                            r_C ≈ 14 (the presets on scale-out links rarely land
                            here, and not stably as the roofline's priors change)
``qwen3moe-h100-b32``       Qwen3-235B-A22B on H100, 1-GPU Attention, 8-GPU FFN,    FFN
                            B = 32: every expert's weights read per step
``dense70b-16f-b64``        Llama-3.1-70B on H100, 1-GPU Attention, 16-GPU FFN,     Attention
                            B = 64: cheap FFN per token, so r is large, Λ(r) flat
==========================  ======================================================  ==========
"""

from __future__ import annotations

import dataclasses

from afdsizer.cost import CostCoefficients
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = ["VALIDATION_HARDWARE", "CostCase", "default_cases", "roofline_case"]

VALIDATION_HARDWARE = "h100-sxm"
"""Hardware preset of the cost-model cases."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CostCase:
    """One validation case: named cost coefficients and the batch B they are run at.

    Parameters
    ----------
    name : str
        Short identifier (used in tables and JSON as ``case``).
    coefficients : CostCoefficients
        α, β of Attention, communication, FFN (s, s/token).
    batch : int
        B, slots per Attention worker.
    description : str
        How the coefficients were made.
    """

    name: str
    coefficients: CostCoefficients
    batch: int
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(
                f"batch of case {self.name!r} must be an integer >= 1, got {self.batch!r}"
            )


def roofline_case(
    name: str,
    model: str,
    *,
    batch: int,
    attn_gpus: int,
    ffn_gpus: int,
    description: str,
    hardware: str = VALIDATION_HARDWARE,
) -> CostCase:
    """A case whose coefficients are the cost model's for ``model`` on a deployment.

    Parameters
    ----------
    name : str
        Case name.
    model : str
        Model preset or config.json path (as ``afdsizer size --model``).
    batch : int
        B, slots per Attention instance.
    attn_gpus, ffn_gpus : int
        GPUs per Attention / FFN instance (the deployment the coefficients are for).
    description : str
        One line for tables.
    hardware : str, default "h100-sxm"
        Hardware preset or YAML path.

    Examples
    --------
    >>> case = roofline_case("x", "llama-3.1-70b", batch=64, attn_gpus=1, ffn_gpus=8,
    ...     description="doc")
    >>> case.coefficients.kv_capacity_tokens is None, case.coefficients.alpha_ffn_s > 0
    (True, True)
    """
    from afdsizer._sizing import resolve_coefficients

    deployment = Deployment(attn_gpus=attn_gpus, ffn_gpus=ffn_gpus)
    coefficients = resolve_coefficients(deployment=deployment, model=model, hardware=hardware)
    # r at a fixed B is what is validated; the simulator keeps no KV limit, so neither does
    # the theory here.
    coefficients = dataclasses.replace(coefficients, kv_capacity_tokens=None)
    return CostCase(name=name, coefficients=coefficients, batch=batch, description=description)


COMM_CASE_COEFFICIENTS = CostCoefficients(
    alpha_attn_s=5e-3,
    beta_attn_s_per_token=2e-8,
    alpha_comm_s=1e-3,
    beta_comm_s_per_token=2e-4,
    alpha_ffn_s=3e-3,
    beta_ffn_s_per_token=1.2e-5,
    source="validate: hand-made communication-bound case",
)
"""At B = 64 and θ = 1,226.5: t_A = 5 + 0.02·78.5 = 6.57 ms, t_C = 1 + 0.2·64 = 13.8 ms,
β_F·B = 0.768 ms, so r_C = (13.8 − 3)/0.768 = 14.1 > r_A = 4.6 > r_peak = 2.0."""


def _communication_case() -> CostCase:
    return CostCase(
        name="comm-handmade-b64",
        coefficients=COMM_CASE_COEFFICIENTS,
        batch=64,
        description="hand-made: slow link (β_C 0.2 ms/token) beside fast Attention; B=64",
    )


def default_cases() -> tuple[CostCase, ...]:
    """The five default cases (module docstring), Attention-, communication- and FFN-bound.

    Examples
    --------
    >>> [c.batch for c in default_cases()]
    [128, 16, 64, 32, 64]
    """
    return (
        roofline_case(
            "dense70b-h100-b128", "llama-3.1-70b", batch=128, attn_gpus=1, ffn_gpus=8,
            description="Llama-3.1-70B; 1-GPU Attention, 8-GPU FFN; B=128",
        ),
        roofline_case(
            "dense70b-h100-b16", "llama-3.1-70b", batch=16, attn_gpus=1, ffn_gpus=8,
            description="as dense70b-h100-b128 at B=16 (largest barrier: σ·√B vs B·θ)",
        ),
        _communication_case(),
        roofline_case(
            "qwen3moe-h100-b32", "qwen3-235b-a22b", batch=32, attn_gpus=1, ffn_gpus=8,
            description="Qwen3-235B-A22B; every expert read per step; 8-GPU FFN; B=32",
        ),
        roofline_case(
            "dense70b-16f-b64", "llama-3.1-70b", batch=64, attn_gpus=1, ffn_gpus=16,
            description="Llama-3.1-70B; 1-GPU Attention, 16-GPU FFN (large flat r); B=64",
        ),
    )  # fmt: skip
