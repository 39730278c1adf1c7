"""Model specs: config.json parsing, KV bytes, weights and FLOPs per side, checked by hand."""

from __future__ import annotations

import itertools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.cost import MODEL_PRESETS, ModelSpec, load_model_spec
from afdsizer.errors import DataFileError, InputError


def test_llama_70b_dense_by_hand() -> None:
    """Dense GQA: KV bytes, weights and FLOPs of Llama-3.1-70B worked out by hand."""
    m = load_model_spec("llama-3.1-70b")
    # KV: 2 (K,V) x 8 KV heads x 128 dims x 80 layers x 2 bytes.
    assert m.kv_bytes_per_token("bf16") == 2 * 8 * 128 * 80 * 2 == 327_680
    assert m.kv_bytes_per_token("fp8") == 163_840
    # Attention per layer: q 8192x8192 + k,v 8192x1024 each + o 8192x8192.
    assert m.attention_params_per_layer == 67_108_864 + 2 * 8_388_608 + 67_108_864
    # 80 layers + embedding and LM head (untied, 128256 x 8192 each), 2 bytes per weight.
    assert m.attention_weight_bytes == (80 * 150_994_944 + 2 * 1_050_673_152) * 2
    assert m.attention_weight_bytes == 28_361_883_648
    # FFN: gate, up, down = 3 x 8192 x 28672 per layer, 80 layers, bf16.
    assert m.ffn_weight_bytes == 80 * 704_643_072 * 2 == 112_742_891_520
    # One token does one MAC (2 FLOPs) per FFN weight.
    assert m.ffn_flop_per_token == 2 * 80 * 704_643_072
    # Scores and values: 4 x 64 heads x 128 dims per layer per cached token.
    assert m.attention_flop_per_kv_token == 80 * 4 * 64 * 128 == 2_621_440
    # Projections of all layers plus the LM head, 2 FLOPs per weight.
    assert m.attention_flop_per_token == 2 * (80 * 150_994_944 + 128_256 * 8192)
    assert not m.is_moe and not m.is_mla and m.num_dense_layers == 80


def test_mixtral_moe_by_hand() -> None:
    """MoE: Mixtral-8x7B holds 8 full-width experts per layer, a token uses 2 of them."""
    m = load_model_spec("mixtral-8x7b")
    expert = 3 * 4096 * 14336  # 176,160,768
    router = 4096 * 8
    assert m.expert_params == expert == 176_160_768
    assert m.ffn_weight_bytes == 32 * (8 * expert + router) * 2 == 90_196_410_368
    assert m.ffn_flop_per_token == 2 * 32 * (2 * expert + router) == 22_550_675_456
    assert m.kv_bytes_per_token("bf16") == 2 * 8 * 128 * 32 * 2 == 131_072
    assert m.num_moe_layers == 32 and m.num_dense_layers == 0


def test_deepseek_v3_mla_by_hand() -> None:
    """MLA + MoE: DeepSeek-V3 caches 512 + 64 latent dims per layer; fp8 matrices, while the
    embedding, LM head and routers stay 16-bit."""
    m = load_model_spec("deepseek-v3")
    assert m.is_mla and m.weight_bytes_per_param == 1
    assert (m.weight_dtype, m.quantization, m.activation_scheme) == ("fp8", "fp8_block", "dynamic")
    assert m.kv_bytes_per_token("bf16") == (512 + 64) * 61 * 2 == 70_272
    assert m.kv_bytes_per_token("fp8") == 35_136
    q_a, q_b = 7168 * 1536, 1536 * 128 * (128 + 64)
    kv_a, kv_b = 7168 * (512 + 64), 512 * 128 * (128 + 128)
    o = 128 * 128 * 7168
    assert m.attention_params_per_layer == q_a + q_b + kv_a + kv_b + o == 187_105_280
    assert m.attention_weight_bytes == 61 * 187_105_280 * 1 + 2 * 129_280 * 7168 * 2
    # 3 leading dense layers (I = 18432), 58 MoE layers: 256 routed + 1 shared expert + router.
    assert (m.num_dense_layers, m.num_moe_layers) == (3, 58)
    expert = 3 * 7168 * 2048
    dense = 3 * 7168 * 18432
    assert m.ffn_weight_bytes == (3 * dense + 58 * 257 * expert) * 1 + 58 * 7168 * 256 * 2
    assert m.ffn_flop_per_token == 2 * (3 * dense + 58 * (9 * expert + 7168 * 256))
    assert m.ffn_flop_per_token == 48_568_991_744
    # Absorbed MLA: 2·H·(512+64) for scores + 2·H·512 for values, per layer.
    assert m.attention_flop_per_kv_token == 61 * (2 * 128 * 576 + 2 * 128 * 512)


