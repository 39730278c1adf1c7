"""The in-memory request trace: :class:`Trace`, :func:`load_trace`, :func:`bundled_trace_path`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from afdsizer.errors import InputError, TraceError
from afdsizer.workload._formats import plain_file
from afdsizer.workload._scan import (
    DECODE,
    PROMPT,
    ROW,
    STATUS,
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    TIME_S,
    FastPathError,
    collect,
    open_scan,
)

__all__ = ["BUNDLED_TRACES", "Trace", "bundled_trace_path", "load_trace"]

BUNDLED_TRACES = {
    "azure_conv_2023": "azure_conv_2023.csv.gz",
    "azure_code_2023": "azure_code_2023.csv.gz",
}
"""Traces shipped in ``afdsizer/workload/data`` (Azure LLM inference 2023, CC-BY 4.0)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """A request trace: joint prompt and decode lengths, and arrival times when known.

    Parameters
    ----------
    prompt_tokens : ndarray of int64, shape (n,)
        P, prompt (KV context) length of each request on arrival, tokens, >= 0.
    decode_tokens : ndarray of int64, shape (n,)
        D, decode length of each request, tokens, >= 1.
    arrival_s : ndarray of float64, shape (n,), or None
        Arrival time in seconds since the first request (file order), or None without timestamps.
    source : str
        Where the trace came from (file path).
    trace_format : str
        Recognised format: ``azure``, ``mooncake``, ``burstgpt``, ``vidur``, ``generic``, or
        ``arrays`` when built directly.
    dropped_rows : int
        Malformed rows dropped with ``drop_invalid=True``.
    failed_rows : int
        Failed requests dropped (BurstGPT rows with 0 response tokens), not counted as malformed.

    Examples
    --------
    >>> import numpy as np
    >>> t = Trace(prompt_tokens=np.array([10, 20]), decode_tokens=np.array([3, 1]))
    >>> t.n_requests
    2
    """

    prompt_tokens: npt.NDArray[np.int64]
    decode_tokens: npt.NDArray[np.int64]
    arrival_s: npt.NDArray[np.float64] | None = None
    source: str = "<arrays>"
    trace_format: str = "arrays"
    dropped_rows: int = 0
    failed_rows: int = 0

    def __post_init__(self) -> None:
        prompt = np.asarray(self.prompt_tokens)
        decode = np.asarray(self.decode_tokens)
        if prompt.ndim != 1 or prompt.shape != decode.shape:
            raise InputError(
                "prompt_tokens and decode_tokens must be 1-D of equal length, "
                f"got shapes {prompt.shape} and {decode.shape}"
            )
        if prompt.size == 0:
            raise InputError("a trace needs at least one request, got 0")
        object.__setattr__(self, "prompt_tokens", _as_int64(prompt, "prompt_tokens", 0))
        object.__setattr__(self, "decode_tokens", _as_int64(decode, "decode_tokens", 1))
        if self.arrival_s is not None:
            arrival = np.asarray(self.arrival_s, dtype=np.float64)
            if arrival.shape != prompt.shape or not np.all(np.isfinite(arrival)):
                raise InputError(
                    f"arrival_s must be finite seconds with shape {prompt.shape}, "
                    f"got shape {arrival.shape}"
                )
            object.__setattr__(self, "arrival_s", arrival)

    @property
    def n_requests(self) -> int:
        """Number of requests n."""
        return int(self.prompt_tokens.size)


def _as_int64(values: npt.NDArray[np.generic], name: str, minimum: int) -> npt.NDArray[np.int64]:
    as_float = values.astype(np.float64)
    bad = ~np.isfinite(as_float) | (as_float < minimum) | (as_float != np.floor(as_float))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{name} must be whole numbers of tokens >= {minimum}, got {values[i]!r} at index {i}"
        )
    return values.astype(np.int64)


def bundled_trace_path(name: str = "azure_conv_2023") -> Path:
    """Path of a trace shipped with afdsizer.

    Parameters
    ----------
    name : {"azure_conv_2023", "azure_code_2023"}, default "azure_conv_2023"
        The Azure LLM inference 2023 conversation or code-completion sample (gzipped CSV,
        CC-BY 4.0, Patel et al., Splitwise, ISCA 2024).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        If ``name`` is not a bundled trace.

    Examples
    --------
    >>> bundled_trace_path().name
    'azure_conv_2023.csv.gz'
    """
    if name not in BUNDLED_TRACES:
        raise InputError(
            f"bundled trace must be one of {', '.join(sorted(BUNDLED_TRACES))}, got {name!r}"
        )
    return Path(str(resources.files("afdsizer.workload") / "data" / BUNDLED_TRACES[name]))


