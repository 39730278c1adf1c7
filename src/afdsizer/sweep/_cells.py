"""Cells of a sweep grid, their stable keys and their seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from afdsizer.deployment import (
    AttnParallel,
    BarrierLaw,
    Deployment,
    FfnParallel,
    MoeRouting,
    ObjectiveName,
    PipelineName,
)
from afdsizer.sweep._spec import SweepSpec

__all__ = ["SweepCell", "cell_sim_seed", "enumerate_cells"]

_KEY_HEX_CHARS = 20
"""Length of a cell key (80 bits of SHA-256): collisions are out of reach for any real grid."""


def _default_of(name: str) -> Callable[[], Any]:
    """A factory of Deployment's default of field ``name``, read when a cell is made (from an
    instance: Deployment is the one place defaults live)."""
    return lambda: getattr(Deployment(), name)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SweepCell:
    """One point of a sweep grid: a workload, a cost case, (B, r), a seed and simulator options.

    Parameters
    ----------
    trace : str
        The trace entry exactly as the spec writes it (``bundled:NAME`` or a path).
    model, hardware : str or None
        Roofline cost case (both set), or None when ``coefficients`` is set.
    coefficients : str or None
        Coefficient file as the spec writes it, or None for a roofline case.
    kv_dtype : str
        KV cache dtype.
    attn_gpus, ffn_gpus : int
        g_A, g_F: GPUs per Attention / FFN instance.
    batch : int or None
        B, slots per Attention instance; None means the theory's B (chosen jointly with r).
    ratio : int or None
        r, Attention instances per FFN instance; None means the theory's integer r.
    seed : int or None
        Replicate seed of the spec's ``seeds`` axis; None for a theory-only cell (the theory is
        deterministic, so a theory-only sweep has one cell per seed-free combination).
    simulate : bool
        Whether this cell also runs the simulator.
    steps, warmup_steps : int or None
        Simulator steps measured / discarded (None without simulation).
    pipeline : str or None
        Simulator pipeline (None without simulation).
    microbatches : int or None
        Microbatches m, only with ``pipeline == "microbatch"``.
    jitter_cv : float or None
        CV of per-worker Attention time noise, dimensionless (None without simulation).
    refill : str or None
        Slot refill policy (None without simulation).
    attn_parallel, ffn_parallel, deploy_microbatches, deploy_pipeline, layers, barrier,
    kv_quantile, tpot_target_s, tpot_p99_target_s, objective, moe_routing
        The rest of the deployment the theory sizes for (:meth:`deployment`), resolved from the
        spec with :class:`~afdsizer.deployment.Deployment`'s defaults: ``deploy_microbatches``
        and ``deploy_pipeline`` are its ``microbatches`` and ``pipeline``.
    """

    trace: str
    model: str | None
    hardware: str | None
    coefficients: str | None
    kv_dtype: str
    attn_gpus: int
    ffn_gpus: int
    batch: int | None
    ratio: int | None
    seed: int | None
    simulate: bool
    steps: int | None = None
    warmup_steps: int | None = None
    pipeline: str | None = None
    microbatches: int | None = None
    jitter_cv: float | None = None
    refill: str | None = None
    attn_parallel: AttnParallel = dataclasses.field(default_factory=_default_of("attn_parallel"))
    ffn_parallel: FfnParallel = dataclasses.field(default_factory=_default_of("ffn_parallel"))
    deploy_microbatches: int = dataclasses.field(default_factory=_default_of("microbatches"))
    deploy_pipeline: PipelineName = dataclasses.field(default_factory=_default_of("pipeline"))
    layers: int | None = dataclasses.field(default_factory=_default_of("layers"))
    barrier: BarrierLaw = dataclasses.field(default_factory=_default_of("barrier"))
    kv_quantile: float = dataclasses.field(default_factory=_default_of("kv_quantile"))
    tpot_target_s: float | None = None
    tpot_p99_target_s: float | None = None
    objective: ObjectiveName | None = dataclasses.field(default_factory=_default_of("objective"))
    moe_routing: MoeRouting = dataclasses.field(default_factory=_default_of("moe_routing"))

    def deployment(self) -> Deployment:
        """The :class:`~afdsizer.deployment.Deployment` this cell is sized for (B included)."""
        return Deployment(
            attn_gpus=self.attn_gpus,
            ffn_gpus=self.ffn_gpus,
            attn_parallel=self.attn_parallel,
            ffn_parallel=self.ffn_parallel,
            microbatches=self.deploy_microbatches,
            pipeline=self.deploy_pipeline,
            layers=self.layers,
            kv_dtype=self.kv_dtype,
            batch=self.batch,
            barrier=self.barrier,
            kv_quantile=self.kv_quantile,
            tpot_target_s=self.tpot_target_s,
            tpot_p99_target_s=self.tpot_p99_target_s,
            objective=self.objective,
            moe_routing=self.moe_routing,
        )

    @property
    def key(self) -> str:
        """Stable key of the cell: a hash of its fields, independent of grid order.

        Two runs of the same spec (or of a spec with its axes reordered or extended) give the
        same key to the same cell, which is what resuming relies on.
        """
        canonical = json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_KEY_HEX_CHARS]

    @property
    def cost_label(self) -> str:
        """``model@hardware`` or the coefficient file, for progress lines and reports."""
        if self.coefficients is not None:
            return self.coefficients
        return f"{self.model}@{self.hardware}"


def cell_sim_seed(cell: SweepCell) -> int:
    """The simulator seed of a cell, derived from its trace and replicate seed only.

    The seed does not depend on r, B, the cost case or the simulator options, so cells that differ
    only in those share their request draws (common random numbers: curves over r compare like
    with like, docs/design.md §8); nor on grid order or engine, so local and Dask runs agree.

    Parameters
    ----------
    cell : SweepCell
        The cell.

    Returns
    -------
    int
        A seed in [0, 2**63).
    """
    digest = hashlib.sha256(cell.trace.encode("utf-8")).digest()
    trace_words = np.frombuffer(digest[:16], dtype=np.uint32)
    entropy = [cell.seed or 0, *(int(w) for w in trace_words)]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def _cost_cases(spec: SweepSpec) -> list[dict[str, str | None]]:
    cases: list[dict[str, str | None]] = [
        {"model": m, "hardware": h, "coefficients": None}
        for m, h in itertools.product(spec.models, spec.hardware)
    ]
    cases += [{"model": None, "hardware": None, "coefficients": c} for c in spec.coefficients]
    return cases


def _sim_options(spec: SweepSpec) -> list[dict[str, object]]:
    sim = spec.simulate
    if sim is None:
        return [{"simulate": False}]
    options: list[dict[str, object]] = []
    for pipeline, jitter_cv, refill in itertools.product(sim.pipeline, sim.jitter_cv, sim.refill):
        # Microbatch count only matters to the microbatch pipeline; other pipelines get one cell.
        counts: list[int | None] = list(sim.microbatches) if pipeline == "microbatch" else [None]
        for m in counts:
            options.append(
                {
                    "simulate": True,
                    "steps": sim.steps,
                    "warmup_steps": sim.warmup_steps,
                    "pipeline": pipeline,
                    "microbatches": m,
                    "jitter_cv": float(jitter_cv),
                    "refill": refill,
                }
            )
    return options


def enumerate_cells(spec: SweepSpec) -> tuple[SweepCell, ...]:
    """All cells of a spec, in grid order (traces, cost cases, B, r, seeds, simulator options).

    Parameters
    ----------
    spec : SweepSpec
        A validated spec.

    Returns
    -------
    tuple of SweepCell
        The cells; their keys are distinct.

    Examples
    --------
    >>> from afdsizer.sweep import SweepSpec, enumerate_cells
    >>> spec = SweepSpec(traces=["t.csv"], coefficients=["c.json"], batch=[64, 128], ratio=[2, 4])
    >>> [(c.batch, c.ratio) for c in enumerate_cells(spec)]
    [(64, 2), (64, 4), (128, 2), (128, 4)]
    """
    seeds: list[int | None] = list(spec.seeds) if spec.simulate is not None else [None]
    d = spec.deployment()  # every default from Deployment, resolved once
    deployment = {
        "kv_dtype": d.kv_dtype,
        "attn_gpus": d.attn_gpus,
        "ffn_gpus": d.ffn_gpus,
        "attn_parallel": d.attn_parallel,
        "ffn_parallel": d.ffn_parallel,
        "deploy_microbatches": d.microbatches,
        "deploy_pipeline": d.pipeline,
        "layers": d.layers,
        "barrier": d.barrier,
        "kv_quantile": d.kv_quantile,
        "tpot_target_s": d.tpot_target_s,
        "tpot_p99_target_s": d.tpot_p99_target_s,
        "objective": d.objective,
        "moe_routing": d.moe_routing,
    }
    cells = []
    for trace, cost, batch, ratio, seed, sim in itertools.product(
        spec.traces, _cost_cases(spec), spec.batch, spec.ratio, seeds, _sim_options(spec)
    ):
        cells.append(
            SweepCell(
                trace=trace,
                batch=None if batch == "auto" else batch,
                ratio=None if ratio == "auto" else ratio,
                seed=seed,
                **deployment,  # type: ignore[arg-type]
                **cost,  # type: ignore[arg-type]
                **sim,  # type: ignore[arg-type]
            )
        )
    return tuple(cells)
