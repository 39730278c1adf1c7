"""Hostile input across the CLI: one clear line, exit 2, no traceback, nothing written.

Three parts. First, every failure of issue 13's table, rerun as a user typed it (with its kin:
other loaders, other output options). Then every file option of every command against every
hostile file (binary, empty, endless ``/dev/zero``, aliased, deeply nested, a folder...). Last,
hypothesis-generated options and file contents for every command, under one oracle: the command
exits 0 or 2; on 2 it prints one line starting ``afdsizer: error:`` and no traceback; it writes
no file it was not asked for, and every input stays byte-identical.

Everything runs in-process (``afdsizer.cli.main``) in a fresh folder that is snapshotted before
and after each run, so "nothing written" and "inputs intact" are checked byte for byte. The
generated part runs 50 examples (about 20 s); ``AFDSIZER_HOSTILE_EXAMPLES=1000`` explores more.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import CliResult

from afdsizer.workload import bundled_trace_path

TIME_LIMIT_S = 20.0
"""A refused command answers in well under this (in-process, after imports are warm)."""
ERROR_PREFIX = "afdsizer: error: "

COEFFS = {
    "alpha_attn_s": 2.0e-3,
    "beta_attn_s_per_token": 4.0e-8,
    "alpha_comm_s": 1.0e-3,
    "beta_comm_s_per_token": 2.0e-6,
    "alpha_ffn_s": 6.0e-3,
    "beta_ffn_s_per_token": 1.5e-5,
}
"""A hand-made cost case (s, s/token)."""

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]"
            for p, x in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
"""Nine lines that alias-expand to 9**9 = 387 million strings."""

TRACE_CSV = "ContextTokens,GeneratedTokens\n100,10\n300,5\n50,40\n1000,2\n20,20\n"


Snapshot = dict[str, bytes | None]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root``: file bytes, or None for a folder."""
    out: Snapshot = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = path.read_bytes() if path.is_file() else None
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder holding the inputs the cases name, as the current directory."""
    (tmp_path / "t.csv").write_text(TRACE_CSV)
    (tmp_path / "t.csv.gz").write_bytes(bundled_trace_path().read_bytes())
    (tmp_path / "coeffs.json").write_text(json.dumps(COEFFS))
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    (tmp_path / "ragged.csv").write_text(
        "ContextTokens,GeneratedTokens,TIMESTAMP\n10,20,1.0\n4,5,6,7,8,9\n3,4,5\n"
    )
    (tmp_path / "X.csv").write_text("kind,batch\nattention,1\n")
    (tmp_path / "folder").mkdir()
    base = {"traces": ["t.csv"], "coefficients": ["coeffs.json"], "batch": [16]}
    specs = {
        "huge.yaml": {**base, "batch": list(range(1, 1001)), "ratio": list(range(1, 1001)),
                      "seeds": list(range(1000)), "simulate": {"steps": 100}},
        "steps.yaml": {**base, "ratio": [2], "simulate": {"steps": 10**12}},
        "microbatch.yaml": {**base, "ratio": [2],
                            "simulate": {"steps": 100, "pipeline": ["microbatch"],
                                         "microbatches": [3]}},
        "ok.yaml": {**base, "ratio": [2]},
    }  # fmt: skip
    for name, spec in specs.items():
        (tmp_path / name).write_text(yaml.safe_dump(spec))
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def assert_refused(result: CliResult, elapsed_s: float) -> str:
    """Exit 2, one stderr line with the error prefix, no traceback, fast; return the line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert elapsed_s < TIME_LIMIT_S, f"took {elapsed_s:.1f} s"
    return lines[0]


