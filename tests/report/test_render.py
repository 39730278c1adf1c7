"""The rendered page: figures inline, nothing from the network, embedded numbers = inputs."""

from __future__ import annotations

import dataclasses
import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.report import ReportData, render_report, report_payload, write_report
from afdsizer.report._render import _script_json

from ._report_html import parse_report

ALL_FIGURES = {"workload", "throughput", "step-time", "idle", "regime-map", "theta-windows"}


def test_every_figure_is_inline_svg(standin_html: str) -> None:
    """With every panel present, each expected figure section holds exactly one inline <svg>."""
    page = parse_report(standin_html)
    assert set(page.figures) == ALL_FIGURES
    assert all(count == 1 for count in page.figures.values()), page.figures
    for figure_id in ALL_FIGURES:
        assert f"fig-{figure_id}-data" in page.json_blocks


def test_nothing_loaded_from_the_network(standin_html: str) -> None:
    """No src/href points outside the page, no <link>, <img> or executable script, no URL at all."""
    html = standin_html
    page = parse_report(html)
    assert page.references, "the SVGs reference their own glyphs; the reader must see them"
    assert all(ref.startswith("#") for ref in page.references), page.references
    assert not {"link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert set(page.script_types) == {"application/json"}
    assert re.search(r"https?:|//[a-z]|@import|url\((?!#)", html, flags=re.IGNORECASE) is None


def test_ids_are_unique_and_references_resolve(standin_html: str) -> None:
    """Six matplotlib SVGs share one id space: every id is unique and every #ref exists."""
    page = parse_report(standin_html)
    assert len(page.ids) == len(set(page.ids))
    ids = set(page.ids)
    url_refs = re.findall(r"url\(#([^)]+)\)", standin_html)
    missing = {ref[1:] for ref in page.references} - ids | set(url_refs) - ids
    assert not missing


def test_cards_show_the_recommendation(standin_data: ReportData, standin_html: str) -> None:
    """Card values equal the recommendation fields, and the shown text rounds them as labelled."""
    page = parse_report(standin_html)
    rec = standin_data.recommendation
    for field in dataclasses.fields(rec):
        raw = getattr(rec, field.name)
        shown = page.cards[field.name]
        if isinstance(raw, str):
            assert shown == raw
        else:
            assert float(shown) == pytest.approx(raw, rel=1e-12)
    assert page.card_text["r_int"] == f"{rec.r_int} : 1"
    assert float(page.card_text["step_time_s"]) == pytest.approx(rec.step_time_s * 1e3, abs=0.005)
    assert float(page.card_text["ffn_idle"].rstrip("%")) == pytest.approx(
        100 * rec.ffn_idle, abs=0.05
    )
    assert page.json_blocks["report-data"] == report_payload(standin_data) | {
        "recommendation": dataclasses.asdict(rec)
    }


def test_figure_data_equals_the_inputs(standin_data: ReportData, standin_html: str) -> None:
    """The JSON beside each figure holds the very arrays the report was given."""
    blocks = parse_report(standin_html).json_blocks
    curves, sim = standin_data.curves, standin_data.sim
    assert sim is not None
    throughput = blocks["fig-throughput-data"]
    np.testing.assert_array_equal(throughput["ratios"], curves.ratios)
    np.testing.assert_array_equal(throughput["throughput_barrier"], curves.throughput_barrier)
    np.testing.assert_array_equal(throughput["sim"]["throughput_stderr"], sim.throughput_stderr)
    assert throughput["r_int"] == standin_data.recommendation.r_int
    step = blocks["fig-step-time-data"]
    np.testing.assert_array_equal(step["ffn_time_s"], curves.ffn_time_s)
    idle = blocks["fig-idle-data"]
    np.testing.assert_array_equal(idle["sim"]["barrier_idle"], sim.barrier_idle)
    regime = blocks["fig-regime-map-data"]
    assert regime["regime"] == [
        ["ffn", "attention", "attention"],
        ["communication", "attention", "attention"],
    ]


def test_histograms_count_every_request(standin_data: ReportData, standin_html: str) -> None:
    """The histogram bins hold every request once, and agree with a direct count per bin."""
    workload = standin_data.workload
    assert workload is not None
    data = parse_report(standin_html).json_blocks["fig-workload-data"]
    for name, values in (("prompt", workload.prompt_tokens), ("decode", workload.decode_tokens)):
        edges = np.asarray(data[name]["edges"])
        counts = np.asarray(data[name]["counts"])
        assert counts.sum() + data[name]["below_first_edge"] == values.size
        # Brute force: bin i holds edges[i] <= v < edges[i+1], the last bin closed on the right.
        per_bin = [int(((values >= lo) & (values < hi)).sum()) for lo, hi in pairwise(edges)]
        per_bin[-1] += int((values == edges[-1]).sum())
        assert counts.tolist() == per_bin
        assert data[name]["mean_tokens"] == pytest.approx(values.mean())
    assert data["theta_ci_tokens"] == list(workload.theta_ci_tokens)


def test_optional_panels_are_left_out(standin_data: ReportData) -> None:
    """Without a trace, a simulation or a regime map, only the theory figures remain."""
    bare = dataclasses.replace(standin_data, workload=None, sim=None, regime_map=None)
    page = parse_report(render_report(bare))
    assert set(page.figures) == {"throughput", "step-time", "idle"}
    assert "sim" not in page.json_blocks["fig-throughput-data"]
    assert page.json_blocks["report-data"]["workload"] is None


def test_write_report_writes_the_rendered_page(
    standin_data: ReportData, standin_html: str, tmp_path: Path
) -> None:
    """write_report creates missing folders and leaves no temporary file behind."""
    target = tmp_path / "sub" / "report.html"
    assert write_report(target, standin_data) == target
    assert target.read_text(encoding="utf-8") == standin_html
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    )
)
def test_embedded_json_round_trips_through_an_html_parser(value: object) -> None:
    """Any JSON value embedded as a data <script> parses back unchanged, whatever text it holds."""
    html = f'<script type="application/json" id="x">{_script_json(value)}</script><p>after</p>'
    page = parse_report(html)
    assert page.json_blocks["x"] == value
    assert page.tags == ["script", "p"]


