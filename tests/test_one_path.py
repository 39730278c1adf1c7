"""One sizing path (issue 10): `size`, `report`, a `ratio: auto` sweep and `afdsizer.size()` on
the same inputs deploy the same r at the same predicted throughput, and take their defaults from
one place, :class:`afdsizer.deployment.Deployment`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import afdsizer
from afdsizer._sizing import DEFAULT_HARDWARE, DEFAULT_MODEL
from afdsizer.deployment import Deployment
from afdsizer.sweep import SweepSpec, enumerate_cells, read_results, run_sweep
from afdsizer.validate import synthetic_long_context

COEFFS = {
    "alpha_attn_s": 1.2e-2,
    "beta_attn_s_per_token": 1.2e-7,
    "alpha_comm_s": 1.6e-3,
    "beta_comm_s_per_token": 6.5e-5,
    "alpha_ffn_s": 2.5e-3,
    "beta_ffn_s_per_token": 1.9e-5,
}
"""Coefficients of the Llama-3.1-70B roofline on H100 (1A, 8F), rounded: Attention-bound."""
BATCH = 32
"""B of the heavy-tailed case, as in the issue's report."""
REL_TOL = 1e-12
"""The entry points run the same code on the same values: agreement is exact up to JSON."""


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The long-context heavy-tailed stress workload as a small CSV, and the coefficients."""
    folder = tmp_path_factory.mktemp("heavy")
    P, D = synthetic_long_context(2_000, seed=3)
    rows = "\n".join(f"{p},{d}" for p, d in zip(P, D, strict=True))
    trace = folder / "heavy.csv"
    trace.write_text("ContextTokens,GeneratedTokens\n" + rows + "\n", encoding="utf-8")
    coeffs = folder / "coeffs.json"
    coeffs.write_text(json.dumps(COEFFS), encoding="utf-8")
    return trace, coeffs


def _sweep_row(tmp_path: Path, **spec: Any) -> dict[str, Any]:
    """Run a one-cell theory sweep and return its row."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"ratio": ["auto"], **spec}), encoding="utf-8")
    summary = run_sweep(path, tmp_path / "out", workers=1)
    assert (summary.cells_run, summary.cells_failed) == (1, 0)
    rows = read_results(tmp_path / "out").to_dicts()
    return rows[0]


def _answers(
    run_cli: Any, tmp_path: Path, cli: list[str], spec: dict[str, Any], api: dict[str, Any]
) -> dict[str, tuple[int, float, float]]:
    """(r, tokens/s per GPU, tokens/s per instance) from each entry point."""
    sized = run_cli("size", *cli, "--json")
    assert sized.exit_code == 0, sized.stderr
    s = json.loads(sized.stdout)
    out = tmp_path / "r.html"
    reported = run_cli("report", *cli, "--sim-steps", "0", "-o", out, "--json")
    assert reported.exit_code == 0, reported.stderr
    r = json.loads(reported.stdout)["recommendation"]
    row = _sweep_row(tmp_path, **spec)
    rec = afdsizer.size(**api)
    return {
        "size": (s["r_int"], s["throughput_per_gpu"], s["throughput_per_instance"]),
        "report": (r["r_int"], r["throughput_per_gpu"], r["throughput_per_instance"]),
        "sweep": (
            row["ratio"],
            row["theory_throughput_per_gpu"],
            row["theory_throughput_per_instance"],
        ),
        "api": (rec.r_int, rec.throughput_per_gpu, rec.throughput_per_instance),
    }


def _assert_all_agree(answers: dict[str, tuple[int, float, float]]) -> None:
    r, per_gpu, per_instance = answers["api"]
    for name, (r_x, gpu_x, inst_x) in answers.items():
        assert r_x == r, name
        assert gpu_x == pytest.approx(per_gpu, rel=REL_TOL), name
        assert inst_x == pytest.approx(per_instance, rel=REL_TOL), name


