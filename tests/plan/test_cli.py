"""`afdsizer plan` end to end: JSON keys, agreement with `size`, --verify, errors."""

from __future__ import annotations

import json

import pytest

from afdsizer.cli import main

CANDIDATE_KEYS = {
    "attn_gpus",
    "ffn_gpus",
    "attn_parallel",
    "ffn_parallel",
    "microbatches",
    "batch",
    "ratio",
    "gpus",
    "throughput_per_gpu",
    "tpot_s",
    "tpot_p99_s",
    "regime",
}
SMALL = ["--attn-gpus", "1,2", "--ffn-gpus", "1,2,4", "--max-ratio", "16"]
MODEL = ["--model", "qwen3-30b-a3b", "--hardware", "h100-sxm"]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["plan", *MODEL, *SMALL, "--refine", "0", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_json_has_candidates_best_first_and_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    """Every documented key; candidates sorted; the fleet covers the trace's own rate."""
    out = _run(capsys, "--top", "5")
    cands = out["candidates"]
    assert isinstance(cands, list) and len(cands) == 5
    assert all(set(c) >= CANDIDATE_KEYS for c in cands)
    objective = [c["objective"] for c in cands]
    assert objective == sorted(objective, reverse=True)
    fleet = out["fleet"]
    assert isinstance(fleet, dict)
    assert fleet["requests_per_s_capacity"] >= out["rate_per_s"] > 0
    assert {"bundles", "gpus", "headroom"} <= set(fleet)


def _size_args(cand: dict[str, object], *extra: str) -> list[str]:
    args = ["size", *MODEL, "--tpot-ms", "50", "--pipeline", "microbatch", "--json", *extra]
    for key in ("attn_gpus", "attn_parallel", "ffn_gpus", "ffn_parallel", "microbatches",
                "kv_dtype"):  # fmt: skip
        args += ["--" + key.replace("_", "-"), str(cand[key])]
    return args


def test_size_on_the_planned_layout_gives_the_same_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No rate: `afdsizer size` on the top layout gives the same r, B and tokens/s per GPU."""
    lengths = ("--isl", "1000", "--osl", "200")
    out = _run(capsys, *lengths, "--tpot-ms", "50", "--microbatches", "2", "--refine", "1")
    assert out["fleet"] is None  # fixed lengths carry no timestamps, so no rate
    top = out["candidates"][0]  # type: ignore[index]
    assert top["source"] == "recommend"
    assert main(_size_args(top, *lengths)) == 0
    size = json.loads(capsys.readouterr().out)
    assert (size["r_int"], size["batch"]) == (top["ratio"], top["batch"])
    assert size["throughput_per_gpu"] == pytest.approx(top["throughput_per_gpu"])
    assert size["tpot_p99_s"] == pytest.approx(top["tpot_p99_s"])


def test_at_a_rate_the_ratio_is_a_row_of_sizes_table(capsys: pytest.CaptureFixture[str]) -> None:
    """With a rate B is sized to the traffic and r is a row of recommend's Λ(r) table at it."""
    out = _run(capsys, "--tpot-ms", "50", "--microbatches", "2", "--refine", "1", "--rate", "500")
    top = out["candidates"][0]  # type: ignore[index]
    assert top["source"] == "recommend"
    assert main(_size_args(top, "--batch", str(top["batch"]))) == 0
    size = json.loads(capsys.readouterr().out)
    rows = {row["ratio"]: row for row in size["ratio_table"]}
    assert top["ratio"] in rows
    assert rows[top["ratio"]]["throughput_per_gpu"] == pytest.approx(top["throughput_per_gpu"])
    fleet = out["fleet"]
    assert fleet["requests_per_s_capacity"] >= 500.0  # type: ignore[index]


def test_verify_meets_the_tpot_target_at_the_planned_fleet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bundled trace at its own rate: the simulated open-loop TPOT p99 is within the target."""
    out = _run(capsys, "--tpot-p99-ms", "60", "--verify", "--top", "3")
    verify = out["verify"]
    assert isinstance(verify, list) and verify
    for v in verify:
        assert v["tpot_p99_s"] <= 0.060
        assert v["completed_requests"] > 100
        # Open loop with some slots empty decodes no slower than the full-bundle closed form.
        assert v["tpot_mean_s"] <= v["closed_form_tpot_s"] * 1.02


def test_emit_and_window_and_report(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--emit vllm gives a config the plugin accepts; --window plans each window; a report."""
    report = tmp_path / "plan.html"
    args = ["--emit", "vllm", "--window", "20min", "--report", str(report)]
    out = _run(capsys, *args)
    launch = out["launch"]["commands"]  # type: ignore[index]
    assert "P2pNcclAFDConnector" in launch
    drift = out["drift"]
    assert isinstance(drift, dict) and len(drift["windows"]) == 3
    assert 0.0 <= drift["loss_fixed_layout"] <= drift["loss_fixed_fleet"] + 1e-12
    assert "<svg" in report.read_text()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--emit", "dynamo"], "no merged AFD support"),
        (["--isl", "100"], "--isl and --osl go together"),
        (["--window", "ten"], "--window must look like"),
        (["--gpu-budget", "1"], "no layout meets 1 GPUs"),
        (["--attn-gpus", "x"], "--attn-gpus must be"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], match: str
) -> None:
    """Each mistake is one stderr line and exit status 2."""
    assert main(["plan", *MODEL, *SMALL, "--refine", "0", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