def test_presets_total_parameters_match_names() -> None:
    """Weights on both sides add up to the parameter counts the model names advertise."""
    billions = {
        "llama-3.1-70b": 70.6,
        "llama-3.1-8b": 8.0,
        "mixtral-8x7b": 46.7,
        "qwen3-235b-a22b": 235.1,
        "qwen3-235b-a22b-fp8": 235.1,
        "qwen3-30b-a3b": 30.5,
        "deepseek-v3": 671.0,
    }
    for name in MODEL_PRESETS:
        m = load_model_spec(name)
        params = m.total_params
        assert params == m.attention_params + m.ffn_params
        assert params / 1e9 == pytest.approx(billions[name], rel=0.01), name


def test_distinct_experts_matches_enumeration() -> None:
    """E·(1−(1−k/E)^N) equals the exact mean over all routings of N tokens (E=6, k=2, N=3)."""
    E, k, N = 6, 2, 3
    cfg = {
        "num_hidden_layers": 1,
        "hidden_size": 8,
        "num_attention_heads": 2,
        "vocab_size": 10,
        "num_experts": E,
        "num_experts_per_tok": k,
        "moe_intermediate_size": 4,
    }
    m = ModelSpec.from_hf_config(cfg)
    choices = list(itertools.combinations(range(E), k))
    total = sum(len(set().union(*r)) for r in itertools.product(choices, repeat=N))
    brute = total / len(choices) ** N
    assert m.distinct_experts(N) == pytest.approx(brute, rel=1e-12)
    assert np.allclose(m.distinct_experts(np.array([1.0, 1e6])), [k, E])


def test_qwen2_moe_shared_and_sparse_step() -> None:
    """qwen2_moe: shared_expert_intermediate_size, decoder_sparse_step and mlp_only_layers."""
    cfg = {
        "model_type": "qwen2_moe",
        "num_hidden_layers": 6,
        "hidden_size": 16,
        "intermediate_size": 40,
        "moe_intermediate_size": 8,
        "shared_expert_intermediate_size": 24,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "decoder_sparse_step": 2,
        "mlp_only_layers": [3],
        "vocab_size": 32,
    }
    m = ModelSpec.from_hf_config(cfg)
    # Sparse layers: (i+1) % 2 == 0 -> 1, 3, 5; layer 3 is forced dense -> MoE at 1 and 5.
    assert (m.num_moe_layers, m.num_dense_layers) == (2, 4)
    assert m.shared_intermediate_size == 24
    assert m.ffn_weight_bytes == 2 * (4 * 16 * 40 * 3 + 2 * (4 * 3 * 16 * 8 + 3 * 16 * 24 + 64))


