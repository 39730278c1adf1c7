"""matplotlib → inline SVG: no prolog or namespace URLs, every id prefixed, references kept."""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from afdsizer.report._svg import figure_to_inline_svg


def _figure() -> Figure:
    figure = Figure(figsize=(2, 2))
    ax = figure.subplots()
    ax.plot([1, 2, 3], [3, 1, 2], "o-", label="line")
    ax.set_title("t")
    ax.legend()
    return figure


def test_inline_svg_has_no_prolog_and_no_urls() -> None:
    """The element starts at <svg>, with no XML prolog, DOCTYPE or http URL left."""
    svg = figure_to_inline_svg(_figure(), prefix="f1")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and "http" not in svg


def test_every_id_and_reference_is_prefixed() -> None:
    """Ids carry the prefix, every #reference points at an id of the same SVG."""
    svg = figure_to_inline_svg(_figure(), prefix="f1")
    ids = re.findall(r'\bid="([^"]+)"', svg)
    refs = re.findall(r'href="#([^"]+)"', svg) + re.findall(r"url\(#([^)]+)\)", svg)
    assert ids and refs
    assert all(i.startswith("f1-") for i in ids)
    assert set(refs) <= set(ids)


def test_two_figures_share_no_id() -> None:
    """Two renders of the same figure with different prefixes have disjoint ids, same drawing."""
    a = figure_to_inline_svg(_figure(), prefix="a")
    b = figure_to_inline_svg(_figure(), prefix="b")
    assert not set(re.findall(r'id="([^"]+)"', a)) & set(re.findall(r'id="([^"]+)"', b))

    def anonymous(svg: str) -> str:
        return re.sub(r'(id="|#)[^"\s)]+', r"\1X", svg)

    assert anonymous(a) == anonymous(b)


def test_output_is_reproducible() -> None:
    """The same figure and prefix give byte-identical SVG (fixed hash salt, no date)."""
    assert figure_to_inline_svg(_figure(), prefix="p") == figure_to_inline_svg(
        _figure(), prefix="p"
    )
