"""Regenerate tests/data/silicon_sample/ from the full tables in ../shared (run from the repo root).

``python tests/data/silicon_sample/make_sample.py [SHARED_GPU_DIR]`` keeps, from one GPU folder of
aiconfigurator's measured tables, only the rows that calibrating ``llama-3.1-8b`` and
``qwen3-30b-a3b`` on 1 or 8 GPUs per instance reads. Rows are copied unchanged (no value is
altered); see README.md beside this script for the attribution.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DEFAULT_SRC = HERE.parents[2].parent / "shared/calibration/aiconfigurator_silicon/h200_sxm"

# Attention heads (num_heads, num_kv_heads, head_dim) of the two models at TP 1.
ATTENTION = [(32, 8, 128), (32, 4, 128)]
# Fused MoE shape of qwen3-30b-a3b: hidden, expert width, top-k, experts.
MOE = (2048, 768, 8, 128)


def _gemm_shapes() -> list[tuple[int, int]]:
    """(n, k) of every GEMM the two models look up (before nearest-shape matching)."""
    from afdsizer.cost import load_model_spec

    shapes = set()
    for name in ("llama-3.1-8b", "qwen3-30b-a3b"):
        m = load_model_spec(name)
        H, kv, d, h = m.num_attention_heads, m.num_kv_heads, m.head_dim, m.hidden_size
        shapes |= {((H + 2 * kv) * d, h), (h, H * d), (m.vocab_size, h)}
        for g in (1, 8):
            if m.intermediate_size and m.num_dense_layers:
                shapes |= {(2 * m.intermediate_size // g, h), (h, m.intermediate_size // g)}
    return sorted(shapes)


def _nearest(table: pl.DataFrame, n: int, k: int) -> tuple[int, int]:
    pairs = table.select("n", "k").unique().rows()
    import math

    return min(pairs, key=lambda p: abs(math.log(p[0] / n)) + abs(math.log(p[1] / k)))


def main(src: Path) -> None:
    """Write the sample folder from ``src``."""
    dst = HERE / src.name
    for path in sorted(src.glob("*/*/*/*.parquet")):
        df = pl.read_parquet(path)
        table = path.parts[-4]
        if table == "attention":
            keep = (
                pl.any_horizontal(
                    (pl.col("num_heads") == a)
                    & (pl.col("num_key_value_heads") == b)
                    & (pl.col("head_dim") == c)
                    for a, b, c in ATTENTION
                )
                & (pl.col("window_size") == 0)
                & (pl.col("kv_cache_dtype") == "bfloat16")
            )
        elif table == "gemm":
            bf16 = df.filter(pl.col("gemm_dtype") == "bfloat16")
            near = {_nearest(bf16, n, k) for n, k in _gemm_shapes()}
            keep = (pl.col("gemm_dtype") == "bfloat16") & pl.any_horizontal(
                (pl.col("n") == n) & (pl.col("k") == k) for n, k in near
            )
        elif table == "moe":
            h, inter, topk, experts = MOE
            keep = (
                (pl.col("hidden_size") == h)
                & (pl.col("inter_size") == inter)
                & (pl.col("topk") == topk)
                & (pl.col("num_experts") == experts)
                & (pl.col("moe_dtype") == "bfloat16")
                & (pl.col("moe_tp_size") == 1)
                & pl.col("moe_ep_size").is_in([1, 8])
            )
        elif table == "comm":
            keep = (pl.col("op_name") == "alltoall") & (pl.col("nccl_dtype") == "half")
        else:
            continue
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        df.filter(keep).write_parquet(out, compression="zstd", compression_level=22)
        print(f"{out.relative_to(HERE)}: {df.filter(keep).height} of {df.height} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SRC)