@settings(max_examples=50, deadline=None)
@given(
    layers=st.integers(1, 8),
    kv_heads=st.integers(1, 4),
    group=st.integers(1, 4),
    head_dim=st.sampled_from([8, 16, 64]),
    hidden=st.integers(8, 256),
    inter=st.integers(1, 512),
    vocab=st.integers(1, 1000),
    tied=st.booleans(),
)
def test_dense_config_weights_equal_matrix_shapes(
    layers: int,
    kv_heads: int,
    group: int,
    head_dim: int,
    hidden: int,
    inter: int,
    vocab: int,
    tied: bool,
) -> None:
    """Any dense config: weights equal the sum of its weight-matrix sizes, KV by its formula."""
    heads = kv_heads * group
    cfg = {
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
    }
    m = ModelSpec.from_hf_config(cfg)
    per_layer_attn = [
        (hidden, heads * head_dim),
        (hidden, kv_heads * head_dim),
        (hidden, kv_heads * head_dim),
        (heads * head_dim, hidden),
    ]
    per_layer_mlp = [(hidden, inter), (hidden, inter), (inter, hidden)]
    embed = [(vocab, hidden)] * (1 if tied else 2)
    attn = layers * sum(math.prod(s) for s in per_layer_attn) + sum(math.prod(s) for s in embed)
    assert m.attention_weight_bytes == 2 * attn
    assert m.ffn_weight_bytes == 2 * layers * sum(math.prod(s) for s in per_layer_mlp)
    assert m.kv_bytes_per_token("fp8") == 2 * kv_heads * head_dim * layers


def test_unknown_preset_lists_known_ones() -> None:
    """An unknown model name is an InputError that lists every preset."""
    with pytest.raises(InputError, match=r"unknown model 'gpt-5'.*deepseek-v3.*qwen3-30b-a3b"):
        load_model_spec("gpt-5")


def test_bad_kv_dtype() -> None:
    """kv_dtype other than bf16/fp16/fp8 names the parameter and the value."""
    with pytest.raises(InputError, match=r"kv_dtype must be one of .* got 'int4'"):
        load_model_spec("llama-3.1-8b").kv_bytes_per_token("int4")


def test_config_file_errors(tmp_path: pytest.TempPathFactory) -> None:
    """Config files: missing file, broken JSON and a missing field give one-line errors."""
    from pathlib import Path

    base = Path(str(tmp_path))
    with pytest.raises(DataFileError, match="cannot read model config"):
        load_model_spec(base / "missing.json")
    bad = base / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataFileError, match=r"not JSON \(line 1, column 2\)"):
        load_model_spec(bad)
    folder = base / "hf_model"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"num_hidden_layers": 2, "hidden_size": 8, "num_attention_heads": 2,
                    "intermediate_size": 16, "vocab_size": 4})
    )  # fmt: skip
    assert load_model_spec(folder).kv_bytes_per_token() == 2 * 2 * 4 * 2 * 2
    partial = base / "partial.json"
    partial.write_text(json.dumps({"hidden_size": 8, "num_attention_heads": 2, "vocab_size": 4}))
    with pytest.raises(InputError, match=r"num_hidden_layers must be an integer >= 1 \(.*partial"):
        load_model_spec(partial)


QWEN3_235B = {
    "attention_per_layer": 4096 * 64 * 128 + 2 * 4096 * 4 * 128 + 64 * 128 * 4096,
    "embedding": 2 * 151_936 * 4096,
    "expert": 3 * 4096 * 1536,
    "router": 4096 * 128,
}
"""Qwen3-235B-A22B's matrices, from its config.json (94 layers, all MoE, 128 experts)."""


def _qwen3_fp8_bytes() -> int:
    """FP8 checkpoint bytes by hand: projections and experts 1 byte, embedding/head/router 2."""
    q = QWEN3_235B
    one_byte = 94 * q["attention_per_layer"] + 94 * 128 * q["expert"]
    two_bytes = q["embedding"] + 94 * q["router"]
    return one_byte * 1 + two_bytes * 2


