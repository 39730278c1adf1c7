"""Where calibration tests find measured tables: the shipped sample, or ../shared when present."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import CALIBRATION

SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "data" / "silicon_sample"
"""tests/data/silicon_sample: an attributed subset of the H200 tables (its README says which)."""
SAMPLE_H200 = SAMPLE_ROOT / "h200_sxm"


def shared_gpu(name: str) -> Path:
    """The full measured tables of one GPU under ../shared, or skip saying what is missing."""
    path = CALIBRATION / name
    if not path.is_dir():
        pytest.skip(
            f"needs the full measured tables at {path} (../shared beside the checkout, not "
            "shipped); the core calibration checks run on tests/data/silicon_sample instead"
        )
    return path


def sample_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample's H200 folder (keeps the folder name, hence the preset)."""
    dst = tmp_path / "h200_sxm"
    shutil.copytree(SAMPLE_H200, dst)
    return dst
