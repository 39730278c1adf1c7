"""Sweep specs are validated in one pass, before anything runs, with one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afdsizer.errors import DataFileError, InputError
from afdsizer.sweep import SimulateSpec, SweepSpec, load_spec


def test_valid_spec_loads_with_paths_relative_to_its_folder(
    write_spec: Callable[..., Path], spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative trace and coefficient paths resolve against the spec's folder, not the cwd."""
    path = write_spec(simulate={"steps": 50, "pipeline": ["serial", "microbatch"]})
    monkeypatch.chdir(spec_dir.parent)
    spec, base_dir = load_spec(path)
    assert base_dir == spec_dir.resolve()
    assert spec.batch == (16, 64)
    assert spec.simulate == SimulateSpec(steps=50, pipeline=("serial", "microbatch"))


def test_bundled_trace_name_resolves(write_spec: Callable[..., Path]) -> None:
    """``bundled:NAME`` names a trace shipped in the package."""
    spec, _ = load_spec(write_spec(traces=["bundled:azure_conv_2023"]))
    assert spec.traces == ("bundled:azure_conv_2023",)


@pytest.mark.parametrize(
    ("overrides", "error", "fragment"),
    [
        ({"batchs": [1]}, InputError, "unknown key 'batchs'"),
        ({"simulate": {"stepz": 3}}, InputError, "unknown key 'simulate.stepz'"),
        ({"batch": []}, InputError, "batch: List should have at least 1 item"),
        ({"traces": None}, InputError, "missing key 'traces'"),
        (
            {"batch": [64, 0]},
            InputError,
            "batch[1]: Input should be greater than 0 or Input should be 'auto', got 0",
        ),
        ({"batch": [64, 64]}, InputError, "axis batch lists 64 twice"),
        (
            {"ratio": [2, "max"]},
            InputError,
            "ratio[1]: Input should be a valid integer or Input should be 'auto', got 'max'",
        ),
        ({"simulate": {"jitter_cv": [-0.1]}}, InputError, "simulate.jitter_cv[0]"),
        ({"simulate": {"pipeline": ["fast"]}}, InputError, "simulate.pipeline[0]"),
        (
            {"simulate": {"steps": 100, "warmup_steps": 100}},
            InputError,
            "simulate: warmup_steps must be < steps (100), got 100",
        ),
        ({"models": ["llama-3.1-70b"]}, InputError, "models and hardware must be given together"),
        ({"coefficients": []}, InputError, "no cost case"),
        ({"traces": ["nope.csv"]}, DataFileError, "file 'nope.csv' not found"),
        ({"coefficients": ["gone.json"]}, DataFileError, "file 'gone.json' not found"),
        ({"traces": ["bundled:nope"]}, DataFileError, "no bundled trace 'nope'; known: azure_"),
    ],
)
def test_bad_spec_fails_with_one_clear_line(
    write_spec: Callable[..., Path],
    overrides: dict[str, object],
    error: type[Exception],
    fragment: str,
) -> None:
    """Each kind of mistake gives its own one-line message naming the key and the value."""
    with pytest.raises(error) as info:
        load_spec(write_spec(**overrides))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_malformed_yaml_names_line(spec_dir: Path) -> None:
    """A YAML syntax error reports the line of the spec."""
    path = spec_dir / "bad.yaml"
    path.write_text("traces: [trace.csv]\nbatch: [1, 2\nratio: [1]\n")
    with pytest.raises(InputError, match=r"bad\.yaml line \d+ column \d+"):
        load_spec(path)


def test_spec_must_be_a_mapping(spec_dir: Path) -> None:
    """A YAML list instead of a mapping is refused."""
    path = spec_dir / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="must be a YAML mapping of axes, got list"):
        load_spec(path)


def test_missing_spec_file(tmp_path: Path) -> None:
    """A spec path that does not exist is a DataFileError naming it."""
    with pytest.raises(DataFileError, match=r"absent\.yaml: cannot read"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_is_frozen() -> None:
    """A spec cannot be changed after validation."""
    spec = SweepSpec(traces=["t"], coefficients=["c"], batch=[1])
    with pytest.raises(Exception, match="frozen"):
        spec.batch = (2,)  # type: ignore[misc]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.one_of(st.integers(-3, 300), st.booleans(), st.floats(-1, 9)), max_size=5))
def test_batch_axis_accepted_iff_positive_distinct_ints(
    write_spec: Callable[..., Path], batch: list[object]
) -> None:
    """The B axis is accepted exactly when it is a non-empty list of distinct integers > 0."""
    ok = (
        len(batch) > 0
        and all(type(b) is int and b > 0 for b in batch)
        and len(set(batch)) == len(batch)
    )
    path = write_spec(batch=batch) if batch else write_spec(batch=[])
    if ok:
        spec, _ = load_spec(path)
        assert spec.batch == tuple(batch)
    else:
        with pytest.raises(InputError, match=r"sweep spec .*batch"):
            load_spec(path)


def test_spec_round_trips_through_yaml(write_spec: Callable[..., Path]) -> None:
    """Dumping a validated spec and loading it back gives the same spec."""
    spec, _ = load_spec(write_spec(seeds=[3, 1], simulate={"jitter_cv": [0.0, 0.1]}))
    dumped = yaml.safe_dump(spec.model_dump(mode="json"))
    again = SweepSpec.model_validate(yaml.safe_load(dumped))
    assert again == spec
