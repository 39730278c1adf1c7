"""From options to the three values ``recommend`` takes, once for every entry point (design §7).

``afdsizer size``, ``report``, ``plan``, the sweep cells and the Python API all turn their
options into a :class:`SizingInputs` here — the :class:`~afdsizer.workload.Workload`, the
:class:`~afdsizer.cost.CostCoefficients` and the :class:`~afdsizer.deployment.Deployment` — and
call :func:`afdsizer.theory.recommend` with them, so the same inputs give the same r everywhere.
An option left at None takes its value from a profile that records it (``calibrate``), else from
:class:`Deployment`'s defaults; an option that contradicts the profile is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

if TYPE_CHECKING:
    from afdsizer.cost import CostCoefficients
    from afdsizer.theory import Recommendation
    from afdsizer.workload import Workload

__all__ = [
    "DEFAULT_HARDWARE",
    "DEFAULT_MODEL",
    "DEPLOYMENT_OPTIONS",
    "Relineariser",
    "SizingInputs",
    "profile_relineariser",
    "recommend_at_operating_point",
    "resolve_coefficients",
    "resolve_inputs",
    "resolve_workload",
    "roofline_relineariser",
    "size",
]

DEFAULT_MODEL = "llama-3.1-70b"
"""Model preset used when no model, profile or coefficients file is given."""
DEFAULT_HARDWARE = "h100-sxm"
"""Hardware preset used when no hardware, profile or coefficients file is given."""

DEPLOYMENT_OPTIONS = tuple(f.name for f in dataclasses.fields(Deployment))
"""The deployment options every entry point takes, named as :class:`Deployment`'s fields."""

_SQRT2 = 2.0**0.5

_PROFILE_RECORDED = (
    "attn_gpus",
    "ffn_gpus",
    "attn_parallel",
    "ffn_parallel",
    "kv_dtype",
    "weight_dtype",
    "layers",
)
"""Deployment fields a calibration profile records (it was fitted for them)."""


Relineariser = Callable[[float], "CostCoefficients"]
"""N (tokens per FFN pass) → the coefficients with t_F linearised around N."""

