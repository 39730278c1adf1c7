"""Time one decode layer's Attention and FFN on the local device with PyTorch (optional extra).

``pip install afdsizer[profile]``. What one measurement is (rows of the profile CSV,
:mod:`afdsizer.cost._profile_csv`):

- ``attention`` (B, s): fused q/k/v projection of B tokens, scaled-dot-product attention of one
  query per request over s cached tokens, output projection. Heads are divided by
  ``attn_gpus`` (tensor parallelism). For MLA the weight-absorbed form is timed (one latent head of
  width r_kv + d_rope shared by all query heads, values of width r_kv), as FlashMLA runs it.
- ``ffn_dense`` N: gated MLP (gate/up, SiLU·mul, down) of N tokens, width I / ``ffn_gpus``.
- ``ffn_moe`` N: N tokens routed uniformly to top-k of E experts (seeded); this GPU holds
  E / ``ffn_gpus`` experts (expert parallelism) and runs one GEMM pair per active local expert,
  plus the shared experts (width I_shared / ``ffn_gpus``).

Each point is the median of ``repeats`` timed runs after ``warmup`` runs, synchronised on GPUs.
The LM head and intra-instance collectives are not timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from afdsizer.cost._model import ModelSpec
from afdsizer.errors import InputError

__all__ = ["DEFAULT_MAX_KV_BYTES", "profile_model"]

DEFAULT_MAX_KV_BYTES = 8 * 2**30
"""Attention points whose KV cache (one layer) would exceed this many bytes are skipped."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError(
            "afdsizer profile needs PyTorch: pip install 'afdsizer[profile]'"
        ) from None
    return torch


