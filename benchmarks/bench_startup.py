"""Start-up time of the CLI, whole process, against ``python -c "import numpy, polars"``.

Each case runs as a fresh process (``python -m afdsizer.cli ...``, output discarded), best of
``--repeats`` runs, interleaved with the baseline so both see the same machine load. The ratio
to the baseline in the same run is what the targets (issue 13) bound:

* ``size --coeffs FILE --theta T --slot-load-std S``: at most 2×
* ``simulate ... --steps 10``: at most 3.5× (numba's cache is warm after the first run)
* ``size`` on its defaults (bundled trace, roofline presets): at most 4×

One untimed warm-up run of each case fills the OS file cache and numba's on-disk cache first.

Usage: ``python benchmarks/bench_startup.py [--repeats 7]`` → ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = [sys.executable, "-c", "import numpy, polars"]
TARGETS = {"size-coeffs-theta": 2.0, "simulate-steps-10": 3.5, "size-defaults": 4.0}
COEFFS = {
    "alpha_attn_s": 2.0e-3,
    "beta_attn_s_per_token": 4.0e-8,
    "alpha_comm_s": 1.0e-3,
    "beta_comm_s_per_token": 2.0e-6,
    "alpha_ffn_s": 6.0e-3,
    "beta_ffn_s_per_token": 1.5e-5,
}


def _cases(coeffs: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "afdsizer.cli"]
    return {
        "size-coeffs-theta": [
            *cli, "size", "--coeffs", str(coeffs), "--theta", "1226.5", "--slot-load-std", "712.9",
        ],
        "simulate-steps-10": [*cli, "simulate", "--ratio", "16", "--batch", "64", "--steps", "10"],
        "size-defaults": [*cli, "size"],
    }  # fmt: skip


def _run_s(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - start


def main() -> None:
    """Measure, print a table, write ``benchmarks/results/startup.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        coeffs = Path(tmp) / "coeffs.json"
        coeffs.write_text(json.dumps(COEFFS))
        cases = _cases(coeffs)
        for command in cases.values():  # warm-up: file cache, numba cache, .pyc files
            _run_s(command)
        _run_s(BASELINE)
        times: dict[str, list[float]] = {name: [] for name in ("baseline", *cases)}
        for _ in range(args.repeats):
            times["baseline"].append(_run_s(BASELINE))
            for name, command in cases.items():
                times[name].append(_run_s(command))
    best = {name: min(values) for name, values in times.items()}
    results = {
        name: {
            "best_s": best[name],
            "ratio": best[name] / best["baseline"],
            "target_ratio": TARGETS.get(name),
        }
        for name in best
    }
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    record = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "load_average": load,
        "repeats": args.repeats,
        "results": results,
    }
    out = Path(__file__).resolve().parent / "results" / "startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{'case':<20} {'best s':>8} {'ratio':>6} {'target':>7}")
    for name, row in results.items():
        target = row["target_ratio"]
        shown = f"{target:.1f}x" if target else ""
        print(f"{name:<20} {row['best_s']:8.3f} {row['ratio']:5.2f}x {shown:>7}")
    print(f"→ {out}")


if __name__ == "__main__":
    main()
