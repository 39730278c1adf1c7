"""Sweep results on disk: a directory of Parquet part files, one per chunk of finished cells.

The ``-o results.parquet`` path is a **directory**; each chunk is written to a temporary file beside
that directory and renamed into it (atomic on one filesystem), so a reader never sees half a part
and a killed run loses only cells not yet written. ``polars.read_parquet(path)`` (and pyarrow,
dask, duckdb) read the directory as one table. Every part has the same schema, :data:`SCHEMA`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from afdsizer.errors import DataFileError, InputError

__all__ = ["RESULT_COLUMNS", "SCHEMA", "ResultStore", "read_results"]

_CELL_COLUMNS: dict[str, Any] = {
    "cell_key": pl.Utf8,
    "trace": pl.Utf8,
    "model": pl.Utf8,
    "hardware": pl.Utf8,
    "coefficients": pl.Utf8,
    "kv_dtype": pl.Utf8,
    "attn_gpus": pl.Int64,
    "ffn_gpus": pl.Int64,
    "batch": pl.Int64,
    "ratio_auto": pl.Boolean,
    "batch_auto": pl.Boolean,
    "seed": pl.Int64,
    "simulate": pl.Boolean,
    "steps": pl.Int64,
    "warmup_steps": pl.Int64,
    "pipeline": pl.Utf8,
    "microbatches": pl.Int64,
    "jitter_cv": pl.Float64,
    "refill": pl.Utf8,
    # The rest of the deployment the theory sizes for (afdsizer.deployment.Deployment).
    "attn_parallel": pl.Utf8,
    "ffn_parallel": pl.Utf8,
    "deploy_microbatches": pl.Int64,
    "deploy_pipeline": pl.Utf8,
    "layers": pl.Int64,
    "barrier": pl.Utf8,
    "kv_quantile": pl.Float64,
    "tpot_target_s": pl.Float64,
    "tpot_p99_target_s": pl.Float64,
    "objective": pl.Utf8,
    "moe_routing": pl.Utf8,
    "sim_seed": pl.Int64,
    "theta_tokens": pl.Float64,
    "slot_load_std_tokens": pl.Float64,
    "alpha_attn_s": pl.Float64,
    "beta_attn_s_per_token": pl.Float64,
    "alpha_comm_s": pl.Float64,
    "beta_comm_s_per_token": pl.Float64,
    "alpha_ffn_s": pl.Float64,
    "beta_ffn_s_per_token": pl.Float64,
    "gamma_comm_s_per_token": pl.Float64,
    "kv_capacity_tokens": pl.Float64,
}

RESULT_COLUMNS: dict[str, Any] = {
    # The B and r evaluated: the grid's, or the theory's for ``batch: auto`` / ``ratio: auto``.
    "batch": pl.Int64,
    "ratio": pl.Int64,
    "r_star": pl.Float64,
    "r_star_mean_field": pl.Float64,
    "r_int": pl.Int64,
    "r_int_mean_field": pl.Int64,
    "regime": pl.Utf8,
    "barrier_model": pl.Utf8,
    "r_attention": pl.Float64,
    "r_attention_barrier": pl.Float64,
    "r_communication": pl.Float64,
    "r_peak": pl.Float64,
    "gpus_per_bundle": pl.Int64,
    "theory_throughput_per_gpu": pl.Float64,
    "theory_throughput_per_instance": pl.Float64,
    "theory_throughput_per_instance_mean_field": pl.Float64,
    "theory_step_time_s": pl.Float64,
    "theory_attention_idle": pl.Float64,
    "theory_ffn_idle": pl.Float64,
    # t_F as the theory linearised it (re-linearised at the operating point for a roofline case).
    "theory_alpha_ffn_s": pl.Float64,
    "theory_beta_ffn_s_per_token": pl.Float64,
    "sim_throughput_per_instance": pl.Float64,
    "sim_throughput_stderr": pl.Float64,
    "sim_tokens_per_s": pl.Float64,
    "sim_step_time_mean_s": pl.Float64,
    "sim_step_time_p99_s": pl.Float64,
    "sim_attention_idle": pl.Float64,
    "sim_ffn_idle": pl.Float64,
    "sim_barrier_idle": pl.Float64,
    "sim_mean_slot_load_tokens": pl.Float64,
    "sim_tpot_p50_s": pl.Float64,
    "sim_tpot_p99_s": pl.Float64,
    "sim_completed_requests": pl.Int64,
    "theory_wall_s": pl.Float64,
    "sim_wall_s": pl.Float64,
}
"""Columns a cell function may fill (theory, simulation, timings); the rest describe the cell."""

SCHEMA: dict[str, Any] = {**_CELL_COLUMNS, **RESULT_COLUMNS, "error": pl.Utf8}
"""Column name → polars dtype of every part file. ``error`` is null for a cell that succeeded,
``"ExceptionType: message"`` for one that failed; columns ending ``_wall_s`` are timings (s) and
the only ones that may differ between two runs of the same spec."""

_PART_GLOB = "part-*.parquet"


class ResultStore:
    """The part-file directory of one sweep output.

    Parameters
    ----------
    path : str or Path
        The ``-o`` path; created as a directory if absent.

    Raises
    ------
    InputError
        ``path`` exists and is not a directory of sweep parts (e.g. a plain Parquet file).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(
                f"-o {self.path}: exists and is a file; a sweep writes a directory of Parquet "
                "parts there (give a new path, or the directory of an earlier sweep to resume)"
            )
        self._run_id = uuid.uuid4().hex[:12]
        self._seq = 0

    def parts(self) -> list[Path]:
        """The part files written so far, sorted by name."""
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob(_PART_GLOB))

    def done_keys(self) -> set[str]:
        """Keys of the cells already recorded (succeeded or failed).

        Raises
        ------
        DataFileError
            A part file cannot be read.
        """
        keys: set[str] = set()
        for part in self.parts():
            try:
                column = pl.read_parquet(part, columns=["cell_key"])["cell_key"]
            except Exception as exc:  # polars raises several types for a damaged file
                raise DataFileError(f"{part}: cannot read sweep part ({exc})") from None
            keys.update(column.to_list())
        return keys

    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        """Write ``rows`` as one new part file, atomically; return its path (None if no rows)."""
        if not rows:
            return None
        frame = pl.from_dicts(list(rows), schema=SCHEMA)
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"part-{self._run_id}-{self._seq:06d}.parquet"
        self._seq += 1
        # The temporary file lives beside the directory, not in it: a reader globbing the
        # directory must never meet a half-written file.
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        os.close(fd)
        try:
            frame.write_parquet(tmp_name)
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return target


def read_results(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Read a sweep's output directory as one table, sorted by ``cell_key``.

    Parameters
    ----------
    path : str or Path
        The ``-o`` path of :func:`afdsizer.sweep.run_sweep`.

    Returns
    -------
    polars.DataFrame
        One row per recorded cell, columns :data:`SCHEMA` (empty frame if nothing ran yet).

    Raises
    ------
    DataFileError
        ``path`` is not a sweep output directory.
    """
    store_path = Path(path)
    if not store_path.is_dir():
        raise DataFileError(f"{store_path}: not a sweep output directory")
    parts = sorted(store_path.glob(_PART_GLOB))
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return pl.read_parquet(parts).sort("cell_key")