def test_qwen3_fp8_preset_weight_bytes_by_hand() -> None:
    """The FP8 preset: same shapes as the bf16 one, ~235 B params at ~1 byte each."""
    q = QWEN3_235B
    fp8, bf16 = load_model_spec("qwen3-235b-a22b-fp8"), load_model_spec("qwen3-235b-a22b")
    params = 94 * (q["attention_per_layer"] + 128 * q["expert"] + q["router"]) + q["embedding"]
    assert params == fp8.total_params == bf16.total_params == 235_092_836_352
    assert params / 1e9 == pytest.approx(235, rel=0.001)  # "235B in total" (model card)
    assert (fp8.weight_dtype, fp8.quantization, fp8.activation_scheme) == (
        "fp8",
        "fp8_block",
        "dynamic",
    )
    assert fp8.attention_weight_bytes + fp8.ffn_weight_bytes == _qwen3_fp8_bytes()
    assert _qwen3_fp8_bytes() == 236_386_779_136  # 1.0055 bytes per parameter
    assert bf16.attention_weight_bytes + bf16.ffn_weight_bytes == 2 * params
    assert (bf16.weight_dtype, bf16.quantization) == ("bf16", None)
    # KV cache and FLOPs do not depend on the weight dtype.
    assert fp8.kv_bytes_per_token() == bf16.kv_bytes_per_token() == 2 * 4 * 128 * 94 * 2
    assert fp8.ffn_flop_per_token == bf16.ffn_flop_per_token


def test_fp8_config_json_gives_fp8_bytes(tmp_path: Path) -> None:
    """A config.json with quantization_config fp8 reads as the FP8 preset does."""
    text = resources.files("afdsizer.cost").joinpath("presets/models/qwen3-235b-a22b.json")
    cfg = json.loads(text.read_text())
    cfg["quantization_config"] = {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    m = load_model_spec(path)
    assert m.attention_weight_bytes + m.ffn_weight_bytes == _qwen3_fp8_bytes()
    assert (m.weight_dtype, m.quantization) == ("fp8", "fp8_block")
    # Per-tensor FP8 (no weight_block_size), static activations.
    cfg["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static"}
    m = ModelSpec.from_hf_config(cfg)
    assert (m.weight_dtype, m.quantization, m.activation_scheme) == ("fp8", "fp8", "static")
    # compressed-tensors with float8 block weights (llm-compressor's FP8_BLOCK).
    cfg["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "config_groups": {
            "group_0": {"weights": {"num_bits": 8, "type": "float", "strategy": "block"}}
        },
    }
    assert ModelSpec.from_hf_config(cfg).quantization == "fp8_block"


def test_weight_dtype_override() -> None:
    """Deployment.weight_dtype overrides the checkpoint's: bf16 → fp8 halves the matrices."""
    bf16, fp8 = load_model_spec("qwen3-235b-a22b"), load_model_spec("qwen3-235b-a22b-fp8")
    online = bf16.with_weight_dtype("fp8")
    assert online.ffn_weight_bytes == fp8.ffn_weight_bytes
    assert online.attention_weight_bytes == fp8.attention_weight_bytes
    assert (online.quantization, online.activation_scheme) == ("fp8", "dynamic")
    back = fp8.with_weight_dtype("bf16")
    assert back.ffn_weight_bytes == bf16.ffn_weight_bytes and back.quantization is None
    assert fp8.with_weight_dtype(None) is fp8 and fp8.with_weight_dtype("fp8") is fp8
    with pytest.raises(
        InputError, match=r"weight_dtype must be one of bf16, fp16, fp8, got 'int4'"
    ):
        fp8.with_weight_dtype("int4")
    fp16 = ModelSpec.from_hf_config(
        {"num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 2,
         "intermediate_size": 4, "vocab_size": 3, "torch_dtype": "float16"}
    )  # fmt: skip
    assert fp16.weight_dtype == "fp16" and fp16.weight_bytes_per_param == 2