def load_trace(
    path: str | os.PathLike[str],
    *,
    prompt_col: str | None = None,
    decode_col: str | None = None,
    time_col: str | None = None,
    drop_invalid: bool = False,
) -> Trace:
    """Read a request trace into memory, recognising its format from its columns.

    Formats (``shared/traces/README.md``): Azure LLM inference CSV (``TIMESTAMP``,
    ``ContextTokens``, ``GeneratedTokens``; absolute wall clock), Mooncake JSON Lines
    (``timestamp`` in ms, ``input_length``, ``output_length``), BurstGPT CSV (``Timestamp`` in s,
    ``Request tokens``, ``Response tokens``), Vidur/Sarathi CSV (``num_prefill_tokens``,
    ``num_decode_tokens``), and any CSV / JSON Lines / Parquet with explicit columns. A ``.gz``
    suffix is decompressed transparently.

    Parameters
    ----------
    path : path-like
        The trace file.
    prompt_col, decode_col : str, optional
        Columns holding P and D (tokens); give both to read a file of any other layout.
    time_col : str, optional
        Column holding arrival times in seconds (overrides the format's own).
    drop_invalid : bool, default False
        Drop malformed rows and count them in :attr:`Trace.dropped_rows` instead of raising.

    Returns
    -------
    Trace
        Arrival times are shifted to seconds since the earliest request.

    Raises
    ------
    DataFileError
        If the file does not exist.
    TraceError
        Empty file, unknown format, missing column, or a malformed cell: a non-numeric, NaN,
        negative or fractional length, a zero decode length, or a bad timestamp. The message
        names the file, the 1-based line (header = line 1) and the column.

    Notes
    -----
    BurstGPT rows with 0 response tokens are failed requests: they are dropped and counted in
    :attr:`Trace.failed_rows`, never an error. Rows whose cells are all empty are skipped.

    Examples
    --------
    >>> trace = load_trace(bundled_trace_path())
    >>> trace.n_requests, trace.trace_format
    (19366, 'azure')
    """
    path = Path(path)
    columns = {"prompt_col": prompt_col, "decode_col": decode_col, "time_col": time_col}
    with plain_file(path) as plain:
        try:
            return _load(plain, path, columns, drop_invalid=drop_invalid, fast=True)
        except FastPathError:
            # A cell the typed CSV reader cannot parse: read text, which names it or drops it.
            return _load(plain, path, columns, drop_invalid=drop_invalid, fast=False)


def _load(
    plain: Path, path: Path, columns: dict[str, str | None], *, drop_invalid: bool, fast: bool
) -> Trace:
    scan = open_scan(plain, path.name, fast=fast, **columns)
    df = collect(scan.frame.select(ROW, PROMPT, DECODE, TIME_S, STATUS), scan, streaming=False)
    status = df.get_column(STATUS).to_numpy()
    invalid = status == STATUS_INVALID
    n_invalid = int(np.count_nonzero(invalid))
    if n_invalid and not drop_invalid:
        first_row = int(df.get_column(ROW).to_numpy()[np.flatnonzero(invalid)[0]])
        scan.raise_invalid_row(first_row, n_invalid=n_invalid)
    keep = df.filter(pl.col(STATUS) == STATUS_OK)
    n_failed = int(np.count_nonzero(status == STATUS_FAILED))
    if keep.height == 0:
        raise TraceError(
            f"{path.name} line 2: no valid requests ({n_invalid} malformed, {n_failed} failed "
            "rows), expected at least one row with P >= 0 and D >= 1 tokens"
        )
    arrival = None
    if scan.has_time:
        stamps = keep.get_column(TIME_S).to_numpy()
        arrival = stamps - stamps.min()
    return Trace(
        prompt_tokens=keep.get_column(PROMPT).to_numpy().astype(np.int64),
        decode_tokens=keep.get_column(DECODE).to_numpy().astype(np.int64),
        arrival_s=arrival,
        source=str(path),
        trace_format=scan.fmt.name,
        dropped_rows=n_invalid,
        failed_rows=n_failed,
    )
