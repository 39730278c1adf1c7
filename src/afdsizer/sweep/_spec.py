"""The sweep spec: a YAML file naming the axes of a grid, validated in one pass.

A spec is a frozen pydantic model with ``extra="forbid"``: unknown keys, empty axes, duplicate axis
values, out-of-range numbers and missing files are all reported as one line before any cell runs.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from afdsizer._io import read_text_file
from afdsizer._yaml import safe_load
from afdsizer.deployment import Deployment
from afdsizer.errors import DataFileError, InputError

__all__ = [
    "BUNDLED_PREFIX",
    "DEPLOYMENT_KEYS",
    "SimulateSpec",
    "SweepSpec",
    "load_spec",
    "resolve_data_path",
]

BUNDLED_PREFIX = "bundled:"
"""A trace named ``bundled:NAME`` is the package's ``workload/data/NAME.csv.gz``."""

DEPLOYMENT_KEYS = (
    "kv_dtype",
    "attn_gpus",
    "ffn_gpus",
    "attn_parallel",
    "ffn_parallel",
    "microbatches",
    "pipeline",
    "layers",
    "barrier",
    "kv_quantile",
    "tpot_target_s",
    "tpot_p99_target_s",
    "objective",
    "moe_routing",
)
"""Spec keys that are :class:`~afdsizer.deployment.Deployment` fields of the same name."""

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Microbatches = Annotated[int, Field(ge=2, strict=True)]
Pipeline = Literal["deployment", "overlapped", "serial", "microbatch"]
Refill = Literal["resample", "replay"]