ISSUE_CASES: list[tuple[str, str, str]] = [
    # (issue row, command line, a word the message must contain)
    ("1", "workload t.csv --ci bootstrap --seed -1 --bootstrap-samples 50", "--seed"),
    ("2", "report -o r.html --seed -1 --sim-steps 200", "--seed"),
    ("3", "simulate --batch 16 --steps 500 --ratio 1000000000", "--max-memory-gb"),
    ("4", "simulate --ratio 2 --batch 16 --steps 1000000000000", "memory"),
    ("4b", "simulate --ratio 64 --batch 512 --steps 100000000 --max-hours 1", "--max-hours"),
    ("4c", "report -o r.html --sim-steps 1000000000000 --coeffs coeffs.json", "--sim-steps"),
    ("4d", "validate --quick --steps 1000000000000", "--steps"),
    ("5", "cost --hardware bomb.yaml", "aliases"),
    ("5b", "size --coeffs bomb.yaml", "aliases"),
    ("5c", "sweep bomb.yaml -o out", "aliases"),
    ("5d", "simulate --ratio 2 --batch 4 --steps 10 --coeffs bomb.yaml", "aliases"),
    ("5e", "cost --profile bomb.yaml", "aliases"),
    ("6", "sweep huge.yaml -o out", "--max-cells"),
    ("7", "sweep steps.yaml -o out", "simulate.steps"),
    ("8", "sweep microbatch.yaml -o out", "microbatches"),
    ("9", "workload ragged.csv", "line 3"),
    ("9b", "simulate --ratio 2 --batch 4 --steps 10 --trace ragged.csv", "line 3"),
    ("11", "report -o folder --coeffs coeffs.json --sim-steps 0", "directory"),
    ("12", "report -o /proc/afdsizer.html --coeffs coeffs.json --sim-steps 0", "/proc"),
    ("13", "report -o /sys/afdsizer.html --coeffs coeffs.json --sim-steps 0", "/sys"),
    ("14", "report -o t.csv/r.html --coeffs coeffs.json --sim-steps 0", "not a directory"),
    ("15", "simulate --ratio 2 --batch 4 --steps 10 --series-out folder", "directory"),
    ("15b", "simulate --ratio 2 --batch 4 --steps 10 --series-out /dev/null", "/dev"),
    ("16", "sweep ok.yaml -o t.csv/out", "not a directory"),
    ("kin-workers", "sweep ok.yaml -o out --workers 100000", "--workers"),
    ("16b", "sweep ok.yaml -o /proc/out", "/proc"),
    ("17", "validate --quick --markdown folder", "directory"),
    ("18", "report -o t.csv.gz --trace t.csv.gz --sim-steps 0", "--trace input"),
    ("19", "calibrate -o X.csv --profile-csv X.csv", "--profile-csv input"),
    ("19b", "profile -o coeffs.json --model coeffs.json", "--model input"),
    ("kin-bootstrap", "workload t.csv --ci bootstrap --bootstrap-samples 1000000000", "100000"),
    (
        "kin-open-loop",
        "simulate --ratio 2 --batch 16 --steps 1000 --open-loop poisson --rate 1e12",
        "overloaded",
    ),
    ("kin-validate", "validate --quick --seeds 100000", "--max-hours"),
    (
        "kin-microbatch",
        "simulate --ratio 2 --batch 16 --steps 100000 --pipeline microbatch --layers 1000000000",
        "--max-hours",
    ),
    ("usage", "simulate --ratio 2 --batch abc", "--batch"),
    ("usage2", "size --no-such-option", "--no-such-option"),
]


@pytest.mark.parametrize(("row", "command", "word"), ISSUE_CASES, ids=[c[0] for c in ISSUE_CASES])
def test_issue_13_failures_are_one_line_exit_2(
    workdir: Path, run_cli: Callable[..., CliResult], row: str, command: str, word: str
) -> None:
    """Each failure of the issue's table: exit 2, one line naming the option, inputs intact."""
    before = snapshot(workdir)
    start = time.perf_counter()
    result = run_cli(*command.split())
    line = assert_refused(result, time.perf_counter() - start)
    assert word in line, line
    assert snapshot(workdir) == before, "a refused command wrote or changed a file"


def test_output_onto_an_input_leaves_it_byte_identical(
    workdir: Path, run_cli: Callable[..., CliResult]
) -> None:
    """The same file named twice through different spellings is still the input (issue row 18)."""
    before = (workdir / "t.csv.gz").read_bytes()
    result = run_cli("report", "-o", "./folder/../t.csv.gz", "--trace", str(workdir / "t.csv.gz"))
    assert_refused(result, 0.0)
    assert (workdir / "t.csv.gz").read_bytes() == before


# --- Part 1b: every file option of every command, against every hostile file -------------------