NASTY_TEXT = 'a</script><script>alert("x")</script><!-- & <b>é\u2028'


def test_user_text_cannot_break_the_page(standin_data: ReportData) -> None:
    """Title, source and note text with markup in it is shown verbatim and adds no element."""
    assert standin_data.workload is not None
    data = dataclasses.replace(
        standin_data,
        title=NASTY_TEXT,
        notes=(NASTY_TEXT,),
        workload=dataclasses.replace(standin_data.workload, source=NASTY_TEXT),
    )
    html = render_report(data)
    page = parse_report(html)
    payload = page.json_blocks["report-data"]
    assert payload["title"] == payload["workload"]["source"] == payload["notes"][0] == NASTY_TEXT
    assert set(page.script_types) == {"application/json"}
    assert "<b>" not in html


def test_zero_length_prompts_are_counted_not_drawn(standin_data: ReportData) -> None:
    """P = 0 cannot sit on a log axis: such requests are counted beside the histogram."""
    workload = standin_data.workload
    assert workload is not None
    prompt = workload.prompt_tokens.copy()
    prompt[:7] = 0
    data = dataclasses.replace(
        standin_data,
        workload=dataclasses.replace(workload, prompt_tokens=prompt, windows=None),
        regime_map=None,
        sim=None,
    )
    hist = parse_report(render_report(data)).json_blocks["fig-workload-data"]["prompt"]
    assert hist["below_first_edge"] == 7
    assert sum(hist["counts"]) == prompt.size - 7


def test_sparse_windows_render_quietly(standin_data: ReportData) -> None:
    """Windows without a θ (too few requests) are left out of the plot without any warning."""
    workload = standin_data.workload
    assert workload is not None and workload.windows is not None
    win = workload.windows
    nan_first = dataclasses.replace(
        win,
        theta_tokens=np.r_[np.nan, win.theta_tokens[1:]],
        ci_low_tokens=np.r_[np.nan, win.ci_low_tokens[1:]],
        ci_high_tokens=np.r_[np.nan, win.ci_high_tokens[1:]],
    )
    data = dataclasses.replace(
        standin_data,
        workload=dataclasses.replace(workload, windows=nan_first),
        sim=None,
        regime_map=None,
    )
    blocks = parse_report(render_report(data)).json_blocks  # -W error turns warnings into failures
    assert blocks["fig-theta-windows-data"]["theta_tokens"][0] is None
