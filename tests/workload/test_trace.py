"""Trace loaders: real traces, every recognised format, and the validation errors they raise."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import REL_TOL_README_THETA, TRACES, require_shared

from afdsizer.errors import DataFileError, InputError, TraceError
from afdsizer.workload import Trace, bundled_trace_path, estimate_slot_load, load_trace

# (file under shared/traces, rows, mean P, mean D, θ) as the traces README prints them.
README_TRACES = [
    ("azure_llm_2023/AzureLLMInferenceTrace_code.csv", 8_819, 2_047.8, 27.9, 2_130.4),
    ("azure_llm_2023/AzureLLMInferenceTrace_conv.csv", 19_366, 1_154.7, 211.1, 1_226.5),
    (
        "dataset_length_stats/sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
        30_731,
        2_340.0,
        438.7,
        2_690.9,
    ),
    (
        "dataset_length_stats/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv",
        28_257,
        2_588.1,
        291.4,
        2_419.7,
    ),
]

_HYPO = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize(("name", "rows", "mean_p", "mean_d", "theta"), README_TRACES)
def test_shared_traces_match_readme(
    name: str, rows: int, mean_p: float, mean_d: float, theta: float
) -> None:
    """Each shared trace loads with the README's row count, means and θ (to one decimal)."""
    trace = load_trace(require_shared(TRACES / name))
    assert trace.n_requests == rows
    assert trace.dropped_rows == 0
    assert round(float(trace.prompt_tokens.mean()), 1) == mean_p
    assert round(float(trace.decode_tokens.mean()), 1) == mean_d
    est = estimate_slot_load(trace.prompt_tokens, trace.decode_tokens)
    assert round(est.theta_tokens, 1) == theta
    assert est.theta_tokens == pytest.approx(theta, rel=REL_TOL_README_THETA)


def test_azure_arrivals_are_seconds_since_first_request() -> None:
    """Azure's wall clock becomes seconds since the first request; the README's span is 3,502 s."""
    trace = load_trace(require_shared(TRACES / "azure_llm_2023/AzureLLMInferenceTrace_conv.csv"))
    assert trace.trace_format == "azure"
    assert trace.arrival_s is not None
    assert trace.arrival_s.min() == 0.0
    assert round(float(trace.arrival_s.max())) == 3_502
    # First two stamps 18:15:46.6805900 and 18:15:50.9951690 (microsecond resolution).
    assert trace.arrival_s[1] - trace.arrival_s[0] == pytest.approx(4.314579, abs=2e-6)


@pytest.mark.parametrize("name", ["azure_conv_2023", "azure_code_2023"])
def test_bundled_traces_equal_shared_copies(name: str) -> None:
    """The gzipped bundled traces read as the same requests as the shared CSVs."""
    shared = TRACES / "azure_llm_2023" / f"AzureLLMInferenceTrace_{name.split('_')[1]}.csv"
    bundled = load_trace(bundled_trace_path(name))
    plain = load_trace(require_shared(shared))
    assert np.array_equal(bundled.prompt_tokens, plain.prompt_tokens)
    assert np.array_equal(bundled.decode_tokens, plain.decode_tokens)


def test_bundled_trace_path_rejects_unknown_name() -> None:
    """An unknown bundled name lists the known ones."""
    with pytest.raises(InputError, match="azure_code_2023, azure_conv_2023"):
        bundled_trace_path("sharegpt")