HOSTILE_FILES = [
    "bomb.yaml", "deep.yaml", "deep.json", "empty.csv", "garbage.bin", "ragged.csv", "folder",
    "missing.csv", "t.csv/below.csv", "/dev/null", "/dev/zero", "/proc/self/status", "gz.csv.gz",
    "bad.parquet",
]  # fmt: skip
FILE_OPTIONS = [
    ("workload", [], None),
    ("cost", [], "--model"),
    ("cost", [], "--hardware"),
    ("cost", [], "--profile"),
    ("cost", [], "--ffn-hardware"),
    ("size", [], "--coeffs"),
    ("size", [], "--trace"),
    ("size", [], "--profile"),
    ("size", [], "--model"),
    ("size", [], "--hardware"),
    ("simulate", ["--ratio", "2", "--batch", "4", "--steps", "10"], "--trace"),
    ("simulate", ["--ratio", "2", "--batch", "4", "--steps", "10"], "--coeffs"),
    ("simulate", ["--ratio", "2", "--batch", "4", "--steps", "10"], "--model"),
    ("report", ["-o", "out.html", "--sim-steps", "0"], "--trace"),
    ("report", ["-o", "out.html", "--sim-steps", "0"], "--coeffs"),
    ("sweep", ["-o", "out"], None),
    ("calibrate", ["-o", "out.yaml"], "--profile-csv"),
    ("calibrate", ["-o", "out.yaml"], "--silicon"),
    ("calibrate", ["-o", "out.yaml", "--profile-csv", "X.csv"], "--hardware"),
    ("validate", ["--quick", "--case", "dense70b-h100-b128"], "--trace"),
    ("profile", ["-o", "out.csv"], "--model"),
]


@pytest.mark.parametrize(
    ("command", "base", "option"),
    FILE_OPTIONS,
    ids=[f"{c}{o or ''}" for c, _, o in FILE_OPTIONS],
)
def test_every_file_option_refuses_every_hostile_file(
    workdir: Path,
    run_cli: Callable[..., CliResult],
    command: str,
    base: list[str],
    option: str | None,
) -> None:
    """Binary, empty, endless (/dev/zero), deep, aliased, missing or misplaced: one line each."""
    _write_fixed_files(workdir)
    before = snapshot(workdir)
    for hostile in HOSTILE_FILES:
        args = [command, *base, *([option, hostile] if option else [hostile])]
        start = time.perf_counter()
        result = run_cli(*args)
        assert_refused(result, time.perf_counter() - start)
        assert snapshot(workdir) == before, args


# --- Part 2: generated options and file contents across every command ------------------------

# Hostile values an option may receive, as the shell passes them (strings).
_NUMBERS = st.sampled_from(
    ["0", "-1", "-0", "1", "2", "3", "1e308", "-1e308", "nan", "inf", "-inf", "1e-300", "0.5",
     "99999999999999999999", "-99999999999999999999", "", " ", "abc", "1,2", "1:0", "3:1", "0x10",
     "１", "1_000", "+7", "2**63"]
)  # fmt: skip
_WORDS = st.sampled_from(
    ["", " ", "bogus", "-", "--", "../", "/", "\u00e9\u00e8", "a" * 300, "bf16", "fp8", "auto",
     "microbatch", "serial", "overlapped", "poisson", "trace", "gaussian", "empirical", "tp", "ep"]
)  # fmt: skip
# Paths: the hostile files written by _write_files, a folder, devices, missing, below a file.
_FILES = st.sampled_from(
    ["bomb.yaml", "deep.yaml", "deep.json", "empty.csv", "garbage.bin", "ragged.csv",
     "weird.csv", "weird.jsonl", "weird.json", "weird.yaml", "hf.json", "t.csv", "coeffs.json",
     "folder", "missing.csv", "t.csv/below.csv", "/dev/null", "/proc/self/status", "/dev/zero",
     "gz.csv.gz", "bad.parquet"]
)  # fmt: skip
_OUTPUTS = st.sampled_from(
    ["out.file", "folder", "t.csv", "coeffs.json", "t.csv/below", "/proc/x", "/sys/x",
     "/dev/null", "new/dir/out.file", ""]
)  # fmt: skip
_VALUES = _NUMBERS | _WORDS | _FILES