_OPERATING_POINT_ROUNDS = 8
"""Re-linearisations of t_F at the operating point before taking the answer as it stands."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SizingInputs:
    """What ``recommend`` is called with, resolved from options.

    Attributes
    ----------
    workload : Workload
    coefficients : CostCoefficients
    deployment : Deployment
    relinearise : callable or None
        N → coefficients with t_F linearised around N tokens per FFN pass (the roofline of a
        model, or a profile's fitted FFN curve); None for a plain coefficient file.
    profile : mapping or None
        The parsed calibration profile the coefficients came from (its ranges and warnings
        apply).
    """

    workload: Workload
    coefficients: CostCoefficients
    deployment: Deployment
    relinearise: Relineariser | None = None
    profile: Mapping[str, Any] | None = None


def resolve_workload(
    *,
    trace: str | Path | None = None,
    isl: int | None = None,
    osl: int | None = None,
    theta: float | None = None,
    slot_load_std: float | None = None,
    drop_invalid: bool = False,
) -> Workload:
    """One of a trace (default: the bundled sample), fixed ISL/OSL, or θ and σ.

    Raises
    ------
    InputError
        Options of two kinds together, or one of a pair alone.
    """
    from afdsizer.workload import Workload, bundled_trace_path, load_trace

    kinds = [
        name
        for name, given in (
            ("--trace", trace is not None),
            ("--isl/--osl", isl is not None or osl is not None),
            ("--theta/--slot-load-std", theta is not None or slot_load_std is not None),
        )
        if given
    ]
    if len(kinds) > 1:
        raise InputError(f"give one workload: {' or '.join(kinds)}, not both")
    if (isl is None) != (osl is None):
        raise InputError("--isl and --osl go together (prompt and decode tokens per request)")
    if (theta is None) != (slot_load_std is None):
        raise InputError(
            "--theta and --slot-load-std go together (θ and σ in tokens; "
            "--slot-load-std 0 ignores the barrier)"
        )
    if isl is not None and osl is not None:
        return Workload.from_fixed_lengths(isl, osl)
    if theta is not None and slot_load_std is not None:
        return Workload.from_moments(theta, slot_load_std)
    path = Path(trace) if trace is not None else bundled_trace_path()
    return Workload.from_trace(load_trace(path, drop_invalid=drop_invalid))


def _profile_record(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The model, hardware and deployment fields a profile says it was fitted for."""
    record: dict[str, Any] = {}
    nested = doc.get("deployment")
    sources: list[Mapping[str, Any]] = [doc]
    if isinstance(nested, dict):
        sources.append(nested)
    for source in sources:
        for key in (*_PROFILE_RECORDED, "model", "hardware"):
            if source.get(key) is not None:
                record[key] = source[key]
    return record


def _merge_profile(
    profile: Path,
    doc: Mapping[str, Any],
    options: dict[str, Any],
    model: str | Path | None,
    hardware: str | Path | None,
) -> tuple[dict[str, Any], str | Path | None, str | Path | None]:
    record = _profile_record(doc)
    for key, given in (*options.items(), ("model", model), ("hardware", hardware)):
        if key in record and given is not None and str(given) != str(record[key]):
            flag = "--" + key.replace("_", "-")
            raise InputError(
                f"{flag} {given} contradicts profile {profile}, fitted for {key} = {record[key]};"
                " calibrate again for that deployment or drop the option"
            )
    merged = dict(options)
    for key in _PROFILE_RECORDED:
        if merged.get(key) is None and key in record:
            merged[key] = record[key]
    return merged, model or record.get("model"), hardware or record.get("hardware")


def roofline_relineariser(
    deployment: Deployment,
    model: str | Path | None,
    hardware: str | Path | None,
    profile: Path | None,
    coeffs: Path | None,
    slot_context_tokens: float | None = None,
) -> Relineariser | None:
    """How to linearise t_F around an operating point N, for the roofline (no profile)."""
    if coeffs is not None or profile is not None:
        return None
    from afdsizer.cost import cost_coefficients

    def at(tokens_per_pass: float) -> CostCoefficients:
        # A secant over [N/√2, N·√2]: the local slope of the activated-experts (or memory-
        # then compute-bound) FFN time, not a line through a fixed 128–4096 range.
        low = max(1, round(tokens_per_pass / _SQRT2))
        high = max(low + 1, round(tokens_per_pass * _SQRT2))
        return cost_coefficients(
            model=model or DEFAULT_MODEL,
            hardware=hardware or DEFAULT_HARDWARE,
            deployment=deployment,
            ffn_tokens_range=(low, high),
            moe_routing=None if deployment.moe_routing == "auto" else deployment.moe_routing,
            slot_context_tokens=slot_context_tokens,
        )

    return at


def profile_relineariser(doc: Mapping[str, Any], base: CostCoefficients) -> Relineariser | None:
    """N → the profile's coefficients with t_F its fitted FFN curve linearised at N (if any).

    ``doc`` is the parsed profile (:func:`afdsizer.cost.load_profile`). The KV capacity and
    layers stay those ``base`` resolved (the profile's, else the model's).
    """
    from afdsizer.cost import coefficients_at

    if not isinstance(doc.get("ffn_curve"), dict):
        return None

    def at(tokens_per_pass: float) -> CostCoefficients:
        local = coefficients_at(doc, tokens_per_pass)
        return dataclasses.replace(
            local, kv_capacity_tokens=base.kv_capacity_tokens, layers=base.layers or local.layers
        )

    return at


def _profile_warnings(
    doc: Mapping[str, Any], rec: Recommendation, *, relinearised: bool
) -> tuple[str, ...]:
    """The profile's own warnings and those of an operating point outside its fitted ranges."""
    from afdsizer.cost import out_of_range_warnings

    work = rec.work_per_pass()
    found = [str(w) for w in doc.get("warnings") or []]
    found += out_of_range_warnings(
        doc,
        work["kv_tokens"],
        work["ffn_tokens"],
        comm_tokens=work["batch_per_worker"],
        relinearised=relinearised,
    )
    return tuple(dict.fromkeys(found))


def resolve_coefficients(
    *,
    deployment: Deployment,
    model: str | Path | None = None,
    hardware: str | Path | None = None,
    profile: Path | None = None,
    coeffs: Path | None = None,
    slot_context_tokens: float | None = None,
    profile_doc: Mapping[str, Any] | None = None,
) -> CostCoefficients:
    """Coefficients from a file (``coeffs``), a fitted profile, or the roofline of presets.

    ``slot_context_tokens`` (θ) lets the roofline charge the per-request attention work;
    ``profile_doc`` is ``profile`` already parsed (:func:`afdsizer.cost.load_profile`).

    Raises
    ------
    InputError
        ``coeffs`` with a model, hardware or profile.
    """
    from afdsizer.cost import cost_coefficients, load_coefficients

    if coeffs is not None:
        if model is not None or hardware is not None or profile is not None:
            raise InputError(
                "--coeffs excludes --model, --hardware and --profile; give one or the other"
            )
        return load_coefficients(coeffs)
    return cost_coefficients(
        model=model or DEFAULT_MODEL,
        hardware=hardware or DEFAULT_HARDWARE,
        deployment=deployment,
        profile=profile,
        profile_doc=profile_doc,
        moe_routing=None if deployment.moe_routing == "auto" else deployment.moe_routing,
        slot_context_tokens=slot_context_tokens,
    )


def _model_layers(model: str | Path | None, coeffs: Path | None) -> int | None:
    if coeffs is not None:
        return None
    from afdsizer.cost import load_model_spec

    return load_model_spec(model or DEFAULT_MODEL).num_layers


def resolve_inputs(
    *,
    trace: str | Path | None = None,
    isl: int | None = None,
    osl: int | None = None,
    theta: float | None = None,
    slot_load_std: float | None = None,
    drop_invalid: bool = False,
    model: str | Path | None = None,
    hardware: str | Path | None = None,
    profile: Path | None = None,
    coeffs: Path | None = None,
    **deployment_options: Any,
) -> SizingInputs:
    """Workload, coefficients and deployment from the options of ``afdsizer size``.

    ``deployment_options`` are :class:`Deployment` fields; None (or absent) means "the
    profile's, else the default".

    Raises
    ------
    InputError
        An unknown option, conflicting workload options, a flag that contradicts the profile,
        or a value a field refuses.
    """
    unknown = sorted(set(deployment_options) - set(DEPLOYMENT_OPTIONS))
    if unknown:
        raise InputError(f"unknown deployment option(s): {', '.join(unknown)}")
    options = {k: v for k, v in deployment_options.items() if v is not None}
    profile_doc: Mapping[str, Any] | None = None
    if profile is not None:
        from afdsizer.cost import load_profile

        profile_doc = load_profile(profile)  # parsed once: merge, curve and warnings use it
        options, model, hardware = _merge_profile(profile, profile_doc, options, model, hardware)
    workload = resolve_workload(
        trace=trace,
        isl=isl,
        osl=osl,
        theta=theta,
        slot_load_std=slot_load_std,
        drop_invalid=drop_invalid,
    )
    deployment = Deployment(**options)
    theta = workload.theta_tokens
    coefficients = resolve_coefficients(
        deployment=deployment,
        model=model,
        hardware=hardware,
        profile=profile,
        coeffs=coeffs,
        slot_context_tokens=theta,
        profile_doc=profile_doc,
    )
    if deployment.layers is None and deployment.resolved_pipeline == "microbatch":
        layers = coefficients.layers or _model_layers(model, coeffs)
        if layers is not None:
            deployment = deployment.replace(layers=int(layers))
    relinearise = roofline_relineariser(deployment, model, hardware, profile, coeffs, theta)
    if profile_doc is not None:
        relinearise = profile_relineariser(profile_doc, coefficients)
    return SizingInputs(
        workload=workload,
        coefficients=coefficients,
        deployment=deployment,
        relinearise=relinearise,
        profile=profile_doc,
    )


def recommend_at_operating_point(
    inputs: SizingInputs, *, seed: int = 0
) -> tuple[Recommendation, CostCoefficients]:
    """``recommend``, with t_F re-linearised at the r·B/m it recommends until the two agree.

    The coefficients are local linearisations (docs/design.md §10): a line through a wide range of
    FFN batches misstates the slope where the bundle operates, so the answer is iterated to a
    fixed point (at most a few rounds; a 2-cycle keeps the later answer).

    Returns
    -------
    (Recommendation, CostCoefficients)
        The answer and the coefficients it was computed with.
    """
    from afdsizer.theory import recommend

    coefficients = inputs.coefficients
    rec = recommend(coefficients, inputs.workload, inputs.deployment, seed=seed)
    if inputs.relinearise is not None:
        seen = {(rec.r_int, rec.batch)}
        for _ in range(_OPERATING_POINT_ROUNDS):
            coefficients = inputs.relinearise(rec.work_per_pass()["ffn_tokens"])
            rec = recommend(coefficients, inputs.workload, inputs.deployment, seed=seed)
            point = (rec.r_int, rec.batch)
            if point in seen:
                break
            seen.add(point)
    if inputs.profile is not None:
        warnings = (
            *rec.warnings,
            *_profile_warnings(inputs.profile, rec, relinearised=inputs.relinearise is not None),
        )
        rec = dataclasses.replace(rec, warnings=warnings)
    return rec, coefficients


def size(*, seed: int = 0, **options: Any) -> Recommendation:
    """Recommend (B, r) from the options of ``afdsizer size``: the command as one call.

    Parameters
    ----------
    seed : int, default 0
        Seed of the empirical barrier's worker-load draws.
    **options
        As :func:`resolve_inputs`: ``trace`` / ``isl, osl`` / ``theta, slot_load_std``;
        ``model, hardware`` / ``profile`` / ``coeffs``; and any :class:`Deployment` field
        (``attn_gpus``, ``microbatches``, ``tpot_target_s``, ``objective``, …).

    Returns
    -------
    Recommendation

    Examples
    --------
    >>> import afdsizer
    >>> rec = afdsizer.size(isl=1000, osl=200, microbatches=2)
    >>> rec.microbatches, rec.throughput_per_gpu * rec.gpus_per_bundle > 0
    (2, True)
    """
    return recommend_at_operating_point(resolve_inputs(**options), seed=seed)[0]
