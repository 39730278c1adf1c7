"""The report's calibration section: the profile's own points, the fit, where the bundle runs.

Oracles: the fitted points are the fitter's line a + b·x at the measured x (exact on exact
data); each part's operating point is recomputed here by hand from the recommendation's B, θ,
r, workers and microbatches, and "outside" is decided from the profile's own fitted ranges.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tests.conftest import CliResult
from tests.cost._calibration_data import SAMPLE_H200

from afdsizer.cost._calibrate import calibrate, write_profile
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._silicon import StepMeasurements

from ._report_html import parse_report


def test_fitter_records_the_points_it_fitted_and_only_those() -> None:
    """Exact affine data: fitted equals measured; a point outside the ranges is not recorded."""
    B = np.array([32.0, 32.0, 32.0, 1024.0])  # the last B lies outside the attention range
    L = np.array([1e4, 4e4, 2e4, 8e4])
    N = np.array([256.0, 64.0, 128.0])
    m = StepMeasurements(
        attention_batch=B,
        attention_load_tokens=L,
        attention_time_s=1e-3 + 1e-8 * L,
        ffn_tokens=N,
        ffn_time_s=2e-3 + 1e-6 * N,
    )
    fitter = CostFitter(attention_context_range=(1, 1e6), ffn_tokens_range=(1, 1e4)).fit(m)
    attention = fitter.points_["attention"]
    assert attention["x_name"] == "kv_tokens" and attention["per"] == "step"
    assert attention["x"] == [1e4, 2e4, 4e4]  # sorted; B = 1024 left out
    np.testing.assert_allclose(attention["measured_s"], 1e-3 + 1e-8 * np.array([1e4, 2e4, 4e4]))
    np.testing.assert_allclose(attention["fitted_s"], attention["measured_s"], rtol=1e-9)
    ffn = fitter.points_["ffn"]
    assert ffn["x"] == [64.0, 128.0, 256.0]
    line = fitter.alpha_ffn_s_ + fitter.beta_ffn_s_per_token_ * np.array(ffn["x"])
    np.testing.assert_allclose(ffn["fitted_s"], line, rtol=1e-12)
    assert "comm" not in fitter.points_  # nothing measured, nothing drawn


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration") / "profile.yaml"
    write_profile(calibrate(model="qwen3-30b-a3b", silicon=SAMPLE_H200, ffn_gpus=8), path)
    return path


def _expected_operating_points(rec: dict[str, Any]) -> dict[str, float]:
    per_worker = rec["batch"] / (rec["workers_per_instance"] * rec["microbatches"])
    ffn = rec["r_int"] * rec["batch"] / rec["microbatches"]
    return {
        "attention": per_worker * rec["theta"],
        "attn_gemm": per_worker,
        "moe": ffn,
        "ffn_gemm": ffn,
        "ffn": ffn,
        "comm": per_worker,
    }


@pytest.fixture(scope="module")
def dp_profile_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from afdsizer.deployment import Deployment

    path = tmp_path_factory.mktemp("calibration") / "dp.yaml"
    deployment = Deployment(attn_gpus=4, attn_parallel="dp", ffn_gpus=8)
    write_profile(calibrate(model="qwen3-30b-a3b", silicon=SAMPLE_H200, deployment=deployment),
                  path)  # fmt: skip
    return path


@pytest.mark.parametrize(("kind", "microbatches"), [("tp", 1), ("tp", 2), ("dp", 2)])
def test_size_report_draws_each_part_at_its_operating_point(
    run_cli: Any,
    profile_path: Path,
    dp_profile_path: Path,
    tmp_path: Path,
    kind: str,
    microbatches: int,
) -> None:
    """size --profile --report: every fitted part with its points and the hand-computed
    operating point (per worker under DP), "outside" exactly where the profile's range misses
    it, warnings on top."""
    profile_path = dp_profile_path if kind == "dp" else profile_path
    page = tmp_path / "r.html"
    result: CliResult = run_cli(
        "size", "--profile", profile_path, "--isl", "1000", "--osl", "200",
        "--microbatches", str(microbatches), "--report", page, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rec = json.loads(result.stdout)
    assert rec["workers_per_instance"] == (4 if kind == "dp" else 1)
    html = page.read_text(encoding="utf-8")
    parsed = parse_report(html)
    assert "calibration" in parsed.ids and "fig-calibration" in parsed.ids
    figure = parsed.json_blocks["fig-calibration-data"]
    profile = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    recorded = {f["part"]: f for f in profile["fits"] if f.get("points")}
    drawn = {p["part"]: p for p in figure["parts"]}
    assert set(drawn) == set(recorded)
    expected = _expected_operating_points(rec)
    curve_rows = profile["ffn_curve"]["fitted_tokens"]
    for part, shown in drawn.items():
        points = recorded[part]["points"]
        assert shown["x"] == points["x"] and shown["measured_s"] == points["measured_s"]
        assert shown["operating_x"] == pytest.approx(expected[part], rel=1e-12)
        low, high = curve_rows if part == "ffn" else (min(points["x"]), max(points["x"]))
        assert shown["inside_range"] is (low <= expected[part] <= high)
        row = re.search(rf'<tr data-part="{part}">(.*?)</tr>', html, re.S)
        assert row is not None
        assert ("(outside)" in row.group(1)) is (not shown["inside_range"])
    # The recommendation's warnings are on the page, each as size printed it.
    printed = [
        line.removeprefix("afdsizer: warning: ")
        for line in result.stderr.splitlines()
        if line.startswith("afdsizer: warning: ")
    ]
    assert printed and printed == rec["warnings"]  # the sample profile has warnings
    assert parsed.json_blocks["report-data"]["warnings"] == printed
    for warning in printed:
        assert warning.replace("&", "&amp;").replace("'", "&#39;") in html


def test_report_without_profile_has_no_calibration_section(run_cli: Any, tmp_path: Path) -> None:
    """A roofline sizing has no profile: no calibration section, no empty figure."""
    page = tmp_path / "r.html"
    result = run_cli("size", "--isl", "1000", "--osl", "200", "--report", page, "--json")
    assert result.exit_code == 0, result.stderr
    parsed = parse_report(page.read_text(encoding="utf-8"))
    assert "calibration" not in parsed.ids and "fig-calibration" not in parsed.ids
    assert parsed.json_blocks["report-data"]["calibration"] is None


@pytest.mark.browser
def test_calibration_report_renders_in_chromium(
    run_cli: Any, profile_path: Path, tmp_path: Path
) -> None:
    """The page with its calibration figure renders in headless Chromium with no console line."""
    from .test_browser import _chromium, _console_lines

    page = tmp_path / "r.html"
    result = run_cli("size", "--profile", profile_path, "--isl", "1000", "--osl", "200",
                     "--microbatches", "2", "--report", page)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    shot = tmp_path / "r.png"
    run = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1100,1600")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console_lines(run.stderr) == []
    assert shot.stat().st_size > 10_000  # drawn, not blank


@pytest.mark.parametrize(
    "edit",
    [
        {"points": {"x": ["a", "b"], "measured_s": [1, 2], "fitted_s": [1, 2]}},
        {"points": {"x": [1, 2, 3], "measured_s": [1, 2], "fitted_s": [1, 2, 3]}},
        {"points": {"x": [2, 1], "measured_s": [1, 2], "fitted_s": [1, 2]}},
        {"points": {"x": [1, 2]}},
        {"points": {"x": 3}},
        {"points": [1, 2]},
        {"ratio_to_roofline": [1, 2]},
        {"median_rel_error": "x"},
    ],
    ids=["strings", "ragged", "decreasing", "missing", "scalar-x", "list", "ratios", "error"],
)
def test_hand_edited_fits_are_one_line_errors(
    run_cli: Any, profile_path: Path, tmp_path: Path, edit: dict[str, Any]
) -> None:
    """A broken fits entry in a profile: exit 2, one line naming the part, no report."""
    profile = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    profile["fits"][0].update(edit)
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(profile), encoding="utf-8")
    page = tmp_path / "r.html"
    result = run_cli("size", "--profile", edited, "--isl", "1000", "--osl", "200", "--report", page)
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "attention" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not page.exists()


def test_profile_without_points_says_so(run_cli: Any, profile_path: Path, tmp_path: Path) -> None:
    """A profile from before points were recorded: the section says so, no empty figure."""
    profile = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    for entry in profile["fits"]:
        entry.pop("points", None)
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(profile), encoding="utf-8")
    page = tmp_path / "r.html"
    result = run_cli("size", "--profile", old, "--isl", "1000", "--osl", "200", "--report", page)
    assert result.exit_code == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    parsed = parse_report(html)
    assert "calibration" in parsed.ids and "fig-calibration" not in parsed.ids
    assert "records no fitted points" in html


def test_profile_text_is_drawn_as_text(run_cli: Any, profile_path: Path, tmp_path: Path) -> None:
    """A dtype holding matplotlib mathtext ("$...$") is drawn literally, not parsed."""
    profile = yaml.safe_load(profile_path.read_text(encoding="utf-8"))
    profile["fits"][0]["dtype"] = "a$\\frac{$b"
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(profile), encoding="utf-8")
    page = tmp_path / "r.html"
    result = run_cli("size", "--profile", edited, "--isl", "1000", "--osl", "200", "--report", page)
    assert result.exit_code == 0, result.stderr
    assert "fig-calibration" in parse_report(page.read_text(encoding="utf-8")).ids
