"""afdsizer's own profile table: one-layer decode timings written by ``afdsizer profile``.

CSV with a header and one row per measured point (:data:`PROFILE_COLUMNS`):

=================  ==========================================================================
``kind``           ``attention`` (projections + decode attention of one layer),
                   ``ffn_dense`` (one dense gated MLP layer) or ``ffn_moe`` (one MoE layer:
                   routed experts the batch activates, plus shared experts)
``batch_size``     B, requests in the attention batch (0 for FFN rows)
``context_tokens`` KV tokens each request attends (0 for FFN rows)
``tokens``         tokens through the layer (B for attention, N for FFN)
``layer_time_s``   median wall time of one layer, seconds
``device``         what ran it (``cpu``, ``NVIDIA H100 80GB HBM3``, ...)
``dtype``          compute dtype (``bfloat16``, ``float32``)
=================  ==========================================================================

:func:`read_profile_csv` turns the rows into per-step times through all layers of a model:
t_A(B, s) = layers · attention(B, s) at L = B·s, and t_F(N) = dense layers · ffn_dense(N) +
MoE layers · ffn_moe(N).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from afdsizer._io import atomic_path, read_text_file
from afdsizer.cost._model import ModelSpec
from afdsizer.cost._silicon import StepMeasurements
from afdsizer.errors import DataFileError, InputError, TraceError

__all__ = ["PROFILE_COLUMNS", "PROFILE_KINDS", "read_profile_csv", "write_profile_csv"]

PROFILE_COLUMNS = (
    "kind",
    "batch_size",
    "context_tokens",
    "tokens",
    "layer_time_s",
    "device",
    "dtype",
)
"""Columns of a profile CSV, in order."""
PROFILE_KINDS = ("attention", "ffn_dense", "ffn_moe")
"""Allowed values of the ``kind`` column."""


def write_profile_csv(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write profile rows (mappings with :data:`PROFILE_COLUMNS`) atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PROFILE_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def _number(raw: str, *, where: str, column: str, integer: bool) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TraceError(
            f"{column} must be a number ({where}, column {column}), got {raw!r}"
        ) from None
    if not math.isfinite(value) or value < 0 or (integer and not value.is_integer()):
        rule = "an integer >= 0" if integer else "a finite number >= 0"
        raise TraceError(f"{column} must be {rule} ({where}, column {column}), got {raw!r}")
    return value


def read_profile_csv(path: str | Path, model: ModelSpec) -> StepMeasurements:
    """Read a profile CSV and compose per-step times of ``model`` (no communication points).

    Raises
    ------
    DataFileError
        The file cannot be read.
    TraceError
        A row breaks the format; the message names file, line and column.
    InputError
        The rows lack the kinds ``model`` needs (attention; ffn_dense and/or ffn_moe).
    """
    path = Path(path)
    attn: dict[tuple[float, float], list[float]] = defaultdict(list)
    ffn: dict[str, dict[float, list[float]]] = {k: defaultdict(list) for k in PROFILE_KINDS[1:]}
    devices: set[str] = set()
    try:
        with io.StringIO(read_text_file(path), newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PROFILE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise TraceError(f"{path} line 1: missing column(s) {', '.join(missing)}")
            for line, row in enumerate(reader, start=2):
                where = f"{path} line {line}"
                kind = row["kind"]
                if kind not in PROFILE_KINDS:
                    raise TraceError(
                        f"kind must be one of {', '.join(PROFILE_KINDS)} ({where}, column kind), "
                        f"got {kind!r}"
                    )
                t = _number(row["layer_time_s"], where=where, column="layer_time_s", integer=False)
                if t <= 0:
                    raise TraceError(f"layer_time_s must be > 0 s ({where}), got {t}")
                devices.add(row["device"])
                if kind == "attention":
                    b = _number(row["batch_size"], where=where, column="batch_size", integer=True)
                    s = _number(
                        row["context_tokens"], where=where, column="context_tokens", integer=True
                    )
                    if b < 1 or s < 1:
                        raise TraceError(
                            f"attention rows need batch_size and context_tokens >= 1 ({where}), "
                            f"got {b:g} and {s:g}"
                        )
                    attn[(b, s)].append(t)
                else:
                    n = _number(row["tokens"], where=where, column="tokens", integer=True)
                    if n < 1:
                        raise TraceError(f"tokens must be >= 1 ({where}, column tokens), got {n:g}")
                    ffn[kind][n].append(t)
    except OSError as exc:
        raise DataFileError(f"cannot read profile CSV {path}: {exc.strerror or exc}") from None
    if not attn:
        raise InputError(f"{path} has no attention rows")
    keys = sorted(attn)
    B = np.array([k[0] for k in keys])
    ctx = np.array([k[1] for k in keys])
    t_a = model.num_layers * np.array([float(np.median(attn[k])) for k in keys])

    needed = (["ffn_dense"] if model.num_dense_layers else []) + (
        ["ffn_moe"] if model.num_moe_layers else []
    )
    for kind in needed:
        if not ffn[kind]:
            raise InputError(f"{path} has no {kind} rows, which {model.name} needs")
    common = set.intersection(*(set(ffn[k]) for k in needed))
    N = np.array(sorted(common))
    t_f = np.zeros(N.shape)
    for kind in needed:
        layers = model.num_dense_layers if kind == "ffn_dense" else model.num_moe_layers
        t_f = t_f + layers * np.array([float(np.median(ffn[kind][n])) for n in N])
    return StepMeasurements(
        attention_batch=B,
        attention_load_tokens=B * ctx,
        attention_time_s=t_a,
        ffn_tokens=N,
        ffn_time_s=t_f,
        device=", ".join(sorted(devices)),
        filters={"profile_csv": str(path), "kinds": [*needed, "attention"]},
    )
