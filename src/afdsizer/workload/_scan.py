"""Lazy, validating scan of a trace file: the one code path under load_trace and summarize_trace.

Cells are read as text and converted here, so that a bad cell is found (and named with its file
line and column) instead of making the reader fail somewhere inside polars. Every row gets a
status code; loaders keep ``STATUS_OK`` rows, drop the others with ``drop_invalid``, or raise a
:class:`TraceError` naming the first invalid row.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from afdsizer.errors import TraceError
from afdsizer.workload._formats import (
    DATETIME_FORMAT_ZONED,
    FileKind,
    TraceFormat,
    detect_format,
    file_kind,
    iter_json_objects,
    read_columns,
)

__all__ = [
    "MAX_LENGTH_TOKENS",
    "STATUS_BLANK",
    "STATUS_FAILED",
    "STATUS_INVALID",
    "STATUS_OK",
    "FastPathError",
    "TraceScan",
    "collect",
    "collect_all",
    "open_scan",
]

STATUS_OK = 0
"""A valid request."""
STATUS_BLANK = 1
"""An empty line (every cell empty): skipped silently, like a trailing newline."""
STATUS_FAILED = 2
"""A failed request (BurstGPT: 0 response tokens): dropped and counted as failed."""
STATUS_INVALID = 3
"""A malformed row: an error, or dropped and counted with ``drop_invalid``."""

_CLOCK_SAMPLE_ROWS = 100
"""Rows read to decide whether a wall clock carries a UTC offset."""
_ZONE_RE = re.compile(r"[+-]\d\d:?\d\d$")

MAX_LENGTH_TOKENS = 2**31 - 1
"""Largest accepted P or D in tokens; keeps P·D and Σ(P+k)² far from int64/float64 trouble."""

# Internal column names of the scanned frame.
ROW = "__row"
P_RAW, D_RAW, T_RAW = "__p_raw", "__d_raw", "__t_raw"
PROMPT, DECODE, TIME_S, STATUS = "prompt", "decode", "time_s", "status"

_NUMERIC_KINDS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceScan:
    """A recognised trace file and its lazy, validated frame.

    ``frame`` has the columns ``__row`` (0-based data row), ``prompt`` and ``decode`` (Float64,
    tokens), ``time_s`` (Float64 seconds, absolute, or null without timestamps) and ``status``
    (one of the ``STATUS_*`` codes). It reads ``plain``, which must outlive every collect.
    """

    plain: Path
    display_name: str
    kind: FileKind
    fmt: TraceFormat
    frame: pl.LazyFrame
    fast: bool = False
    """Whether numeric columns are parsed by the CSV reader itself (see :func:`open_scan`)."""

    @property
    def has_time(self) -> bool:
        """Whether the format carries arrival times."""
        return self.fmt.time_col is not None

    def raise_invalid_row(self, row: int, *, n_invalid: int) -> None:
        """Raise the :class:`TraceError` describing data row ``row`` (0-based).

        Reads that one row's raw cells again and says which column breaks which rule.
        """
        raw = (
            _raw_frame(self.plain, self.kind, self.fmt, fast=False)
            .filter(pl.col(ROW) == row)
            .collect()
            .row(0, named=True)
        )
        where = self.location(row)
        more = f" ({n_invalid} invalid rows; --drop-invalid drops them)" if n_invalid > 1 else ""
        checks = [
            (self.fmt.prompt_col, raw[P_RAW], "prompt length P", 0),
            (self.fmt.decode_col, raw[D_RAW], "decode length D", 1),
        ]
        for col, text, what, minimum in checks:
            problem = _length_problem(text, minimum)
            if problem is not None:
                raise TraceError(
                    f"{where}, column {col!r}: {what} must be a whole number of tokens "
                    f">= {minimum}{problem}, got {_show(text)}{more}"
                )
        time_text = raw.get(T_RAW)
        if self.fmt.time_col is None:
            raise TraceError(f"{where}: row does not parse{more}")
        rule = (
            f"a timestamp in format {self.fmt.time_format}"
            if self.fmt.time_kind == "datetime"
            else "a finite number"
        )
        raise TraceError(
            f"{where}, column {self.fmt.time_col!r}: arrival time must be {rule}, "
            f"got {_show(time_text)}{more}"
        )

    def location(self, row: int) -> str:
        """Name data row ``row`` (0-based) as the file and its 1-based line (header = line 1)."""
        if self.kind == "csv":
            return f"{self.display_name} line {_csv_line_of_record(self.plain, row)}"
        if self.kind == "jsonl":
            return f"{self.display_name} line {_jsonl_line_of_record(self.plain, row)}"
        return f"{self.display_name} row {row + 1}"


def open_scan(
    plain: Path,
    display_name: str,
    *,
    prompt_col: str | None,
    decode_col: str | None,
    time_col: str | None,
    fast: bool = False,
) -> TraceScan:
    """Recognise the format of the uncompressed file ``plain`` and build its lazy frame.

    With ``fast=True`` a CSV's numeric columns are parsed as Float64 by the reader (twice as
    fast as reading text); a cell it cannot parse makes :func:`collect` raise
    :class:`FastPathError`, and the caller retries with ``fast=False``, which reads text and
    names the bad cell.

    Raises
    ------
    TraceError
        Empty file, unreadable header, unknown format or missing column.
    """
    kind, _ = file_kind(Path(display_name))
    columns = read_columns(plain, kind, display_name)
    fmt = detect_format(
        columns,
        display_name,
        prompt_col=prompt_col,
        decode_col=decode_col,
        time_col=time_col,
        header_line=1,
    )
    fast = fast and kind == "csv"
    if fmt.time_kind == "datetime" and _zoned_clock(plain, kind, fmt):
        fmt = dataclasses.replace(fmt, time_format=DATETIME_FORMAT_ZONED)
    if kind == "parquet" and fmt.time_col is not None and _native_clock(plain, fmt.time_col):
        # A typed Parquet datetime column is read as seconds since the epoch (_raw_frame).
        fmt = dataclasses.replace(fmt, time_kind="seconds")
    frame = _with_status(_typed(_raw_frame(plain, kind, fmt, fast=fast), fmt), fmt)
    return TraceScan(
        plain=plain, display_name=display_name, kind=kind, fmt=fmt, frame=frame, fast=fast
    )


class FastPathError(Exception):
    """The fast (typed) CSV read hit a cell it cannot parse: retry with ``fast=False``."""


def collect(frame: pl.LazyFrame, scan: TraceScan, *, streaming: bool) -> pl.DataFrame:
    """Collect ``frame``, turning reader failures into a :class:`TraceError` with a location."""
    try:
        return frame.collect(engine="streaming" if streaming else "auto")
    except pl.exceptions.PolarsError as exc:
        if scan.fast:
            raise FastPathError from None
        raise _reader_error(scan, exc) from None


def collect_all(
    frames: list[pl.LazyFrame], scan: TraceScan, *, streaming: bool
) -> list[pl.DataFrame]:
    """Collect several queries over the same scan together (polars shares the file read)."""
    try:
        return pl.collect_all(frames, engine="streaming" if streaming else "auto")
    except pl.exceptions.PolarsError as exc:
        if scan.fast:
            raise FastPathError from None
        raise _reader_error(scan, exc) from None


def _raw_frame(plain: Path, kind: FileKind, fmt: TraceFormat, *, fast: bool) -> pl.LazyFrame:
    """The needed columns (``__p_raw``, ``__d_raw``, ``__t_raw``) plus ``__row``.

    Text, except with ``fast``: then numeric columns arrive as Float64 from the CSV reader.
    """
    if fast:
        numeric = [fmt.prompt_col, fmt.decode_col]
        if fmt.time_col is not None and fmt.time_kind in ("seconds", "milliseconds"):
            numeric.append(fmt.time_col)
        lf = pl.scan_csv(
            plain,
            infer_schema=False,
            schema_overrides=dict.fromkeys(numeric, pl.Float64),
            raise_if_empty=False,
        ).select(fmt.columns)
        exprs = [
            pl.col(fmt.prompt_col).alias(P_RAW),
            pl.col(fmt.decode_col).alias(D_RAW),
            (_time_cell(fmt) if fmt.time_col else pl.lit(None, pl.String)).alias(T_RAW),
        ]
        return lf.with_row_index(ROW).select(pl.col(ROW).cast(pl.Int64), *exprs)
    if kind == "csv":
        lf = pl.scan_csv(
            plain,
            infer_schema=False,
            encoding="utf8-lossy",
            raise_if_empty=False,
        )
    elif kind == "jsonl":
        lf = pl.scan_ndjson(plain, schema=dict.fromkeys(fmt.columns, pl.String))
    else:
        lf = pl.scan_parquet(plain)
    time_text = pl.lit(None, pl.String)
    if fmt.time_col is not None:
        time_text = _as_text(fmt.time_col)
        if kind == "parquet" and _native_clock(plain, fmt.time_col):
            epoch_s = pl.col(fmt.time_col).dt.epoch("us").cast(pl.Float64) / 1e6
            time_text = epoch_s.cast(pl.String)
    lf = lf.select(fmt.columns).with_row_index(ROW)
    exprs = [
        _as_text(fmt.prompt_col).alias(P_RAW),
        _as_text(fmt.decode_col).alias(D_RAW),
        time_text.alias(T_RAW),
    ]
    return lf.select(pl.col(ROW).cast(pl.Int64), *exprs)


def _zoned_clock(plain: Path, kind: FileKind, fmt: TraceFormat) -> bool:
    """Whether the first wall-clock stamps end in a UTC offset (Azure 2024: ``+00:00``)."""
    head = _raw_frame(plain, kind, fmt, fast=False).head(_CLOCK_SAMPLE_ROWS).select(T_RAW)
    try:
        stamps = head.collect().get_column(T_RAW).drop_nulls()
    except pl.exceptions.PolarsError:
        return False  # the full read reports what is wrong, with its line
    return stamps.len() > 0 and _ZONE_RE.search(str(stamps[0])) is not None


def _native_clock(plain: Path, col: str) -> bool:
    """Whether Parquet column ``col`` is a typed datetime (any unit, with or without zone)."""
    dtype = pl.read_parquet_schema(plain).get(col)
    return isinstance(dtype, pl.Datetime)


def _time_cell(fmt: TraceFormat) -> pl.Expr:
    # Numeric clocks are Float64 already; wall-clock text is stripped as on the text path.
    assert fmt.time_col is not None
    col = pl.col(fmt.time_col)
    return col.str.strip_chars() if fmt.time_kind == "datetime" else col


def _as_text(col: str) -> pl.Expr:
    # Parquet columns may be numeric; CSV/JSONL ones are already text. Strip stray spaces.
    return pl.col(col).cast(pl.String).str.strip_chars()


def _typed(raw: pl.LazyFrame, fmt: TraceFormat) -> pl.LazyFrame:
    """Add ``prompt``, ``decode``, ``time_s`` as Float64 (null where a cell does not parse)."""
    if fmt.time_kind == "datetime":
        # exact=True and no cache: every stamp is distinct, and this halves the parse time.
        zoned = fmt.time_format == DATETIME_FORMAT_ZONED
        stamp = pl.col(T_RAW).str.strptime(
            pl.Datetime("us", "UTC" if zoned else None),
            fmt.time_format,
            strict=False,
            exact=True,
            cache=False,
        )
        time_s = stamp.dt.epoch("us").cast(pl.Float64) / 1e6
    elif fmt.time_kind == "milliseconds":
        time_s = pl.col(T_RAW).cast(pl.Float64, strict=False) / 1e3
    elif fmt.time_kind == "seconds":
        time_s = pl.col(T_RAW).cast(pl.Float64, strict=False)
    else:
        time_s = pl.lit(None, pl.Float64)
    return raw.with_columns(
        pl.col(P_RAW).cast(pl.Float64, strict=False).alias(PROMPT),
        pl.col(D_RAW).cast(pl.Float64, strict=False).alias(DECODE),
        time_s.alias(TIME_S),
    )


def _length_ok(col: str, minimum: int) -> pl.Expr:
    x = pl.col(col)
    return (
        x.is_not_null()
        & x.is_finite()
        & (x >= minimum)
        & (x <= MAX_LENGTH_TOKENS)
        & (x == x.floor())
    ).fill_null(False)


def _with_status(typed: pl.LazyFrame, fmt: TraceFormat) -> pl.LazyFrame:
    blank = pl.col(P_RAW).is_null() & pl.col(D_RAW).is_null()
    if fmt.time_col is not None:
        blank = blank & pl.col(T_RAW).is_null()
        time_ok = pl.col(TIME_S).is_not_null() & pl.col(TIME_S).is_finite()
    else:
        time_ok = pl.lit(True)
    ok = _length_ok(PROMPT, 0) & _length_ok(DECODE, 1) & time_ok.fill_null(False)
    failed = (pl.col(DECODE) == 0).fill_null(False) if fmt.zero_decode_is_failure else pl.lit(False)
    status = (
        pl.when(blank)
        .then(STATUS_BLANK)
        .when(failed)
        .then(STATUS_FAILED)
        .when(ok)
        .then(STATUS_OK)
        .otherwise(STATUS_INVALID)
        .cast(pl.Int8)
    )
    return typed.select(ROW, PROMPT, DECODE, TIME_S, status.alias(STATUS))


def _length_problem(text: str | None, minimum: int) -> str | None:
    """Why ``text`` is not a valid length (a short suffix for the message), or None if it is."""
    if text is None or text == "":
        return " (empty cell)"
    try:
        # Python accepts "1_000"; polars does not, and polars decides validity.
        value = float(text) if "_" not in text else float("x")
    except ValueError:
        return " (not a number)"
    if value != value or value in (float("inf"), float("-inf")):
        return " (not finite)"
    if value != int(value):
        return " (fractional)"
    if value < minimum:
        return ""  # the rule in the message already says it
    if value > MAX_LENGTH_TOKENS:
        return f" and <= {MAX_LENGTH_TOKENS}"
    return None


def _show(text: str | None) -> str:
    if text is None:
        return "an empty cell"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _csv_multiline_record(plain: Path) -> int | None:
    """Start line of the first CSV record that spans lines (an unclosed quote), if any."""
    with plain.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            for _ in reader:
                if reader.line_num > start:
                    return start
                start = reader.line_num + 1
        except csv.Error:
            return start
    return None


def _csv_ragged_record(plain: Path) -> tuple[int, int, int] | None:
    """(start line, fields, header columns) of the first CSV record longer than the header.

    polars refuses such a row without saying where; this finds it (on the error path only).
    """
    with plain.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        try:
            n_columns = len(next(reader, []))
            start = reader.line_num + 1
            for record in reader:
                if len(record) > n_columns:
                    return start, len(record), n_columns
                start = reader.line_num + 1
        except csv.Error:
            return None  # an unclosed quote: reported by _csv_multiline_record
    return None


def _has_quote(plain: Path) -> bool:
    with plain.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            if b'"' in chunk:
                return True
    return False


def _csv_line_of_record(plain: Path, record: int) -> int:
    """1-based file line where CSV data record ``record`` (0-based) starts.

    polars keeps blank lines as (null) rows, so without quoted fields record k sits on line
    k + 2. A quoted field may span lines; then Python's csv module counts the physical lines
    (only on this error path, since it is slow).
    """
    if not _has_quote(plain):
        return record + 2
    with plain.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            for index, _ in enumerate(reader, start=-1):  # index -1 is the header
                if index == record:
                    return start
                start = reader.line_num + 1
        except csv.Error:
            return start
    return start


def _jsonl_line_of_record(plain: Path, record: int) -> int:
    """1-based file line of JSON record ``record`` (0-based): blank lines hold no record."""
    seen = -1
    line_no = 0
    with plain.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if raw.strip():
                seen += 1
                if seen == record:
                    return line_no
    return line_no + 1


def _reader_error(scan: TraceScan, exc: BaseException) -> TraceError:
    """Locate what polars could not read; JSON Lines are re-read line by line to find it."""
    if scan.kind == "jsonl":
        try:
            for line_no, record in iter_json_objects(scan.plain, scan.display_name):
                for col in scan.fmt.columns:
                    value = record.get(col)
                    if isinstance(value, dict | list):
                        return TraceError(
                            f"{scan.display_name} line {line_no}, column {col!r}: expected a "
                            f"number, got a JSON {type(value).__name__}"
                        )
        except TraceError as err:
            return err
    lines = str(exc).strip().splitlines()
    detail = " ".join((lines[0] if lines else type(exc).__name__).split())[:160]
    if scan.kind == "csv":
        ragged = _csv_ragged_record(scan.plain)
        if ragged is not None:
            start, n_fields, n_columns = ragged
            return TraceError(
                f"{scan.display_name} line {start}: {n_fields} fields under a {n_columns}-column "
                "header (a ragged row: a missing quote, or a stray delimiter?)"
            )
        line = _csv_multiline_record(scan.plain)
        if line is not None:
            return TraceError(
                f"{scan.display_name} line {line}, columns {', '.join(scan.fmt.columns)}: "
                f"a quoted field is not closed on its line ({detail})"
            )
    return TraceError(
        f"{scan.display_name} line ?, columns {', '.join(scan.fmt.columns)}: "
        f"the {scan.kind} reader failed ({detail})"
    )
