"""Trace formats: which columns hold P, D and the arrival time, recognised from the header.

A format is recognised from its column names (CSV, Parquet) or keys (JSON Lines), never from the
file name. Explicit ``prompt_col``/``decode_col`` (and optionally ``time_col``) select the generic
format for any other file. The formats are listed in ``shared/traces/README.md``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from afdsizer.errors import DataFileError, InputError, TraceError

__all__ = [
    "DATETIME_FORMAT",
    "DATETIME_FORMAT_ZONED",
    "KNOWN_FORMATS",
    "FileKind",
    "TimeKind",
    "TraceFormat",
    "detect_format",
    "file_kind",
    "plain_file",
    "read_columns",
]

FileKind = Literal["csv", "jsonl", "parquet"]
"""How the (decompressed) file is laid out."""
TimeKind = Literal["none", "seconds", "milliseconds", "datetime"]
"""How the arrival-time column is written."""

_JSONL_KEY_RECORDS = 100
"""JSON Lines records whose keys are pooled to recognise the format."""

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
"""Azure's absolute wall clock, e.g. ``2023-11-16 18:15:46.6805900`` (7 fractional digits)."""
DATETIME_FORMAT_ZONED = "%Y-%m-%d %H:%M:%S%.f%:z"
"""The same with a UTC offset, e.g. ``2024-05-10 00:00:00.009930+00:00``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceFormat:
    """Where one trace format keeps the prompt length P, decode length D and arrival time.

    Parameters
    ----------
    name : str
        Format name reported in :attr:`Trace.trace_format` (``"azure"``, ``"mooncake"``, ...).
    prompt_col, decode_col : str
        Columns (keys) holding P and D, in tokens.
    time_col : str or None
        Column holding the arrival time, or None when the format has no timestamps.
    time_kind : {"none", "seconds", "milliseconds", "datetime"}
        Unit of ``time_col``; ``"datetime"`` is an absolute wall clock (:data:`DATETIME_FORMAT`).
    zero_decode_is_failure : bool
        True where a row with D = 0 records a failed request (BurstGPT): such rows are dropped
        and counted as failed, not reported as malformed.
    """

    name: str
    prompt_col: str
    decode_col: str
    time_col: str | None = None
    time_kind: TimeKind = "none"
    zero_decode_is_failure: bool = False
    time_format: str = DATETIME_FORMAT
    """strptime format of a ``"datetime"`` clock (:data:`DATETIME_FORMAT` or the zoned one)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this format reads, in the order P, D, time."""
        cols = (self.prompt_col, self.decode_col)
        return cols if self.time_col is None else (*cols, self.time_col)


KNOWN_FORMATS: tuple[TraceFormat, ...] = (
    TraceFormat(
        name="azure",
        prompt_col="ContextTokens",
        decode_col="GeneratedTokens",
        time_col="TIMESTAMP",
        time_kind="datetime",
    ),
    TraceFormat(
        name="mooncake",
        prompt_col="input_length",
        decode_col="output_length",
        time_col="timestamp",
        time_kind="milliseconds",
    ),
    TraceFormat(
        name="burstgpt",
        prompt_col="Request tokens",
        decode_col="Response tokens",
        time_col="Timestamp",
        time_kind="seconds",
        zero_decode_is_failure=True,
    ),
    TraceFormat(name="vidur", prompt_col="num_prefill_tokens", decode_col="num_decode_tokens"),
)
"""Formats recognised from their columns, tried in this order."""


def file_kind(path: Path) -> tuple[FileKind, bool]:
    """Return the layout of ``path`` from its suffixes, and whether it is gzip-compressed.

    ``.csv``/``.tsv``/``.txt`` are CSV, ``.jsonl``/``.ndjson``/``.json`` JSON Lines, ``.parquet``
    Parquet; a trailing ``.gz`` means gzip. Anything else is read as CSV.
    """
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl", gz
    if last in (".parquet", ".pq"):
        return "parquet", gz
    return "csv", gz


@contextlib.contextmanager
def plain_file(path: Path) -> Iterator[Path]:
    """Yield a path to the uncompressed bytes of ``path``.

    A ``.gz`` file is decompressed by streaming into a temporary file (removed afterwards), so
    that polars can scan it lazily without holding the whole file in memory.

    Raises
    ------
    DataFileError
        If ``path`` does not exist or cannot be read.
    TraceError
        If a ``.gz`` file is not valid gzip.
    """
    if not path.is_file():
        raise DataFileError(f"trace file {path} does not exist or is not a file")
    _, gz = file_kind(path)
    if not gz:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="afdsizer-trace-") as tmp_dir:
        plain = Path(tmp_dir) / path.name[: -len(".gz")]
        limit = max(GUNZIP_FLOOR_BYTES, GUNZIP_MAX_RATIO * path.stat().st_size)
        try:
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                _copy_at_most(src, dst, limit, path)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{path.name} line 1: not a readable gzip file ({exc})") from None
        yield plain


GUNZIP_MAX_RATIO = 100
"""A trace decompressing to more than this many times its size is refused (CSV traces compress
about 5×; a file of zeros, a "decompression bomb", about 1000×), unless below the floor."""
GUNZIP_FLOOR_BYTES = 2**30
"""Decompressed size always accepted, bytes (1 GiB)."""


def _copy_at_most(src: Any, dst: Any, limit: int, path: Path) -> None:
    """Copy ``src`` to ``dst`` in 1 MiB chunks, refusing to write more than ``limit`` bytes."""
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise TraceError(
                f"{path.name} line 1: decompresses to more than {limit:,} bytes, "
                f"{GUNZIP_MAX_RATIO}x its size (a decompression bomb? gunzip it yourself if not)"
            )
        dst.write(chunk)


def read_columns(plain: Path, kind: FileKind, display_name: str) -> list[str]:
    """Return the column names (CSV header, Parquet schema, keys of the first JSON line).

    Raises
    ------
    TraceError
        If the file is empty, has no header, or its first record cannot be parsed.
    """
    if plain.stat().st_size == 0:
        raise TraceError(f"{display_name} is empty (line 1): expected a header or a first record")
    if kind == "parquet":
        try:
            return list(pl.read_parquet_schema(plain).keys())
        except Exception as exc:  # polars/pyarrow raise many types for a corrupt file
            detail = _first_line(exc)
            message = f"{display_name} row 1: not a readable Parquet file ({detail})"
            raise TraceError(message) from None
    if kind == "jsonl":
        return _jsonl_keys(plain, display_name)
    with plain.open("rb") as fh:
        header = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    if not header.strip():
        raise TraceError(f"{display_name} line 1: empty header, expected column names")
    try:
        names = pl.scan_csv(plain, infer_schema=False, encoding="utf8-lossy", n_rows=0)
        return list(names.collect_schema().names())
    except Exception as exc:  # polars raises ComputeError/NoDataError for odd headers
        detail = _first_line(exc)
        raise TraceError(f"{display_name} line 1: unreadable CSV header ({detail})") from None


def iter_json_objects(plain: Path, display_name: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield (line number, record) for each non-blank line of a JSON Lines file.

    Raises
    ------
    TraceError
        A line is not valid JSON, or not a JSON object; the message names the line.
    """
    with plain.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(
                    f"{display_name} line {line_no}: not valid JSON ({exc.msg}), "
                    "expected one JSON object per line"
                ) from None
            if not isinstance(record, dict):
                raise TraceError(
                    f"{display_name} line {line_no}: expected a JSON object, "
                    f"got {type(record).__name__}"
                )
            yield line_no, record


