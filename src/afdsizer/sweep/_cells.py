"""Cells of a sweep grid, their stable keys and their seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json

import numpy as np

from afdsizer.sweep._spec import SweepSpec

__all__ = ["SweepCell", "cell_sim_seed", "enumerate_cells"]

_KEY_HEX_CHARS = 20
"""Length of a cell key (80 bits of SHA-256): collisions are out of reach for any real grid."""


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
        KV cache dtype of a roofline case.
    attn_gpus, ffn_gpus : int
        GPUs per Attention / FFN instance of a roofline case.
    batch : int
        B, slots per Attention instance.
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
    """

    trace: str
    model: str | None
    hardware: str | None
    coefficients: str | None
    kv_dtype: str
    attn_gpus: int
    ffn_gpus: int
    batch: int
    ratio: int | None
    seed: int | None
    simulate: bool
    steps: int | None = None
    warmup_steps: int | None = None
    pipeline: str | None = None
    microbatches: int | None = None
    jitter_cv: float | None = None
    refill: str | None = None

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
    cells = []
    for trace, cost, batch, ratio, seed, sim in itertools.product(
        spec.traces, _cost_cases(spec), spec.batch, spec.ratio, seeds, _sim_options(spec)
    ):
        cells.append(
            SweepCell(
                trace=trace,
                kv_dtype=spec.kv_dtype,
                attn_gpus=spec.attn_gpus,
                ffn_gpus=spec.ffn_gpus,
                batch=batch,
                ratio=None if ratio == "auto" else ratio,
                seed=seed,
                **cost,  # type: ignore[arg-type]
                **sim,  # type: ignore[arg-type]
            )
        )
    return tuple(cells)