def _unique(name: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Reject an axis listing the same value twice (it would make duplicate cells)."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"axis {name} lists {value!r} twice")
        seen.add(value)
    return values


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimulateSpec(_Frozen):
    """Simulator options of a sweep; list-valued fields are grid axes.

    Parameters
    ----------
    steps : int, default 2000
        Decode steps per simulation, warm-up included (as :class:`afdsizer.sim.SimConfig`).
    warmup_steps : int or None, default None
        Leading steps discarded from the metrics, < ``steps``; None lets the simulator choose
        (``afdsizer.sim.DEFAULT_WARMUP_FRAC`` of ``steps``).
    pipeline : list of {"deployment", "overlapped", "serial", "microbatch"}, default ["deployment"]
        Axis: how Attention, communication and FFN share a step (docs/design.md §6).
        ``deployment`` simulates what the cell's deployment runs, as its theory columns size it
        (:meth:`afdsizer.sim.SimConfig.from_deployment`: DP workers, m microbatches through L
        layers, all B slots busy); the others are the simulator's own pipelines.
    microbatches : list of int, default [2]
        Axis, used only with ``pipeline: microbatch``: microbatches in flight, m.
    jitter_cv : list of float, default [0.0]
        Axis: coefficient of variation of per-worker Attention time noise, dimensionless.
    refill : list of {"resample", "replay"}, default ["resample"]
        Axis: how an emptied slot draws its next request from the trace.
    """

    steps: PositiveInt = 2000
    warmup_steps: NonNegativeInt | None = None
    pipeline: Annotated[tuple[Pipeline, ...], Field(min_length=1)] = ("deployment",)
    microbatches: Annotated[tuple[Microbatches, ...], Field(min_length=1)] = (2,)
    jitter_cv: Annotated[tuple[NonNegativeFloat, ...], Field(min_length=1)] = (0.0,)
    refill: Annotated[tuple[Refill, ...], Field(min_length=1)] = ("resample",)

    @field_validator("pipeline", "microbatches", "jitter_cv", "refill")
    @classmethod
    def _no_duplicates(cls, values: tuple[Any, ...], info: Any) -> tuple[Any, ...]:
        return _unique(f"simulate.{info.field_name}", values)

    @model_validator(mode="after")
    def _warmup_inside_run(self) -> SimulateSpec:
        if self.warmup_steps is not None and self.warmup_steps >= self.steps:
            raise ValueError(
                f"warmup_steps must be < steps ({self.steps}), got {self.warmup_steps}"
            )
        return self


class SweepSpec(_Frozen):
    """A grid of sizing cells: traces × cost cases × B × r × seeds × simulator options.

    Axes are YAML lists, held as tuples so that a validated spec is immutable throughout.

    Every cell gets the theory (``afdsizer.theory``); cells also get a simulation when
    ``simulate`` is given. Cost cases are every ``models`` × ``hardware`` pair (roofline presets or
    HF ``config.json`` / hardware YAML paths) plus every file in ``coefficients``.

    Parameters
    ----------
    traces : list of str
        Trace files (relative to the spec file) or ``bundled:NAME``, e.g.
        ``bundled:azure_conv_2023``.
    models, hardware : list of str, default []
        Model presets / config.json paths and hardware presets / YAML paths; both or neither.
    coefficients : list of str, default []
        Files with the six cost coefficients (JSON or YAML), relative to the spec file.
    kv_dtype, attn_gpus, ffn_gpus, attn_parallel, ffn_parallel, microbatches, pipeline, layers,
    barrier, kv_quantile, tpot_target_s, tpot_p99_target_s, objective, moe_routing : optional
        The deployment every cell is sized for, as the :class:`afdsizer.deployment.Deployment`
        fields of the same names (``microbatches`` and ``pipeline`` are the deployment's; the
        simulator's are under ``simulate``). A key left out takes Deployment's default, the
        default of ``afdsizer size`` (:meth:`deployment` resolves them).
    batch : list of int or "auto"
        Axis: slots per Attention instance, B; ``auto`` lets the theory choose B jointly with r
        (as ``afdsizer size`` without ``--batch``; theory-only sweeps).
    ratio : list of int or "auto", default ["auto"]
        Axis: Attention instances per FFN instance, r; ``auto`` is the theory's integer r.
    seeds : list of int, default [0]
        Axis: replicate seeds of the simulation (see :func:`afdsizer.sweep.cell_sim_seed`).
    simulate : SimulateSpec or None, default None
        Simulator options; None runs the theory only.
    chunk_cells : int, default 64
        Cells per Parquet part file: at most this many finished cells are held in memory.
    """

    traces: Annotated[tuple[str, ...], Field(min_length=1)]
    models: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    coefficients: tuple[str, ...] = ()
    # The deployment: None means Deployment's default (one place for every entry point).
    kv_dtype: Literal["bf16", "fp16", "fp8"] | None = None
    attn_gpus: PositiveInt | None = None
    ffn_gpus: PositiveInt | None = None
    attn_parallel: Literal["tp", "dp"] | None = None
    ffn_parallel: Literal["auto", "ep", "tp"] | None = None
    microbatches: PositiveInt | None = None
    pipeline: Literal["auto", "overlapped", "microbatch"] | None = None
    layers: PositiveInt | None = None
    barrier: Literal["auto", "empirical", "gaussian"] | None = None
    kv_quantile: Annotated[float, Field(ge=0.5, lt=1.0)] | None = None
    tpot_target_s: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    tpot_p99_target_s: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    objective: Literal["gpu", "instance"] | None = None
    moe_routing: Literal["auto", "balanced", "power_law"] | None = None
    batch: Annotated[tuple[PositiveInt | Literal["auto"], ...], Field(min_length=1)]
    ratio: Annotated[tuple[PositiveInt | Literal["auto"], ...], Field(min_length=1)] = ("auto",)
    seeds: Annotated[tuple[NonNegativeInt, ...], Field(min_length=1)] = (0,)
    simulate: SimulateSpec | None = None
    chunk_cells: PositiveInt = 64

    @field_validator(
        "traces", "models", "hardware", "coefficients", "batch", "ratio", "seeds", mode="after"
    )
    @classmethod
    def _no_duplicates(cls, values: tuple[Any, ...], info: Any) -> tuple[Any, ...]:
        return _unique(str(info.field_name), values)

    @model_validator(mode="after")
    def _cost_cases(self) -> SweepSpec:
        if bool(self.models) != bool(self.hardware):
            raise ValueError("models and hardware must be given together (each non-empty)")
        if not self.models and not self.coefficients:
            raise ValueError("no cost case: give models and hardware, or coefficients files")
        if "auto" in self.batch and self.simulate is not None:
            raise ValueError("batch: auto is for theory-only sweeps (give B to simulate)")
        self.deployment()  # rules spanning several deployment keys, checked up front
        return self

    def deployment(self) -> Deployment:
        """The cells' :class:`~afdsizer.deployment.Deployment` (B aside): the keys given, and
        Deployment's defaults for the rest.

        Raises
        ------
        InputError
            A combination Deployment refuses.
        """
        given = {name: getattr(self, name) for name in DEPLOYMENT_KEYS}
        return Deployment(**{k: v for k, v in given.items() if v is not None})


def resolve_data_path(entry: str, base_dir: Path) -> Path:
    """Resolve a trace or coefficient entry of a spec to an existing file.

    Parameters
    ----------
    entry : str
        ``bundled:NAME`` or a path, relative to ``base_dir`` unless absolute.
    base_dir : Path
        Directory of the spec file.

    Raises
    ------
    DataFileError
        The file does not exist (or no bundled trace has that name).
    """
    if entry.startswith(BUNDLED_PREFIX):
        name = entry[len(BUNDLED_PREFIX) :]
        data = importlib.resources.files("afdsizer.workload") / "data"
        path = Path(str(data / f"{name}.csv.gz"))
        if not path.is_file():
            known = sorted(p.name.removesuffix(".csv.gz") for p in Path(str(data)).glob("*.csv.gz"))
            raise DataFileError(
                f"sweep spec: no bundled trace {name!r}; known: {', '.join(known) or 'none'}"
            )
        return path
    path = Path(entry).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise DataFileError(f"sweep spec: file {entry!r} not found (looked at {path})")
    return path


def _clean_loc(loc: tuple[Any, ...]) -> str:
    """``("ratio", 1, "constrained-int")`` → ``"ratio[1]"``: keys and indices, not union tags."""
    parts = [
        f"[{p}]" if isinstance(p, int) else str(p)
        for p in loc
        if isinstance(p, int) or str(p).isidentifier()
    ]
    return ".".join(parts).replace(".[", "[")


def _user_words(msg: str) -> str:
    """Pydantic's message in the spec's terms: axes are YAML lists (held as tuples)."""
    msg = msg.removeprefix("Value error, ")
    return msg.replace("valid tuple", "list").replace("Tuple should", "List should")


def _first_error(exc: ValidationError, source: str) -> str:
    """One line from a pydantic error: where (key path), what, the value received.

    Errors at the same place (the branches of ``int | "auto"``, say) are one problem.
    """
    by_loc: dict[str, list[Any]] = {}
    for err in exc.errors(include_url=False):
        by_loc.setdefault(_clean_loc(err["loc"]), []).append(err)
    loc, errs = next(iter(by_loc.items()))
    err = errs[0]
    if err["type"] == "extra_forbidden":
        text = f"unknown key {loc!r}"
    elif err["type"] == "missing":
        text = f"missing key {loc!r}"
    else:
        msg = " or ".join(dict.fromkeys(_user_words(e["msg"]) for e in errs))
        value = err.get("input")
        where = f"{loc}: " if loc else ""
        # A rule spanning several keys already says what it got; its input is a whole mapping.
        got = "" if isinstance(value, dict) else f", got {value!r}"
        text = f"{where}{msg}{got}"
    more = f" (and {len(by_loc) - 1} more problem(s))" if len(by_loc) > 1 else ""
    return f"sweep spec {source}: {text}{more}"


def load_spec(path: str | os.PathLike[str]) -> tuple[SweepSpec, Path]:
    """Read and validate a sweep spec YAML file.

    Parameters
    ----------
    path : str or Path
        The spec file.

    Returns
    -------
    spec : SweepSpec
        The validated spec.
    base_dir : Path
        The spec's directory, against which its relative paths resolve.

    Raises
    ------
    DataFileError
        The spec file, or a trace or coefficient file it names, is missing.
    InputError
        The YAML is malformed, or a key is unknown, missing, empty or out of range.
    """
    path = Path(path)
    try:
        text = read_text_file(path)
    except OSError as exc:
        raise DataFileError(f"sweep spec {path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise InputError(f"sweep spec {path}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(
            f"sweep spec {path}: must be a YAML mapping of axes, got {type(data).__name__}"
        )
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(_first_error(exc, str(path))) from None
    base_dir = path.resolve().parent
    for entry in (*spec.traces, *spec.coefficients):
        resolve_data_path(entry, base_dir)
    return spec, base_dir
