"""A Hugging Face ``config.json`` read into :class:`ModelSpec` fields; impossible shapes refused.

docs/design.md §5, §9. Each family names its fields differently (Llama, Qwen2/3 dense and MoE,
Mixtral, DeepSeek-V2/V3); this module maps them onto one set of shapes and reads the checkpoint's
precision (``torch_dtype`` and ``quantization_config``). Every check names the config field and
the file, so a hand-edited or truncated config fails with one line instead of a wrong answer.
"""

from __future__ import annotations

from typing import Any

from afdsizer.errors import InputError

__all__ = ["spec_fields_from_hf_config"]

MAX_LAYERS = 10_000
"""Most decoder layers a config may declare (the largest public models have ~100-200)."""
MAX_DIMENSION = 10_000_000
"""Most elements any one dimension (hidden, heads, vocabulary, experts...) may declare."""

_TORCH_DTYPES: dict[str, str] = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    # Engines serve fp32 checkpoints in 16-bit ("--dtype auto"): price them as such.
    "float32": "bf16",
    "float": "bf16",
}


def _int(
    cfg: dict[str, Any],
    key: str,
    where: str,
    *,
    minimum: int = 1,
    default: int | None = None,
    maximum: int = MAX_DIMENSION,
) -> int:
    """``cfg[key]`` as an int in [minimum, maximum]; ``default`` when absent or null."""
    value = cfg.get(key)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{key} must be an integer >= {minimum} ({where}), got {value!r}")
    if value > maximum:
        raise InputError(f"{key} must be at most {maximum} ({where}), got {value}")
    return value


