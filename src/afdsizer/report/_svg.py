"""matplotlib figure → SVG text that can sit inline in an HTML page beside other SVGs.

matplotlib writes a standalone SVG document: an XML prolog, a DOCTYPE that names a URL, namespace
URLs, and element ids (glyphs, clip paths, markers) that repeat from one figure to the next. Inline
in HTML none of that is wanted, so :func:`figure_to_inline_svg` strips the prolog and the
namespaces and prefixes every id with the figure's own id.
"""

from __future__ import annotations

import io
import re

import matplotlib
from matplotlib.figure import Figure

__all__ = ["figure_to_inline_svg"]

_SVG_START = re.compile(r"<svg\b")
_ID_ATTR = re.compile(r'\bid="([^"]+)"')
_HREF_REF = re.compile(r'(xlink:href|href)="#([^"]+)"')
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_XMLNS_ATTR = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


def figure_to_inline_svg(figure: Figure, *, prefix: str) -> str:
    """Render ``figure`` as an ``<svg>`` element for inline use in HTML.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to render.
    prefix : str
        Prefix for every element id (and every reference to one), unique within the page.

    Returns
    -------
    str
        ``<svg ...>...</svg>`` with no XML prolog, DOCTYPE or namespace URLs; text is drawn as
        paths, so the page needs no font.
    """
    buffer = io.StringIO()
    # A fixed hash salt makes the output byte-reproducible; text as paths avoids font lookups.
    with matplotlib.rc_context({"svg.hashsalt": prefix, "svg.fonttype": "path"}):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    text = buffer.getvalue()
    start = _SVG_START.search(text)
    if start is None:  # pragma: no cover - matplotlib always writes one
        raise RuntimeError("matplotlib wrote no <svg> element")
    text = text[start.start() :]
    # The HTML parser puts inline <svg> in the SVG namespace (and maps xlink:href) by itself.
    head_end = text.index(">")
    text = _XMLNS_ATTR.sub("", text[:head_end]) + text[head_end:]
    text = _ID_ATTR.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _HREF_REF.sub(lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', text)
    text = _URL_REF.sub(lambda m: f"url(#{prefix}-{m.group(1)})", text)
    return text.strip()