def _timer(torch: Any, device: Any, fn: Callable[[], Any], warmup: int, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs (synchronised on CUDA)."""
    cuda = device.type == "cuda"
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


def profile_model(
    model: ModelSpec,
    *,
    batch_sizes: Sequence[int],
    context_tokens: Sequence[int],
    ffn_tokens: Sequence[int],
    attn_gpus: int = 1,
    ffn_gpus: int = 1,
    device: str = "auto",
    dtype: str = "auto",
    warmup: int = 2,
    repeats: int = 5,
    seed: int = 0,
    max_kv_bytes: int = DEFAULT_MAX_KV_BYTES,
) -> list[dict[str, Any]]:
    """Time decode attention over B × s and FFN layers over N on the local device.

    Parameters
    ----------
    model : ModelSpec
        Shapes to time (use a small config.json on a CPU).
    batch_sizes, context_tokens : sequence of int
        B values and KV tokens per request s of the attention grid.
    ffn_tokens : sequence of int
        N values of the FFN grid, tokens.
    attn_gpus, ffn_gpus : int
        Shards of one Attention / FFN instance this device stands for.
    device : str, default "auto"
        ``cuda`` if available else ``cpu``; or a torch device string.
    dtype : str, default "auto"
        ``bfloat16`` on GPUs, ``float32`` on CPUs; or a torch dtype name.
    warmup, repeats : int
        Untimed and timed runs per point.
    seed : int
        Seed of the weights, caches and expert routing.
    max_kv_bytes : int
        Skip attention points whose one-layer KV cache exceeds this, bytes.

    Returns
    -------
    list of dict
        Rows with the profile CSV columns.

    Raises
    ------
    InputError
        PyTorch missing, empty grids, or shards that do not divide the heads/experts.
    """
    torch = _torch()
    for name, grid in (
        ("batch_sizes", batch_sizes),
        ("context_tokens", context_tokens),
        ("ffn_tokens", ffn_tokens),
    ):
        if not grid or any(int(v) < 1 for v in grid):
            raise InputError(f"{name} must be a non-empty list of integers >= 1, got {list(grid)}")
    if repeats < 1 or warmup < 0:
        raise InputError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    H, h = model.num_attention_heads, model.hidden_size
    if H % attn_gpus:
        raise InputError(f"attn_gpus={attn_gpus} must divide the {H} attention heads")
    if model.is_moe and model.num_experts % ffn_gpus:
        raise InputError(f"ffn_gpus={ffn_gpus} must divide the {model.num_experts} experts")
    dev = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    )
    if dtype == "auto":
        dtype = "bfloat16" if dev.type == "cuda" else "float32"
    try:
        tdtype = getattr(torch, dtype)
    except AttributeError:
        raise InputError(f"dtype must be a torch dtype name, got {dtype!r}") from None
    gen = torch.Generator(device="cpu").manual_seed(seed)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    elem = torch.tensor([], dtype=tdtype).element_size()

    def rand(*shape: int) -> Any:
        return (torch.randn(*shape, generator=gen) * 0.02).to(device=dev, dtype=tdtype)

    F = torch.nn.functional
    rows: list[dict[str, Any]] = []
    common = {"device": device_name, "dtype": dtype}

    # --- attention: heads sharded over attn_gpus
    Hl = H // attn_gpus
    if model.is_mla:
        kv_heads, d_qk, d_v = 1, model.kv_lora_rank + model.qk_rope_head_dim, model.kv_lora_rank
    else:
        kv_heads, d_qk = max(model.num_kv_heads // attn_gpus, 1), model.head_dim
        d_v = d_qk
    w_q = rand(h, Hl * d_qk + (0 if model.is_mla else 2 * kv_heads * d_qk))
    w_o = rand(Hl * d_v, h)
    with torch.inference_mode():
        for B in batch_sizes:
            x = rand(B, h)
            for s in context_tokens:
                if B * s * kv_heads * (d_qk + d_v) * elem > max_kv_bytes:
                    continue
                k = rand(B, kv_heads, s, d_qk)
                v = k[..., :d_v] if model.is_mla else rand(B, kv_heads, s, d_v)

                def attention(x: Any = x, k: Any = k, v: Any = v, B: int = B) -> Any:
                    q = (x @ w_q)[:, : Hl * d_qk].view(B, Hl, 1, d_qk)
                    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=kv_heads != Hl)
                    return out.reshape(B, Hl * d_v) @ w_o

                t = _timer(torch, dev, attention, warmup, repeats)
                rows.append(
                    {"kind": "attention", "batch_size": B, "context_tokens": s, "tokens": B}
                    | {"layer_time_s": t}
                    | common
                )

        # --- dense MLP, tensor-parallel over ffn_gpus
        def mlp(width: int) -> Callable[[Any], Any]:
            w_gu, w_d = rand(h, 2 * width), rand(width, h)

            def run(x: Any) -> Any:
                gate, up = (x @ w_gu).chunk(2, dim=-1)
                return (F.silu(gate) * up) @ w_d

            return run

        if model.num_dense_layers:
            dense = mlp(max(model.intermediate_size // ffn_gpus, 1))
            for N in ffn_tokens:
                x = rand(N, h)
                t = _timer(torch, dev, lambda x=x: dense(x), warmup, repeats)  # type: ignore[misc]
                rows.append(
                    {"kind": "ffn_dense", "batch_size": 0, "context_tokens": 0, "tokens": N}
                    | {"layer_time_s": t}
                    | common
                )

        # --- MoE layer, expert-parallel over ffn_gpus
        if model.num_moe_layers:
            E, topk = model.num_experts, model.experts_per_token
            local = E // ffn_gpus
            experts = [mlp(model.moe_intermediate_size) for _ in range(local)]
            shared = (
                mlp(max(model.shared_intermediate_size // ffn_gpus, 1))
                if model.shared_intermediate_size
                else None
            )
            for N in ffn_tokens:
                x = rand(N, h)
                # Uniform top-k routing: k distinct experts per token (seeded).
                choice = torch.rand(N, E, generator=gen).topk(topk, dim=-1).indices.to(dev)

                def moe(x: Any = x, choice: Any = choice) -> Any:
                    out = shared(x) if shared is not None else torch.zeros_like(x)
                    for e in range(local):
                        tok = (choice == e).any(dim=-1).nonzero().flatten()
                        if tok.numel():
                            out.index_add_(0, tok, experts[e](x[tok]))
                    return out

                t = _timer(torch, dev, moe, warmup, repeats)
                rows.append(
                    {"kind": "ffn_moe", "batch_size": 0, "context_tokens": 0, "tokens": N}
                    | {"layer_time_s": t}
                    | common
                )
    return rows
