"""The one YAML loader of afdsizer: safe, with no alias expansion and a bounded depth.

Every YAML file afdsizer reads (hardware specs, coefficient files, profiles, sweep specs) goes
through :func:`safe_load`. PyYAML's ``safe_load`` already refuses arbitrary objects, but it still
expands aliases: ten lines of ``&a`` / ``*a`` describe a billion-element list ("billion laughs")
that any code walking the result then spends minutes and gigabytes on. No afdsizer file needs an
alias, so the loader refuses the first one, where it stands in the file. Nesting is bounded too:
PyYAML composes recursively, and ``[[[[...]]]]`` thousands deep would end in a ``RecursionError``.

Errors are :class:`YamlError`, a :class:`yaml.YAMLError` whose text is one short line
(``line L column C: what``), so callers that already catch ``yaml.YAMLError`` keep working.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, SequenceNode

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "YamlError", "safe_dump", "safe_load"]

MAX_YAML_DEPTH = 64
"""Deepest nesting of mappings/lists accepted; afdsizer's files need four or five levels."""
MAX_YAML_BYTES = 16 * 2**20
"""Largest YAML text accepted, bytes (16 MiB); a sweep spec or profile is a few kilobytes."""


class YamlError(MarkedYAMLError):
    """A YAML problem as one short line: ``line L column C: what``."""

    def __init__(self, problem: str, mark: Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)

    def __str__(self) -> str:
        mark = self.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        return f"{where}{self.problem}"


class _NoAliasLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and nesting deeper than :data:`MAX_YAML_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlError(
                f"YAML aliases (*{event.anchor}) are not accepted; write the value out in full",
                event.start_mark,
            )
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                raise YamlError(
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
        return super().compose_node(parent, index)

    # The sequence and mapping composers end the level compose_node opened.
    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        try:
            node = super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        try:
            node = super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1
        return node


class _NoAliasDumper(yaml.SafeDumper):
    """``SafeDumper`` that writes a value shared by two keys out twice, never as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def safe_dump(data: Any) -> str:
    """YAML text of plain ``data``, keys in insertion order, with no aliases (so
    :func:`safe_load` reads it back).

    Examples
    --------
    >>> shared = [1, 2]
    >>> print(safe_dump({"a": shared, "b": shared}), end="")
    a:
    - 1
    - 2
    b:
    - 1
    - 2
    """
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False)


def safe_load(text: str) -> Any:
    """Parse one YAML document like :func:`yaml.safe_load`, without aliases.

    Parameters
    ----------
    text : str
        The YAML text.

    Returns
    -------
    Any
        Plain Python values: dict, list, str, int, float, bool, None (and dates).

    Raises
    ------
    YamlError
        Malformed YAML, an alias (``*name``), nesting deeper than :data:`MAX_YAML_DEPTH`, or a
        text longer than :data:`MAX_YAML_BYTES`; the message says where.

    Examples
    --------
    >>> safe_load("batch: [16, 32]")
    {'batch': [16, 32]}
    >>> try:
    ...     safe_load("a: &x 1\\nb: *x")
    ... except yaml.YAMLError as exc:
    ...     print(exc.problem, exc.problem_mark.line + 1)
    YAML aliases (*x) are not accepted; write the value out in full 2
    """
    if len(text) > MAX_YAML_BYTES:
        raise YamlError(f"YAML text of {len(text):,} characters is over {MAX_YAML_BYTES:,}", None)
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    except YamlError:
        raise
    except MarkedYAMLError as exc:
        # PyYAML's own text spans several lines and quotes the source; keep where and what.
        problem = " ".join(f"{exc.context or ''} {exc.problem or 'malformed YAML'}".split())
        raise YamlError(problem, exc.problem_mark) from None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
