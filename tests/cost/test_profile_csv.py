"""The profile CSV: write/read round trip, per-step composition, and format errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afdsizer.cost import load_model_spec
from afdsizer.cost._fit import CostFitter
from afdsizer.cost._profile_csv import PROFILE_COLUMNS, read_profile_csv, write_profile_csv
from afdsizer.errors import InputError, TraceError

DATA = Path(__file__).parent / "data"
TINY_DENSE = DATA / "tiny_llama.json"  # 2 layers, dense
TINY_MOE = DATA / "tiny_deepseek.json"  # 3 layers: 1 dense + 2 MoE, MLA


def _rows(
    a_s: float, b_s: float, c_s: float, d_s: float, kinds: tuple[str, ...]
) -> list[dict[str, object]]:
    """Rows of a synthetic device: attention a + b·B·s, FFN c + d·N per layer (s)."""
    rows: list[dict[str, object]] = []
    for B in (1, 4, 16, 64):
        for s in (256, 1024, 4096):
            t = a_s + b_s * B * s
            rows.append(
                {"kind": "attention", "batch_size": B, "context_tokens": s, "tokens": B}
                | {"layer_time_s": t, "device": "synthetic", "dtype": "float32"}
            )
    for kind in kinds:
        scale = 2.0 if kind == "ffn_moe" else 1.0  # MoE layers twice as slow
        for N in (128, 256, 1024, 4096):
            rows.append(
                {"kind": kind, "batch_size": 0, "context_tokens": 0, "tokens": N}
                | {"layer_time_s": scale * (c_s + d_s * N), "device": "synthetic"}
                | {"dtype": "float32"}
            )
    return rows


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=st.floats(1e-6, 1e-3),
    b=st.floats(1e-12, 1e-8),
    c=st.floats(1e-6, 1e-3),
    d=st.floats(1e-9, 1e-6),
)
def test_round_trip_recovers_per_step_lines(
    tmp_path: Path, a: float, b: float, c: float, d: float
) -> None:
    """Rows from known per-layer lines come back as layers × those lines, exactly."""
    path = tmp_path / "p.csv"
    write_profile_csv(_rows(a, b, c, d, ("ffn_dense", "ffn_moe")), path)
    meas = read_profile_csv(path, load_model_spec(TINY_MOE))
    fitter = CostFitter(attention_batch_range=(1, 64), attention_context_range=(1, 1e6))
    fitter.fit(meas)
    # 3 layers of attention; FFN: 1 dense layer + 2 MoE layers at twice the dense time.
    assert fitter.alpha_attn_s_ == pytest.approx(3 * a, rel=1e-5)
    assert fitter.beta_attn_s_per_token_ == pytest.approx(3 * b, rel=1e-5)
    assert fitter.alpha_ffn_s_ == pytest.approx(5 * c, rel=1e-5)
    assert fitter.beta_ffn_s_per_token_ == pytest.approx(5 * d, rel=1e-5)
    assert fitter.attention_fit_max_rel_error_ < 1e-5


def test_header_and_dense_composition(tmp_path: Path) -> None:
    """The header is the documented columns; a dense model needs only ffn_dense rows."""
    path = tmp_path / "p.csv"
    write_profile_csv(_rows(1e-4, 1e-9, 2e-4, 1e-7, ("ffn_dense",)), path)
    assert path.read_text().splitlines()[0] == ",".join(PROFILE_COLUMNS)
    meas = read_profile_csv(path, load_model_spec(TINY_DENSE))
    assert np.allclose(meas.ffn_time_s, 2 * (2e-4 + 1e-7 * meas.ffn_tokens))
    assert meas.comm_batch is None and meas.device == "synthetic"
    with pytest.raises(InputError, match=r"has no ffn_moe rows, which .*tiny_deepseek"):
        read_profile_csv(path, load_model_spec(TINY_MOE))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bogus,1,1,1,0.1,cpu,f", r"kind must be one of .*line 2, column kind.*'bogus'"),
        ("attention,x,1,1,0.1,cpu,f", r"batch_size must be a number \(.*line 2"),
        ("attention,1.5,1,1,0.1,cpu,f", r"batch_size must be an integer >= 0 .*'1.5'"),
        ("attention,1,1,1,-2,cpu,f", r"layer_time_s must be a finite number >= 0 .*'-2'"),
        ("attention,0,1,1,0.1,cpu,f", r"need batch_size and context_tokens >= 1"),
        ("ffn_dense,0,0,0,0.1,cpu,f", r"tokens must be >= 1 \(.*line 2, column tokens\)"),
    ],
)
def test_row_errors_name_line_and_column(tmp_path: Path, line: str, message: str) -> None:
    """A malformed row is a TraceError naming the file, line and column."""
    path = tmp_path / "p.csv"
    path.write_text(",".join(PROFILE_COLUMNS) + "\n" + line + "\n")
    with pytest.raises(TraceError, match=message):
        read_profile_csv(path, load_model_spec(TINY_DENSE))


def test_missing_columns_and_rows(tmp_path: Path) -> None:
    """A missing column or no attention rows are reported."""
    path = tmp_path / "p.csv"
    path.write_text("kind,batch_size\nattention,1\n")
    with pytest.raises(TraceError, match=r"line 1: missing column.*context_tokens"):
        read_profile_csv(path, load_model_spec(TINY_DENSE))
    path.write_text(",".join(PROFILE_COLUMNS) + "\nffn_dense,0,0,8,0.1,cpu,f\n")
    with pytest.raises(InputError, match="has no attention rows"):
        read_profile_csv(path, load_model_spec(TINY_DENSE))
