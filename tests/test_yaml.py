"""The shared YAML loader: plain YAML as PyYAML reads it, no aliases, bounded depth and size."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from afdsizer._yaml import MAX_YAML_DEPTH, YamlError, safe_dump, safe_load

# Plain values as afdsizer's files hold them (no dates: they round-trip as date objects).
_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_scalars = _scalars | st.floats(allow_nan=False)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_values)
def test_alias_free_yaml_reads_as_pyyaml_reads_it(value: object) -> None:
    """Oracle: PyYAML's own safe_load on the same text (which has no aliases)."""
    text = safe_dump(value)
    assert "*id" not in text
    assert safe_load(text) == yaml.safe_load(text)


def test_shared_values_are_written_out_and_read_back() -> None:
    """safe_dump never writes an alias, so safe_load reads every file afdsizer writes."""
    shared = {"B": [16, 32]}
    doc = {"a": shared, "b": shared}
    assert safe_load(safe_dump(doc)) == doc


def test_billion_laughs_is_refused_at_the_first_alias_quickly() -> None:
    """Ten lines describing 9**9 strings: refused at line 2, in milliseconds, not gigabytes."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    start = time.perf_counter()
    with pytest.raises(YamlError) as info:
        safe_load("\n".join(lines))
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (
        "line 2 column 8: YAML aliases (*a) are not accepted; write the value out in full"
    )
    assert isinstance(info.value, yaml.YAMLError)  # callers catching PyYAML's errors still do


@pytest.mark.parametrize("text", ["a: *undefined", "<<: *base\nb: 1"])
def test_any_alias_is_refused(text: str) -> None:
    with pytest.raises(YamlError, match="aliases"):
        safe_load(text)


def test_depth_is_bounded_but_real_files_fit() -> None:
    """Nesting at the limit reads; one level more, or thousands, is one error (no recursion)."""
    ok = "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH
    assert safe_load(ok) is not None
    for depth in (MAX_YAML_DEPTH + 1, 100_000):
        with pytest.raises(YamlError, match="nested deeper"):
            safe_load("[" * depth + "]" * depth)


def test_errors_are_one_line_with_line_and_column() -> None:
    with pytest.raises(YamlError) as info:
        safe_load("a: [1, 2\nb: 3\n")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("line 2 column 2: ")