def _attention_fields(c: dict[str, Any], name: str) -> dict[str, Any]:
    hidden = _int(c, "hidden_size", name)
    heads = _int(c, "num_attention_heads", name)
    kv_heads = _int(c, "num_key_value_heads", name, default=heads)
    if c.get("head_dim") is None and hidden % heads:
        raise InputError(
            f"hidden_size {hidden} must be a multiple of num_attention_heads {heads} when "
            f"head_dim is absent ({name})"
        )
    head_dim = _int(c, "head_dim", name, default=hidden // heads)
    fields: dict[str, Any] = {
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "kv_lora_rank": _int(c, "kv_lora_rank", name, minimum=0, default=0),
        "q_lora_rank": _int(c, "q_lora_rank", name, minimum=0, default=0),
        "qk_rope_head_dim": _int(c, "qk_rope_head_dim", name, minimum=0, default=0),
        "qk_nope_head_dim": _int(c, "qk_nope_head_dim", name, minimum=0, default=0),
        "v_head_dim": _int(c, "v_head_dim", name, minimum=0, default=0),
    }
    if fields["kv_lora_rank"]:
        for key in ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            if fields[key] < 1:
                raise InputError(
                    f"{key} must be an integer >= 1 with kv_lora_rank > 0 (MLA) ({name}), "
                    f"got {c.get(key)!r}"
                )
    elif heads % kv_heads:
        # GQA shares each KV head among heads / kv_heads query heads: it must divide.
        raise InputError(
            f"num_attention_heads {heads} must be a multiple of num_key_value_heads "
            f"{kv_heads} ({name})"
        )
    return fields


def _moe_layer_count(c: dict[str, Any], name: str, layers: int) -> int:
    """Layers with routed experts: past the leading dense ones, not MLP-only, on the sparse step."""
    first_dense = _int(c, "first_k_dense_replace", name, minimum=0, default=0, maximum=layers)
    step = _int(c, "decoder_sparse_step", name, minimum=0, default=1, maximum=layers) or 1
    mlp_only = c.get("mlp_only_layers") or []
    if not isinstance(mlp_only, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers for i in mlp_only
    ):
        raise InputError(
            f"mlp_only_layers must list layer indices in [0, {layers}) ({name}), got {mlp_only!r}"
        )
    forced = set(mlp_only)
    return sum(1 for i in range(first_dense, layers) if (i + 1) % step == 0 and i not in forced)


def _ffn_fields(c: dict[str, Any], name: str, layers: int) -> dict[str, Any]:
    experts = 0
    for key in ("n_routed_experts", "num_local_experts", "num_experts"):
        experts = experts or _int(c, key, name, minimum=0, default=0)
    if not experts:
        return {
            "intermediate_size": _int(c, "intermediate_size", name),
            "num_dense_layers": layers,
        }
    top_k = _int(c, "num_experts_per_tok", name)
    if top_k > experts:
        raise InputError(
            f"num_experts_per_tok {top_k} must not exceed the {experts} routed experts ({name})"
        )
    # Mixtral has no moe_intermediate_size: its experts are full-width MLPs.
    moe_inter = _int(c, "moe_intermediate_size", name, minimum=0, default=0)
    moe_inter = moe_inter or _int(c, "intermediate_size", name)
    shared = _int(c, "shared_expert_intermediate_size", name, minimum=0, default=0)
    shared = shared or _int(c, "n_shared_experts", name, minimum=0, default=0) * moe_inter
    dense_layers = layers - _moe_layer_count(c, name, layers)
    inter = _int(c, "intermediate_size", name, minimum=0, default=0) if dense_layers else 0
    if dense_layers and inter == 0:
        raise InputError(f"intermediate_size must be >= 1 for the dense layers ({name})")
    return {
        "intermediate_size": inter,
        "num_experts": experts,
        "experts_per_token": top_k,
        "moe_intermediate_size": moe_inter,
        "shared_intermediate_size": shared,
        "num_dense_layers": dense_layers,
    }


def _fp8_from_compressed_tensors(quant: dict[str, Any], name: str) -> str:
    """``fp8_block`` or ``fp8`` for a compressed-tensors config whose weights are 8-bit floats."""
    groups = quant.get("config_groups")
    weights = [g.get("weights") for g in (groups.values() if isinstance(groups, dict) else ())]
    weights = [w for w in weights if isinstance(w, dict)]
    if not weights or not all(w.get("num_bits") == 8 and w.get("type") == "float" for w in weights):
        raise InputError(
            "quantization_config (compressed-tensors) must quantize weights to 8-bit floats "
            f"(fp8) ({name}); other formats are not modelled"
        )
    return "fp8_block" if all(w.get("strategy") == "block" for w in weights) else "fp8"


def _precision_fields(c: dict[str, Any], name: str) -> dict[str, Any]:
    """weight_dtype, quantization and activation_scheme from torch_dtype and quantization_config."""
    dtype = c.get("torch_dtype") or c.get("dtype") or "bfloat16"
    if not isinstance(dtype, str) or dtype.removeprefix("torch.") not in _TORCH_DTYPES:
        raise InputError(
            f"torch_dtype must be one of {', '.join(_TORCH_DTYPES)} ({name}), got {dtype!r}"
        )
    fields: dict[str, Any] = {
        "weight_dtype": _TORCH_DTYPES[dtype.removeprefix("torch.")],
        "quantization": None,
        "activation_scheme": None,
    }
    quant = c.get("quantization_config")
    if quant is None:
        return fields
    if not isinstance(quant, dict):
        raise InputError(f"quantization_config must be a mapping ({name}), got {quant!r}")
    method = str(quant.get("quant_method", "")).lower()
    if method == "fp8":
        block = quant.get("weight_block_size")
        if block is not None and not (
            isinstance(block, list)
            and len(block) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in block)
        ):
            raise InputError(
                f"quantization_config.weight_block_size must be two integers >= 1 ({name}), "
                f"got {block!r}"
            )
        kind = "fp8_block" if block is not None else "fp8"
    elif method == "compressed-tensors":
        kind = _fp8_from_compressed_tensors(quant, name)
    else:
        raise InputError(
            f"quantization_config.quant_method {method!r} is not modelled ({name}); "
            "afdsizer prices fp8 and 16-bit checkpoints"
        )
    scheme = quant.get("activation_scheme", "dynamic")
    if scheme not in ("dynamic", "static"):
        raise InputError(
            f"quantization_config.activation_scheme must be dynamic or static ({name}), "
            f"got {scheme!r}"
        )
    fields.update(weight_dtype="fp8", quantization=kind, activation_scheme=scheme)
    return fields


def spec_fields_from_hf_config(config: dict[str, Any], *, name: str) -> dict[str, Any]:
    """Keyword arguments of :class:`ModelSpec` read from a parsed config.json.

    Raises
    ------
    InputError
        A required field is missing, out of range, or the shapes are impossible (heads not a
        multiple of the KV heads, top-k above the expert count, a quantization not modelled...);
        one line naming the field and ``name``.
    """
    c = config
    layers = _int(c, "num_hidden_layers", name, maximum=MAX_LAYERS)
    tied = c.get("tie_word_embeddings", False)
    if not isinstance(tied, bool):
        raise InputError(f"tie_word_embeddings must be true or false ({name}), got {tied!r}")
    return {
        "name": name,
        "num_layers": layers,
        "vocab_size": _int(c, "vocab_size", name),
        "tie_word_embeddings": tied,
        **_attention_fields(c, name),
        **_ffn_fields(c, name, layers),
        **_precision_fields(c, name),
    }