_CELL = st.sampled_from(
    ["1", "0", "-1", "10", "100", "1e3", "nan", "inf", "", " ", "x", '"', '"1"', "1.5", "1e400",
     "9223372036854775808", "2147483648", "-0", "1,2", "\u0000", "\u00e9"]
)  # fmt: skip
_HEADERS = st.sampled_from(
    ["ContextTokens,GeneratedTokens", "ContextTokens,GeneratedTokens,TIMESTAMP",
     "input_length,output_length,timestamp", "Request tokens,Response tokens,Timestamp",
     "num_prefill_tokens,num_decode_tokens", "a,b,c", "", "ContextTokens,ContextTokens"]
)  # fmt: skip
_COEFF_KEYS = [
    "alpha_attn_s",
    "beta_attn_s_per_token",
    "alpha_comm_s",
    "beta_comm_s_per_token",
    "alpha_ffn_s",
    "beta_ffn_s_per_token",
    "gamma_comm_s_per_token",
    "kv_capacity_tokens",
]
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _CELL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_CELL, inner, max_size=3),
    max_leaves=8,
)
_HF_KEYS = [
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "vocab_size", "head_dim", "n_routed_experts", "num_experts_per_tok",
    "moe_intermediate_size", "model_type", "torch_dtype", "num_local_experts",
]  # fmt: skip
_SPEC_KEYS = [
    "traces", "models", "hardware", "coefficients", "batch", "ratio", "seeds", "simulate",
    "kv_dtype", "attn_gpus", "ffn_gpus", "chunk_cells", "bogus",
]  # fmt: skip


@st.composite
def _csv_text(draw: st.DrawFn) -> str:
    header = draw(_HEADERS)
    rows = draw(st.lists(st.lists(_CELL, min_size=0, max_size=5), max_size=6))
    sep = draw(st.sampled_from(["\n", "\r\n"]))
    return sep.join([header, *(",".join(r) for r in rows)])


@st.composite
def _files(draw: st.DrawFn) -> dict[str, bytes]:
    """Contents of the generated files (the fixed hostile ones are written by the fixture)."""
    coeffs = {k: draw(_JSONISH) for k in _COEFF_KEYS if draw(st.booleans())}
    good = {k: v for k, v in COEFFS.items() if draw(st.integers(0, 4))}
    hf = {k: draw(st.integers(-2, 2**40) | _JSONISH) for k in _HF_KEYS if draw(st.booleans())}
    keys = draw(st.lists(st.sampled_from(_SPEC_KEYS), max_size=3, unique=True))
    spec: dict[str, object] = {k: draw(_JSONISH) for k in keys}
    if draw(st.booleans()):  # often close to valid, so the deeper checks are reached
        spec = {"traces": ["t.csv"], "coefficients": ["coeffs.json"], "batch": [4]} | spec
    jsonl = "\n".join(
        json.dumps({"ContextTokens": draw(_JSONISH), "GeneratedTokens": draw(_JSONISH)})
        for _ in range(draw(st.integers(0, 4)))
    )
    return {
        "weird.csv": draw(_csv_text()).encode(),
        "weird.jsonl": jsonl.encode(),
        "weird.json": json.dumps(good | coeffs, default=str).encode(),
        "weird.yaml": yaml.safe_dump(spec, allow_unicode=True).encode(),
        "hf.json": json.dumps(hf, default=str).encode(),
    }


