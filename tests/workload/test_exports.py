"""The public surface of afdsizer.workload: a sorted, complete ``__all__``."""

from __future__ import annotations

import afdsizer.workload as workload


def test_all_is_sorted_and_importable() -> None:
    """``__all__`` is sorted, has no duplicates, and every name resolves."""
    names = workload.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(workload, name) is not None


def test_contract_names_are_exported() -> None:
    """The names docs/architecture.md promises are public."""
    promised = {"Trace", "load_trace", "bundled_trace_path"}
    promised |= {"SlotLoadEstimate", "estimate_slot_load", "summarize_trace"}
    assert promised <= set(workload.__all__)