def _jsonl_keys(plain: Path, display_name: str) -> list[str]:
    """Union of the keys of the first records (a key absent from line 1 is still recognised)."""
    keys: dict[str, None] = {}
    seen = 0
    for _, record in iter_json_objects(plain, display_name):
        keys.update(dict.fromkeys(str(k) for k in record))
        seen += 1
        if seen >= _JSONL_KEY_RECORDS:
            break
    if not seen:
        raise TraceError(
            f"{display_name} has no JSON records (line 1): expected one object per line"
        )
    return list(keys)


def detect_format(
    columns: list[str],
    display_name: str,
    *,
    prompt_col: str | None,
    decode_col: str | None,
    time_col: str | None,
    header_line: int,
) -> TraceFormat:
    """Pick the format from the column names, or build the generic one from explicit columns.

    Parameters
    ----------
    columns : list of str
        Column names (keys) found in the file.
    display_name : str
        File name used in error messages.
    prompt_col, decode_col, time_col : str or None
        Explicit columns; ``prompt_col`` and ``decode_col`` go together. ``time_col`` alone
        overrides the time column of a recognised format (read as seconds).
    header_line : int
        The 1-based line the column names came from (1 for CSV headers and JSON Lines).

    Raises
    ------
    InputError
        If only one of ``prompt_col``/``decode_col`` is given.
    TraceError
        If an explicit column is missing, or no known format matches.
    """
    if (prompt_col is None) != (decode_col is None):
        raise InputError("--prompt-col and --decode-col go together: give both or neither")
    present = set(columns)
    if prompt_col is not None and decode_col is not None:
        fmt = TraceFormat(
            name="generic",
            prompt_col=prompt_col,
            decode_col=decode_col,
            time_col=time_col,
            time_kind="none" if time_col is None else "seconds",
        )
        _require_columns(fmt, present, display_name, header_line, columns)
        return fmt
    for known in KNOWN_FORMATS:
        if known.prompt_col in present and known.decode_col in present:
            fmt = known
            if time_col is not None:
                fmt = TraceFormat(
                    name=known.name,
                    prompt_col=known.prompt_col,
                    decode_col=known.decode_col,
                    time_col=time_col,
                    time_kind="seconds",
                    zero_decode_is_failure=known.zero_decode_is_failure,
                )
            elif known.time_col is not None and known.time_col not in present:
                # The lengths are there but the clock is not: still usable, without arrivals.
                fmt = TraceFormat(
                    name=known.name,
                    prompt_col=known.prompt_col,
                    decode_col=known.decode_col,
                    zero_decode_is_failure=known.zero_decode_is_failure,
                )
            _require_columns(fmt, present, display_name, header_line, columns)
            return fmt
    expected = "; ".join(f"{f.name}: {', '.join(f.columns)}" for f in KNOWN_FORMATS)
    raise TraceError(
        f"{display_name} line {header_line}: unknown trace format, columns "
        f"[{_shorten(', '.join(columns))}]; expected one of ({expected}) "
        "or explicit --prompt-col and --decode-col"
    )


def _require_columns(
    fmt: TraceFormat, present: set[str], display_name: str, header_line: int, columns: list[str]
) -> None:
    for col in fmt.columns:
        if col not in present:
            raise TraceError(
                f"{display_name} line {header_line}, column {col!r}: column missing; "
                f"found [{_shorten(', '.join(columns))}]"
            )


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return _shorten(lines[0] if lines else type(exc).__name__)