def test_mooncake_jsonl(tmp_path: Path) -> None:
    """Mooncake JSON Lines: ms timestamps → s, input/output lengths, extra keys ignored."""
    path = tmp_path / "mooncake.jsonl"
    records = [
        {"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [0, 1, 2]},
        {"timestamp": 1500, "input_length": 4000, "output_length": 3, "hash_ids": [3]},
        {"timestamp": 2500, "input_length": 0, "output_length": 1, "hash_ids": []},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    trace = load_trace(path)
    assert trace.trace_format == "mooncake"
    assert trace.prompt_tokens.tolist() == [6955, 4000, 0]
    assert trace.decode_tokens.tolist() == [52, 3, 1]
    assert trace.arrival_s is not None
    assert trace.arrival_s.tolist() == [0.0, 1.5, 2.5]


def test_burstgpt_failed_requests_are_dropped_and_counted(tmp_path: Path) -> None:
    """BurstGPT rows with 0 response tokens are failed requests, counted apart from bad rows."""
    path = tmp_path / "burst.csv"
    path.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "5,ChatGPT,472,18,490,Conversation log\n"
        "45,ChatGPT,1087,0,1087,Conversation log\n"
        "118,GPT-4,417,276,693,API log\n"
        "120,GPT-4,30,0,30,API log\n"
    )
    trace = load_trace(path)
    assert trace.trace_format == "burstgpt"
    assert trace.prompt_tokens.tolist() == [472, 417]
    assert trace.decode_tokens.tolist() == [18, 276]
    assert (trace.failed_rows, trace.dropped_rows) == (2, 0)
    assert trace.arrival_s is not None
    assert trace.arrival_s.tolist() == [0.0, 113.0]


def test_vidur_lengths_without_timestamps(tmp_path: Path) -> None:
    """Vidur/Sarathi length files have no clock: arrival_s is None."""
    path = tmp_path / "lengths.csv"
    path.write_text("num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n3,4,7,0.75\n")
    trace = load_trace(path)
    assert (trace.trace_format, trace.arrival_s) == ("vidur", None)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet", "csv.gz", "jsonl.gz"])
def test_generic_formats_with_explicit_columns(tmp_path: Path, kind: str) -> None:
    """Any CSV / JSON Lines / Parquet (gzipped too) reads with --prompt-col/--decode-col."""
    df = pl.DataFrame({"t": [10.0, 10.5, 12.0], "inp": [5, 7, 9], "out": [1, 2, 3], "x": "a"})
    base = kind.removesuffix(".gz")
    path = tmp_path / f"trace.{kind}"
    raw = tmp_path / f"raw.{base}"
    {"csv": df.write_csv, "jsonl": df.write_ndjson, "parquet": df.write_parquet}[base](raw)
    if kind.endswith(".gz"):
        path.write_bytes(gzip.compress(raw.read_bytes()))
    else:
        raw.rename(path)
    trace = load_trace(path, prompt_col="inp", decode_col="out", time_col="t")
    assert trace.trace_format == "generic"
    assert trace.prompt_tokens.tolist() == [5, 7, 9]
    assert trace.decode_tokens.tolist() == [1, 2, 3]
    assert trace.arrival_s is not None
    assert trace.arrival_s.tolist() == [0.0, 0.5, 2.0]


def test_crlf_no_final_newline_blank_lines_and_spaces(tmp_path: Path) -> None:
    """CRLF endings, a missing final newline, blank lines and padded cells are all fine."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"num_prefill_tokens,num_decode_tokens\r\n 1, 2\r\n\r\n3.0,4\r\n\r\n")
    trace = load_trace(path)
    assert trace.prompt_tokens.tolist() == [1, 3]
    assert trace.decode_tokens.tolist() == [2, 4]


# --- validation -------------------------------------------------------------------------------

VIDUR_HEADER = "num_prefill_tokens,num_decode_tokens"
BAD_LENGTHS = ["abc", "-3", "nan", "2.5", "inf", "1e400", "0x10", "--", "1_000"]


def _vidur_file(tmp_path: Path, rows: list[tuple[str, str]], name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(VIDUR_HEADER + "\n" + "".join(f"{p},{d}\n" for p, d in rows))
    return path


@pytest.mark.parametrize(
    ("cell", "column", "fragment"),
    [
        (("abc", "5"), "num_prefill_tokens", "prompt length P must be a whole number of tokens"),
        (("-3", "5"), "num_prefill_tokens", "got '-3'"),
        (("nan", "5"), "num_prefill_tokens", "(not finite), got 'nan'"),
        (("2.5", "5"), "num_prefill_tokens", "(fractional), got '2.5'"),
        (("4", ""), "num_decode_tokens", "(empty cell), got an empty cell"),
        (("4", "0"), "num_decode_tokens", "decode length D must be a whole number of tokens >= 1"),
    ],
)
def test_bad_cell_names_file_line_and_column(
    tmp_path: Path, cell: tuple[str, str], column: str, fragment: str
) -> None:
    """A bad cell on data row 3 is reported at line 4 (header = line 1) with its column."""
    path = _vidur_file(tmp_path, [("1", "1"), ("2", "2"), cell, ("3", "3")])
    with pytest.raises(TraceError) as info:
        load_trace(path)
    message = str(info.value)
    assert f"t.csv line 4, column '{column}'" in message
    assert fragment in message
    assert "\n" not in message


def test_drop_invalid_drops_and_counts(tmp_path: Path) -> None:
    """drop_invalid keeps the good rows and counts the bad ones."""
    rows = [("1", "1"), ("x", "2"), ("2", "0"), ("3", "3"), ("-1", "4")]
    trace = load_trace(_vidur_file(tmp_path, rows), drop_invalid=True)
    assert trace.prompt_tokens.tolist() == [1, 3]
    assert trace.dropped_rows == 3
    with pytest.raises(TraceError, match=r"line 3, .*\(3 invalid rows; --drop-invalid drops"):
        load_trace(_vidur_file(tmp_path, rows))


def test_all_rows_invalid_even_when_dropping(tmp_path: Path) -> None:
    """Dropping every row leaves nothing to estimate: a clear error, not an empty trace."""
    with pytest.raises(TraceError, match="no valid requests"):
        load_trace(_vidur_file(tmp_path, [("x", "1")]), drop_invalid=True)


def test_bad_azure_timestamp(tmp_path: Path) -> None:
    """A malformed Azure timestamp names its line and the TIMESTAMP column."""
    path = tmp_path / "az.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "yesterday,396,109\n"
    )
    with pytest.raises(TraceError, match=r"az.csv line 3, column 'TIMESTAMP': arrival time"):
        load_trace(path)


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (b"", {}, r"t.csv is empty \(line 1\)"),
        (b"\n\n", {}, r"t.csv line 1: empty header"),
        (b"a,b\n1,2\n", {}, r"t.csv line 1: unknown trace format, columns \[a, b\]"),
        (b"num_prefill_tokens,x\n1,2\n", {}, "unknown trace format"),
        (b"p,d\n1,2\n", {"prompt_col": "p", "decode_col": "q"}, r"line 1, column 'q': column"),
        (b"p,d\n1,2\n", {"prompt_col": "p", "decode_col": "d", "time_col": "t"}, "column 't'"),
        (VIDUR_HEADER.encode() + b"\n", {}, r"t.csv line 2: no valid requests"),
    ],
)
def test_file_level_errors(
    tmp_path: Path, content: bytes, kwargs: dict[str, str], match: str
) -> None:
    """Empty files, unknown formats and missing columns stop with the file and line named."""
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=match):
        load_trace(path, **kwargs)


def test_prompt_col_needs_decode_col(tmp_path: Path) -> None:
    """--prompt-col without --decode-col is a usage error."""
    with pytest.raises(InputError, match="--prompt-col and --decode-col go together"):
        load_trace(_vidur_file(tmp_path, [("1", "1")]), prompt_col="num_prefill_tokens")


def test_missing_file() -> None:
    """A path that does not exist raises DataFileError (an OSError)."""
    with pytest.raises(DataFileError, match="does not exist"):
        load_trace("/nonexistent/trace.csv")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"timestamp": 1, "input_length": "abc", "output_length": 2}', "'input_length'"),
        ('{"timestamp": 1, "input_length": -4, "output_length": 2}', "got '-4'"),
        ('{"timestamp": 1, "input_length": 3.5, "output_length": 2}', "got '3.5'"),
        ('{"timestamp": 1, "input_length": 3, "output_length": 0}', "'output_length'"),
        ('{"timestamp": 1, "input_length": 3}', "'output_length'.*empty cell"),
        ('{"timestamp": 1, "input_length": 3, "output_length": [2]}', "'output_length'"),
        ('{"timestamp": 1, "input_length": 3, "output_length": ', "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
    ],
)
def test_jsonl_bad_record_names_its_line(tmp_path: Path, line: str, match: str) -> None:
    """A bad JSON Lines record is named by its physical line (blank lines counted)."""
    good = '{"timestamp": 0, "input_length": 5, "output_length": 1}'
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n{good}\n")
    with pytest.raises(TraceError, match=rf"m.jsonl line 4\b.*{match}"):
        load_trace(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    """A .gz that is not gzip raises TraceError naming the file."""
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(TraceError, match=r"t\.csv\.gz line 1: not a readable gzip file"):
        load_trace(path)


def test_trace_value_object_validates() -> None:
    """Trace built from arrays checks shapes and lengths like the loaders do."""
    with pytest.raises(InputError, match="decode_tokens must be whole numbers of tokens >= 1"):
        Trace(prompt_tokens=np.array([1]), decode_tokens=np.array([0]))
    with pytest.raises(InputError, match="equal length"):
        Trace(prompt_tokens=np.array([1, 2]), decode_tokens=np.array([1]))


# --- property tests: malformed files give only TraceError with file/line/column ---------------


@_HYPO
@given(
    rows=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**5)), min_size=1, max_size=20),
    bad_row=st.integers(0, 19),
    bad_col=st.sampled_from([0, 1]),
    bad=st.sampled_from([*BAD_LENGTHS, ""]),
)
def test_property_one_bad_csv_cell(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int]],
    bad_row: int,
    bad_col: int,
    bad: str,
) -> None:
    """Corrupting any one cell gives a TraceError naming exactly that line and column."""
    cells = [[str(p), str(d)] for p, d in rows]
    bad_row %= len(cells)
    cells[bad_row][bad_col] = bad
    path = _vidur_file(tmp_path_factory.mktemp("h"), [(p, d) for p, d in cells])
    column = VIDUR_HEADER.split(",")[bad_col]
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert f"t.csv line {bad_row + 2}, column '{column}'" in str(info.value)
    dropped = load_trace(path, drop_invalid=True) if len(rows) > 1 else None
    if dropped is not None:
        assert dropped.n_requests == len(rows) - 1
        assert dropped.dropped_rows == 1


@_HYPO
@given(
    rows=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**5)), min_size=2, max_size=15),
    bad_row=st.integers(0, 14),
    key=st.sampled_from(["input_length", "output_length"]),
    bad=st.sampled_from(["abc", -3, 2.5, None, "", [1], {"a": 1}, "MISSING"]),
)
def test_property_one_bad_jsonl_value(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int]],
    bad_row: int,
    key: str,
    bad: object,
) -> None:
    """Corrupting any one JSON value gives a TraceError naming that line and key."""
    records: list[dict[str, object]] = [
        {"timestamp": 10 * i, "input_length": p, "output_length": d}
        for i, (p, d) in enumerate(rows)
    ]
    bad_row %= len(records)
    if bad == "MISSING":
        del records[bad_row][key]
    else:
        records[bad_row][key] = bad
    path = tmp_path_factory.mktemp("h") / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert f"m.jsonl line {bad_row + 1}, column '{key}'" in str(info.value)


@_HYPO
@given(
    data=st.binary(max_size=300),
    suffix=st.sampled_from([".csv", ".jsonl", ".parquet", ".csv.gz"]),
    explicit=st.booleans(),
)
def test_property_random_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str, explicit: bool
) -> None:
    """Random bytes never crash the loader: only a one-line TraceError naming file and line."""
    path = tmp_path_factory.mktemp("h") / f"r{suffix}"
    path.write_bytes(data)
    cols = {"prompt_col": "p", "decode_col": "d"} if explicit else {}
    with pytest.raises(TraceError) as info:
        load_trace(path, **cols)
    message = str(info.value)
    assert message.startswith(f"r{suffix}")
    assert re.search(r"\b(line|row) \d+", message)
    assert "\n" not in message


def test_quoted_field_spanning_lines_keeps_line_numbers_true(tmp_path: Path) -> None:
    """A quoted cell that spans two lines shifts later rows: the error names the true line."""
    path = tmp_path / "q.csv"
    path.write_text('p,d\n"1",2\n"3\n",4\n5,x\n')
    with pytest.raises(TraceError, match=r"q\.csv line 5, column 'd'"):
        load_trace(path, prompt_col="p", decode_col="d")


def test_unclosed_quote_names_its_line(tmp_path: Path) -> None:
    """An unclosed quote is reported at the line where the broken record starts."""
    path = tmp_path / "q.csv"
    path.write_text('p,d\n1,2\n"1,2\n3,4\n')
    with pytest.raises(TraceError, match=r"q\.csv line 3, columns p, d: a quoted field is not"):
        load_trace(path, prompt_col="p", decode_col="d")


@pytest.mark.parametrize("zone", [None, "UTC"])
def test_parquet_with_typed_datetime_clock(tmp_path: Path, zone: str | None) -> None:
    """An Azure trace stored as Parquet with a typed (zoned or naive) clock reads like the CSV."""
    csv_path = require_shared(TRACES / "azure_llm_2023/AzureLLMInferenceTrace_code.csv")
    df = pl.read_csv(csv_path, try_parse_dates=True)
    assert isinstance(df.schema["TIMESTAMP"], pl.Datetime)
    path = tmp_path / "az.parquet"
    df.with_columns(pl.col("TIMESTAMP").dt.replace_time_zone(zone)).write_parquet(path)
    from_parquet, from_csv = load_trace(path), load_trace(csv_path)
    assert from_parquet.trace_format == "azure"
    assert from_parquet.arrival_s is not None and from_csv.arrival_s is not None
    assert np.allclose(from_parquet.arrival_s, from_csv.arrival_s, rtol=0, atol=1e-6)
    assert np.array_equal(from_parquet.decode_tokens, from_csv.decode_tokens)


def test_azure_2024_clock_with_utc_offset(tmp_path: Path) -> None:
    """Azure 2024 stamps carry a UTC offset; offsets are honoured (seconds since the first)."""
    path = tmp_path / "az24.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,100,5\n"
        "2024-05-10 02:00:01.509930+02:00,200,6\n"
        "2024-05-10 00:00:03.009930+00:00,300,7\n"
    )
    trace = load_trace(path)
    assert trace.arrival_s is not None
    assert trace.arrival_s == pytest.approx([0.0, 1.5, 3.0], abs=1e-9)
    path.write_text(path.read_text().replace("+02:00", ""))
    with pytest.raises(TraceError, match=r"az24\.csv line 3, column 'TIMESTAMP'"):
        load_trace(path)
