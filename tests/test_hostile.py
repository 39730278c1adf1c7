"""Hostile input across the CLI: one clear line, exit 2, no traceback, nothing written.

Two parts. First, every failure of issue 13's table, rerun as a user typed it (with its kin:
other loaders, other output options). Second, hypothesis-generated options and file contents
for every command, under one oracle: the command exits 0 or 2; on 2 it prints one line starting
``afdsizer: error:`` and no traceback; it writes no file it was not asked for, and every input
stays byte-identical.

Everything runs in-process (``afdsizer.cli.main``) in a fresh folder that is snapshotted before
and after each run, so "nothing written" and "inputs intact" are checked byte for byte.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from afdsizer.workload import bundled_trace_path
from conftest import CliResult

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
    ("16b", "sweep ok.yaml -o /proc/out", "/proc"),
    ("17", "validate --quick --markdown folder", "directory"),
    ("18", "report -o t.csv.gz --trace t.csv.gz --sim-steps 0", "--trace input"),
    ("19", "calibrate -o X.csv --profile-csv X.csv", "--profile-csv input"),
    ("19b", "profile -o coeffs.json --model coeffs.json", "--model input"),
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