def test_heavy_tailed_trace_same_r_everywhere(  # type: ignore[no-untyped-def]
    run_cli, heavy: tuple[Path, Path], tmp_path: Path
) -> None:
    """On a heavy-tailed trace where the Gaussian and empirical barriers deploy different r,
    every entry point deploys the empirical barrier's r (the trace's law, seed 0)."""
    trace, coeffs = heavy
    gaussian = afdsizer.size(trace=trace, coeffs=coeffs, batch=BATCH, barrier="gaussian")
    empirical = afdsizer.size(trace=trace, coeffs=coeffs, batch=BATCH)
    assert empirical.barrier_model == "empirical"
    assert gaussian.r_int != empirical.r_int, "the laws agree here: the test would prove nothing"
    answers = _answers(
        run_cli,
        tmp_path,
        ["--trace", str(trace), "--coeffs", str(coeffs), "--batch", str(BATCH)],
        {"traces": [str(trace)], "coefficients": [str(coeffs)], "batch": [BATCH]},
        {"trace": trace, "coeffs": coeffs, "batch": BATCH},
    )
    _assert_all_agree(answers)
    assert answers["api"][0] == empirical.r_int


def test_defaults_same_r_everywhere(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With no options (bundled trace, default model and GPU, default deployment; B and r
    chosen jointly) every entry point deploys the same (B, r)."""
    spec = {
        "traces": ["bundled:azure_conv_2023"],
        "models": [DEFAULT_MODEL],
        "hardware": [DEFAULT_HARDWARE],
        "batch": ["auto"],
    }
    answers = _answers(run_cli, tmp_path, [], spec, {})
    _assert_all_agree(answers)
    rec = afdsizer.size()
    row = read_results(tmp_path / "out").row(0, named=True)
    assert row["batch"] == rec.batch and row["gpus_per_bundle"] == rec.gpus_per_bundle


@pytest.mark.parametrize(("field", "value"), [("ffn_gpus", 4), ("kv_quantile", 0.99)])
def test_every_entry_point_takes_its_defaults_from_deployment(  # type: ignore[no-untyped-def]
    run_cli,
    heavy: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: float,
) -> None:
    """Change one default of Deployment: size, report, the sweep spec and afdsizer.size() all
    follow (none restates it)."""
    assert getattr(Deployment(), field) != value
    defaults = Deployment.__init__.__kwdefaults__  # the dataclass's field defaults
    assert defaults is not None
    monkeypatch.setitem(defaults, field, value)
    assert getattr(Deployment(), field) == value
    trace, coeffs = heavy
    cli = ["--trace", str(trace), "--coeffs", str(coeffs), "--batch", str(BATCH)]
    sized = run_cli("size", *cli, "--json")
    assert sized.exit_code == 0, sized.stderr
    payload = json.loads(sized.stdout)
    assert payload["deployment"][field] == value
    reported = run_cli("report", *cli, "--sim-steps", "0", "-o", tmp_path / "r.html", "--json")
    assert reported.exit_code == 0, reported.stderr
    shown = json.loads(reported.stdout)["recommendation"]
    spec = SweepSpec(traces=[str(trace)], coefficients=[str(coeffs)], batch=[BATCH])
    assert getattr(spec.deployment(), field) == value
    (cell,) = enumerate_cells(spec)
    assert getattr(cell.deployment(), field) == value
    rec = afdsizer.size(trace=trace, coeffs=coeffs, batch=BATCH)
    if field == "ffn_gpus":
        for gpus in (payload["ffn_gpus"], shown["ffn_gpus"], cell.ffn_gpus, rec.ffn_gpus):
            assert gpus == value
        assert rec.gpus_per_bundle == rec.r_int + value
    else:
        for quantile in (payload["kv_quantile"], rec.kv_quantile):
            assert quantile == value
    # And the sized numbers agree across the three that size.
    assert payload["r_int"] == shown["r_int"] == rec.r_int
    assert np.isclose(payload["throughput_per_gpu"], rec.throughput_per_gpu, rtol=REL_TOL)
