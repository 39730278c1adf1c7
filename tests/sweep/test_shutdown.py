"""Clean shutdown of a local sweep: no process outlives the command; Ctrl-C keeps what finished.

The sweep runs as a real ``afdsizer sweep`` process with two workers on cells long enough to be
caught mid-run. Its descendants (fork server, workers, resource tracker) are read from /proc
while it runs, so they can be checked after the driver is gone (they are re-parented then).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process trees from Linux's /proc"
)

COEFFS = {
    "alpha_attn_s": 2.0e-3,
    "beta_attn_s_per_token": 4.0e-8,
    "alpha_comm_s": 1.0e-3,
    "beta_comm_s_per_token": 2.0e-6,
    "alpha_ffn_s": 6.0e-3,
    "beta_ffn_s_per_token": 1.5e-5,
}
GONE_WITHIN_S = 5.0
"""Every descendant must be gone this soon after the driver dies."""
START_TIMEOUT_S = 60.0


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    tree = _children_map()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its new parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def _start(tmp_path: Path, steps: int) -> subprocess.Popen[str]:
    (tmp_path / "coeffs.json").write_text(json.dumps(COEFFS))
    spec = {
        "traces": ["bundled:azure_conv_2023"],
        "coefficients": ["coeffs.json"],
        "batch": [64, 128],
        "ratio": [2, 4, 8],
        "seeds": list(range(6)),
        "simulate": {"steps": steps},
        "chunk_cells": 1,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "afdsizer.cli", "sweep", "spec.yaml", "-o", "out"]
    return subprocess.Popen(
        [*command, "--workers", "2"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )


def _wait_for_workers(proc: subprocess.Popen[str], n: int) -> set[int]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = descendants(proc.pid)
        if len(found) >= n:
            return found
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before its workers started: {proc.communicate()[1]}")
        time.sleep(0.2)
    proc.kill()
    proc.communicate()
    pytest.fail("sweep workers did not start")


def _wait_gone(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


def test_sigkilled_sweep_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL the driver mid-run: fork server, workers and tracker are gone within 5 s."""
    proc = _start(tmp_path, steps=5_000_000)
    # Resource tracker + fork server + two workers.
    family = _wait_for_workers(proc, 4)
    time.sleep(0.5)  # let the workers reach their first cell
    family |= descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()  # not read: a surviving worker would hold the pipe open forever
    survivors = _wait_gone(family)
    for pid in survivors:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} of {len(family)} descendants outlived the driver"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_sweep_flushes_finished_cells_and_stops(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C (or SIGTERM): exit 130 with one line, parts for what finished, no process left."""
    proc = _start(tmp_path, steps=1_000_000)
    family = _wait_for_workers(proc, 4)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not list((tmp_path / "out").glob("part-*.parquet")):  # chunk_cells 1: one per cell
        assert time.monotonic() < deadline, "no cell finished"
        time.sleep(0.2)
    family |= descendants(proc.pid)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == "afdsizer: interrupted"
    assert "Traceback" not in stderr
    assert not _wait_gone(family)
    done = pl.read_parquet(tmp_path / "out")
    assert 1 <= done.height < 36
    assert done["error"].null_count() == done.height  # interrupted cells are not recorded