_BASE = {
    "num_hidden_layers": 4,
    "hidden_size": 64,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 100,
}
_MOE = {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_key_value_heads": 7}, r"heads 32 must be a multiple of num_key_value_heads 7"),
        ({"num_key_value_heads": 64}, r"must be a multiple of num_key_value_heads 64"),
        ({"num_hidden_layers": 0}, r"num_hidden_layers must be an integer >= 1 \(cfg\), got 0"),
        ({"num_hidden_layers": 10**12}, r"num_hidden_layers must be at most 10000 \(cfg\)"),
        ({"hidden_size": -64}, r"hidden_size must be an integer >= 1 \(cfg\), got -64"),
        ({"hidden_size": 64.0}, r"hidden_size must be an integer >= 1 \(cfg\), got 64.0"),
        ({"head_dim": 0}, r"head_dim must be an integer >= 1 \(cfg\), got 0"),
        ({"head_dim": None, "hidden_size": 65}, r"hidden_size 65 must be a multiple of num_"),
        ({"vocab_size": True}, r"vocab_size must be an integer >= 1 \(cfg\), got True"),
        ({"intermediate_size": 0}, r"intermediate_size must be an integer >= 1 \(cfg\), got 0"),
        ({**_MOE, "num_experts_per_tok": 9}, r"num_experts_per_tok 9 must not exceed the 8 routed"),
        ({**_MOE, "num_experts_per_tok": 0}, r"num_experts_per_tok must be an integer >= 1 \(cfg"),
        ({**_MOE, "num_experts": -8}, r"num_experts must be an integer >= 0 \(cfg\), got -8"),
        ({**_MOE, "mlp_only_layers": [4]}, r"mlp_only_layers must list layer indices in \[0, 4\)"),
        ({**_MOE, "first_k_dense_replace": 5}, r"first_k_dense_replace must be at most 4"),
        ({"kv_lora_rank": 512}, r"qk_rope_head_dim must be an integer >= 1 with kv_lora_rank > 0"),
        ({"tie_word_embeddings": "yes"}, r"tie_word_embeddings must be true or false \(cfg\)"),
        ({"torch_dtype": "int8"}, r"torch_dtype must be one of bfloat16, .* \(cfg\), got 'int8'"),
        ({"quantization_config": {"quant_method": "awq"}}, r"quant_method 'awq' is not modelled"),
        ({"quantization_config": "fp8"}, r"quantization_config must be a mapping \(cfg\)"),
        (
            {"quantization_config": {"quant_method": "fp8", "weight_block_size": [128]}},
            r"weight_block_size must be two integers >= 1 \(cfg\), got \[128\]",
        ),
        (
            {"quantization_config": {"quant_method": "fp8", "activation_scheme": "lazy"}},
            r"activation_scheme must be dynamic or static \(cfg\), got 'lazy'",
        ),
        (
            {"quantization_config": {"quant_method": "compressed-tensors", "config_groups": {}}},
            r"compressed-tensors\) must quantize weights to 8-bit floats",
        ),
    ],
)  # fmt: skip
def test_impossible_shapes_are_refused(changes: dict[str, Any], message: str) -> None:
    """Impossible or unmodelled configs give one InputError line naming the field and file."""
    cfg = {**_BASE, **changes}
    with pytest.raises(InputError, match=message) as err:
        ModelSpec.from_hf_config(cfg, name="cfg")
    assert "\n" not in str(err.value)


@settings(max_examples=60, deadline=None)
@given(heads=st.integers(1, 128), kv_heads=st.integers(1, 128))
def test_gqa_heads_rule(heads: int, kv_heads: int) -> None:
    """A GQA config is accepted exactly when the KV heads divide the query heads."""
    cfg = {**_BASE, "num_attention_heads": heads, "num_key_value_heads": kv_heads}
    if heads % kv_heads == 0:
        assert ModelSpec.from_hf_config(cfg).num_kv_heads == kv_heads
    else:
        with pytest.raises(InputError, match="must be a multiple of num_key_value_heads"):
            ModelSpec.from_hf_config(cfg)


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(sorted(_BASE)),
    value=st.one_of(st.integers(-(10**15), 0), st.floats(allow_nan=True), st.text(max_size=3)),
)
def test_bad_sizes_never_pass(key: str, value: Any) -> None:
    """Any non-positive, non-integer or text size of a required field is refused, in one line."""
    with pytest.raises(InputError) as err:
        ModelSpec.from_hf_config({**_BASE, key: value}, name="cfg")
    assert key in str(err.value) and "\n" not in str(err.value)
