"""Hardware presets and user YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from afdsizer.cost import HARDWARE_PRESETS, HardwareSpec, load_hardware_spec
from afdsizer.errors import DataFileError, InputError

USER_GPU = {
    "name": "my-gpu",
    "dense_flops_per_s": {"bf16": 1.0e15, "fp8": 2.0e15},
    "hbm_bandwidth_bytes_per_s": 4.0e12,
    "hbm_capacity_bytes": 100.0e9,
    "scale_up_bandwidth_bytes_per_s": 400.0e9,
    "scale_up_latency_s": 5.0e-6,
    "scale_out_bandwidth_bytes_per_s": 50.0e9,
    "scale_out_latency_s": 10.0e-6,
}


def test_all_required_presets_exist() -> None:
    """The seven presets the issue names are bundled."""
    wanted = {"h100-sxm", "h200", "b200", "gb200", "a100-80g", "h20", "mi300x"}
    assert wanted <= set(HARDWARE_PRESETS)


@pytest.mark.parametrize("name", HARDWARE_PRESETS)
def test_preset_numbers_are_plausible(name: str) -> None:
    """Every preset loads with positive numbers in datasheet ranges (SI units, not TB or GB)."""
    hw = load_hardware_spec(name)
    assert 1e14 < hw.dense_flops_per_s["bf16"] < 1e16
    assert 1e12 < hw.hbm_bandwidth_bytes_per_s < 1e13
    assert 4e10 < hw.hbm_capacity_bytes < 3e11
    assert hw.scale_out_bandwidth_bytes_per_s < hw.scale_up_bandwidth_bytes_per_s
    assert 1e-6 <= hw.scale_up_latency_s <= 1e-4
    # fp8 weights use the fp8 rate where there is one, else bf16 (A100).
    assert hw.flops_per_s(1) >= hw.flops_per_s(2)


def test_h100_and_h200_share_compute_not_memory() -> None:
    """H200 is an H100 with more and faster HBM (datasheets)."""
    h100, h200 = load_hardware_spec("h100-sxm"), load_hardware_spec("h200")
    assert h100.dense_flops_per_s == h200.dense_flops_per_s
    assert h200.hbm_bandwidth_bytes_per_s / h100.hbm_bandwidth_bytes_per_s == pytest.approx(
        4.8 / 3.35
    )


def test_user_yaml_round_trip(tmp_path: Path) -> None:
    """A user YAML with the preset keys loads into an equal HardwareSpec."""
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(USER_GPU))
    hw = load_hardware_spec(path)
    assert hw == HardwareSpec.from_mapping(USER_GPU, name="x")
    assert hw.name == "my-gpu" and hw.scale_up_domain_gpus == 8


def test_user_yaml_errors(tmp_path: Path) -> None:
    """Bad user files: missing key, negative value, unknown key, broken YAML, missing file."""
    path = tmp_path / "gpu.yaml"
    without = {k: v for k, v in USER_GPU.items() if k != "hbm_capacity_bytes"}
    path.write_text(yaml.safe_dump(without))
    with pytest.raises(InputError, match="hbm_capacity_bytes: Field required"):
        load_hardware_spec(path)
    path.write_text(yaml.safe_dump(USER_GPU | {"hbm_bandwidth_bytes_per_s": -1}))
    with pytest.raises(InputError, match=r"hbm_bandwidth_bytes_per_s: .*greater than 0.*-1"):
        load_hardware_spec(path)
    path.write_text(yaml.safe_dump(USER_GPU | {"hbm_bandwith": 1}))
    with pytest.raises(InputError, match="hbm_bandwith: Extra inputs"):
        load_hardware_spec(path)
    path.write_text("a: [1, 2")
    with pytest.raises(DataFileError, match="not valid YAML"):
        load_hardware_spec(path)
    with pytest.raises(DataFileError, match="cannot read hardware file"):
        load_hardware_spec(tmp_path / "none.yaml")


def test_unknown_hardware_lists_presets() -> None:
    """An unknown hardware name lists every preset."""
    with pytest.raises(InputError, match=r"unknown hardware 'tpu-v5'.*h100-sxm.*mi300x"):
        load_hardware_spec("tpu-v5")