def _write_fixed_files(root: Path) -> None:
    (root / "deep.yaml").write_text("[" * 5000 + "]" * 5000)
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "empty.csv").write_bytes(b"")
    (root / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    (root / "gz.csv.gz").write_bytes(b"\x1f\x8b not really gzip")
    (root / "bad.parquet").write_bytes(b"PAR1 not really parquet PAR1")


def _option(name: str, values: st.SearchStrategy[str] = _VALUES) -> st.SearchStrategy[list[str]]:
    return values.map(lambda v: [name, v])


_FLAG = st.sampled_from(["--json", "--drop-invalid"]).map(lambda f: [f])


def _command(
    name: str,
    base: list[str],
    options: list[st.SearchStrategy[list[str]]],
    *,
    outputs: tuple[str, ...] = (),
    min_options: int = 0,
) -> st.SearchStrategy[tuple[list[str], tuple[str, ...]]]:
    """``afdsizer NAME BASE... OPTION VALUE...`` with up to four generated options."""
    chosen = st.lists(st.one_of(options), min_size=min_options, max_size=4)
    return chosen.map(lambda opts: ([name, *base, *(x for o in opts for x in o)], outputs))


_COST_OPTIONS = [
    _option("--model"), _option("--hardware"), _option("--coeffs", _FILES), _option("--kv-dtype"),
    _option("--attn-gpus", _NUMBERS), _option("--ffn-gpus", _NUMBERS), _option("--profile", _FILES),
]  # fmt: skip
_WORKLOAD_OPTIONS = [_option("--trace", _FILES), _FLAG]
# fmt: off
_COMMANDS = st.one_of(
    _command(
        "workload",
        [],
        [
            st.just(["weird.csv"]),
            _option("--window"),
            _option("--ci"),
            _option("--confidence", _NUMBERS),
            _option("--seed", _NUMBERS),
            _option("--bootstrap-samples", st.sampled_from(["0", "-5", "1", "5", "1e9"])),
            _option("--prompt-col"),
            _option("--decode-col"),
            _option("--time-col"),
            _FLAG,
            _FILES.map(lambda f: [f]),
        ],
    ),
    _command("cost", [], [*_COST_OPTIONS, _option("--link"), _option("--ffn-hardware")]),
    _command(
        "size",
        ["--coeffs", "coeffs.json", "--theta", "500", "--slot-load-std", "300"],
        [
            _option("--batch", _NUMBERS),
            _option("--kv-quantile", _NUMBERS),
            _option("--tpot-ms", _NUMBERS),
            _option("--price-attn", _NUMBERS),
            _option("--price-ffn", _NUMBERS),
            _option("--barrier"),
            _option("--theta", _NUMBERS),
            _option("--report", _OUTPUTS),
            *_COST_OPTIONS,
        ],
        outputs=("out.file", "new"),
    ),
    _command(
        "simulate",
        ["--ratio", "2", "--batch", "4", "--steps", "20", "--coeffs", "coeffs.json",
         "--trace", "t.csv"],
        [
            _option("--ratio", _NUMBERS),
            _option("--batch", _NUMBERS),
            _option("--steps", st.sampled_from(["0", "-1", "5", "10", "1e3", "10000000000000"])),
            _option("--warmup", _NUMBERS),
            _option("--seed", _NUMBERS),
            _option("--pipeline"),
            _option("--microbatches", _NUMBERS),
            _option("--layers", _NUMBERS),
            _option("--jitter-cv", _NUMBERS),
            _option("--jitter-dist"),
            _option("--refill"),
            _option("--open-loop"),
            _option("--rate", _NUMBERS),
            _option("--time-scale", _NUMBERS),
            _option("--kv-capacity", _NUMBERS),
            _option("--series-out", _OUTPUTS),
            _option("--max-memory-gb", _NUMBERS),
            *_WORKLOAD_OPTIONS,
            *_COST_OPTIONS,
        ],
        outputs=("out.file", "new"),
    ),
    _command(
        "validate",
        ["--quick"],
        [
            _option("--steps", st.sampled_from(["0", "-1", "19", "abc", "10000000000000"])),
            _option("--seeds", st.sampled_from(["0", "-1", "abc"])),
            _option("--case", _WORDS.filter(lambda w: w not in ("",))),
            _option("--barrier", st.sampled_from(["bogus", "", "x"])),
            _option("--markdown", st.sampled_from(["folder", "t.csv/below", "/proc/x"])),
        ],
    ).filter(lambda c: len(c[0]) > 2),  # a bare `validate --quick` is the slow valid run
    _command(
        "report",
        ["-o", "out.file", "--sim-steps", "0", "--coeffs", "coeffs.json", "--theta", "500",
         "--slot-load-std", "300"],
        [
            _option("-o", _OUTPUTS),
            _option("--batch", _NUMBERS),
            _option("--theta", _NUMBERS),
            _option("--kv-quantile", _NUMBERS),
            _option("--tpot-ms", _NUMBERS),
            _option("--sim-steps", st.sampled_from(["-1", "0", "1e3", "1000000000000"])),
            _option("--seed", _NUMBERS),
            _option("--title"),
            *_WORKLOAD_OPTIONS,
        ],
        outputs=("out.file", "new"),
        min_options=1,  # a valid report takes a second or two: mostly hostile ones
    ),
    _command(
        "sweep",
        ["weird.yaml", "-o", "sweep-out", "--workers", "1"],
        [
            _option("-o", _OUTPUTS),
            _option("--workers", _NUMBERS),
            _option("--max-cells", _NUMBERS),
            _option("--max-hours", _NUMBERS),
            _option("--scheduler"),
            _FILES.map(lambda f: [f]),
        ],
        outputs=("sweep-out", "out.file", "new"),
    ),
    _command(
        "calibrate",
        ["-o", "out.file", "--hardware", "h100-sxm"],
        [
            _option("--profile-csv", _FILES),
            _option("--silicon", _FILES),
            _option("--model"),
            _option("-o", _OUTPUTS),
            _option("--batch-range"),
            _option("--ffn-range"),
            _option("--kv-dtype"),
        ],
        outputs=("out.file", "new"),
    ),
)
# fmt: on


_OUTPUT_OPTIONS = ("-o", "--output", "--markdown", "--series-out", "--report")


def _outputs_and_inputs(args: list[str]) -> tuple[set[str], set[str]]:
    """The values given to output options, and every other value on the command line."""
    outputs: set[str] = set()
    inputs: set[str] = set()
    for i, arg in enumerate(args[1:], start=1):
        (outputs if args[i - 1] in _OUTPUT_OPTIONS else inputs).add(arg)
    return outputs, inputs


def _allowed_new(path: str, outputs: tuple[str, ...]) -> bool:
    return any(path == out or path.startswith(out + os.sep) for out in outputs)


@settings(
    max_examples=int(os.environ.get("AFDSIZER_HOSTILE_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(command=_COMMANDS, files=_files())
def test_generated_hostile_input_exits_0_or_2_in_one_line(
    workdir: Path,
    run_cli: Callable[..., CliResult],
    command: tuple[list[str], tuple[str, ...]],
    files: dict[str, bytes],
) -> None:
    """Oracle: exit 0 or 2; on 2 one ``afdsizer: error:`` line; inputs intact; no stray file."""
    args, outputs = command
    _write_fixed_files(workdir)
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    for stale in ("out.file", "sweep-out", "new"):  # outputs of the previous example
        target = workdir / stale
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    before = snapshot(workdir)
    start = time.perf_counter()
    result = run_cli(*args)
    elapsed = time.perf_counter() - start
    assert "Traceback" not in result.stdout + result.stderr, (args, result.stderr[-3000:])
    assert result.exit_code in (0, 2), (args, result.exit_code, result.stderr[-3000:])
    if result.exit_code == 2:
        assert_refused(result, elapsed)
    after = snapshot(workdir)
    named_outputs, named_inputs = _outputs_and_inputs(args)
    for path, data in before.items():
        if after.get(path, b"<gone>") == data:
            continue
        # Only a file named as this command's output may change, and never one it also reads.
        replaced = result.exit_code == 0 and path in named_outputs and path not in named_inputs
        assert replaced, (args, f"{path} changed")
    new = [p for p in after if p not in before]
    if result.exit_code == 2:
        assert not new, (args, new)
    else:
        assert all(_allowed_new(p, outputs) for p in new), (args, new)


def test_gzip_bomb_is_refused_before_it_fills_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .gz expanding over 100x (and past the floor, lowered here to 1 MiB) is one error."""
    from afdsizer.errors import TraceError
    from afdsizer.workload import _formats, load_trace

    monkeypatch.setattr(_formats, "GUNZIP_FLOOR_BYTES", 2**20)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"ContextTokens,GeneratedTokens\n" + b"0" * 8 * 2**20))
    assert bomb.stat().st_size * 100 < 8 * 2**20  # the ratio really is over 100
    with pytest.raises(TraceError, match="decompression bomb"):
        load_trace(bomb)
    # An honest trace of the same size decompresses fine.
    rng = np.random.default_rng(0)
    pairs = zip(rng.integers(1, 30_000, 200_000), rng.integers(1, 2_000, 200_000), strict=True)
    rows = "".join(f"{p},{d}\n" for p, d in pairs)
    honest = tmp_path / "honest.csv.gz"
    honest.write_bytes(gzip.compress(("ContextTokens,GeneratedTokens\n" + rows).encode()))
    assert load_trace(honest).n_requests == 200_000
