"""A small stdlib HTML reader for report tests: ids, links, figures, cards and JSON blocks."""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser
from typing import Any


@dataclasses.dataclass
class ParsedReport:
    """What the tests look at in a rendered page."""

    ids: list[str] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)  # every src/href value
    tags: list[str] = dataclasses.field(default_factory=list)
    figures: dict[str, int] = dataclasses.field(default_factory=dict)  # figure id -> <svg> count
    cards: dict[str, str] = dataclasses.field(default_factory=dict)  # data-key -> data-value
    card_text: dict[str, str] = dataclasses.field(default_factory=dict)  # data-key -> shown text
    json_blocks: dict[str, Any] = dataclasses.field(default_factory=dict)  # script id -> value
    script_types: list[str | None] = dataclasses.field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = ParsedReport()
        self._figure: str | None = None
        self._card: str | None = None
        self._in_value = False
        self._script_id: str | None = None
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.out.tags.append(tag)
        if a.get("id"):
            self.out.ids.append(str(a["id"]))
        for key in ("src", "href", "xlink:href"):
            if a.get(key) is not None:
                self.out.references.append(str(a[key]))
        if tag == "section" and a.get("data-figure"):
            self._figure = str(a["data-figure"])
            self.out.figures[self._figure] = 0
        if tag == "svg" and self._figure is not None:
            self.out.figures[self._figure] += 1
        if tag == "div" and a.get("data-key"):
            self._card = str(a["data-key"])
            self.out.cards[self._card] = str(a.get("data-value"))
        if tag == "div" and a.get("class") == "value" and self._card is not None:
            self._in_value = True
        if tag == "script":
            self.out.script_types.append(a.get("type"))
            self._script_id = a.get("id")
            self._script_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._figure = None
        if tag == "div" and self._in_value:
            self._in_value = False
            self._card = None
        if tag == "script" and self._script_id is not None:
            self.out.json_blocks[self._script_id] = json.loads("".join(self._script_text))
            self._script_id = None

    def handle_data(self, data: str) -> None:
        if self._script_id is not None:
            self._script_text.append(data)
        elif self._in_value and self._card is not None:
            self.out.card_text[self._card] = self.out.card_text.get(self._card, "") + data.strip()


def parse_report(html: str) -> ParsedReport:
    """Parse a rendered report."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.out
