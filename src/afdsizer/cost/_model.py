"""Model specs from Hugging Face ``config.json``: shapes, KV bytes, weights and FLOPs per side.

DESIGN.md §5. An AFD deployment splits every decoder layer: the **Attention side** holds the
attention projections, the KV cache, the embedding table and the LM head (it owns the token
state); the **FFN side** holds the dense MLP or the MoE experts (routed and shared) and the
router. Norms and biases are left out: they are < 0.1% of the weights of every preset.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

from afdsizer._io import read_text_file
from afdsizer.errors import DataFileError, InputError

__all__ = ["KV_DTYPE_BYTES", "MODEL_PRESETS", "ModelSpec", "load_model_spec"]

KV_DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1}
"""Bytes per element of the KV cache for each ``--kv-dtype``."""

_DTYPE_BYTES: dict[str, int] = {
    "bfloat16": 2,
    "float16": 2,
    "float32": 4,
    "fp8": 1,
    "float8_e4m3fn": 1,
}

MODEL_PRESETS: tuple[str, ...] = (
    "deepseek-v3",
    "llama-3.1-70b",
    "llama-3.1-8b",
    "mixtral-8x7b",
    "qwen3-235b-a22b",
    "qwen3-30b-a3b",
)
"""Bundled model presets (``cost/presets/models/<name>.json``, real config.json values)."""


def _positive_int(cfg: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{key} must be an integer >= 1 ({where}), got {value!r}")
    return value


def _count(cfg: dict[str, Any], key: str, where: str, default: int = 0) -> int:
    value = cfg.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{key} must be an integer >= 0 ({where}), got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Shapes of a decoder-only transformer, as afdsizer's cost model needs them.

    Build one with :meth:`from_hf_config`, :meth:`from_preset` or :func:`load_model_spec`.

    Parameters
    ----------
    name : str
        Preset name or config path, for reports.
    num_layers : int
        Decoder layers (``num_hidden_layers``).
    hidden_size : int
        Model width h (elements).
    num_attention_heads, num_kv_heads, head_dim : int
        Query heads H, KV heads H_kv, head dimension d (GQA/MHA).
    intermediate_size : int
        Width of a dense gated MLP (dense models, and the leading dense layers of MoE models).
    vocab_size : int
        Vocabulary V (embedding table and LM head are V·h each).
    tie_word_embeddings : bool
        LM head shares the embedding weights.
    weight_bytes_per_param : int
        Bytes per weight (2 for bf16, 1 for fp8-quantised checkpoints such as DeepSeek-V3).
    num_experts, experts_per_token : int
        Routed experts E and top-k per token (0 and 0 for dense models).
    moe_intermediate_size : int
        Width of one routed expert's gated MLP.
    shared_intermediate_size : int
        Total width of the shared expert(s) (n_shared · moe_intermediate_size for DeepSeek).
    num_dense_layers : int
        Layers with a dense MLP instead of MoE (``first_k_dense_replace``, ``mlp_only_layers``).
    kv_lora_rank, q_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim : int
        Multi-head latent attention (MLA) ranks; ``kv_lora_rank == 0`` means GQA.
    """

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    weight_bytes_per_param: int = 2
    num_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_intermediate_size: int = 0
    num_dense_layers: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0

    def __post_init__(self) -> None:
        if self.num_experts and not 1 <= self.experts_per_token <= self.num_experts:
            raise InputError(
                f"experts_per_token must be in [1, num_experts={self.num_experts}] "
                f"({self.name}), got {self.experts_per_token}"
            )
        if not 0 <= self.num_dense_layers <= self.num_layers:
            raise InputError(
                f"dense layers must be in [0, num_layers={self.num_layers}] ({self.name}), "
                f"got {self.num_dense_layers}"
            )
        if self.num_experts == 0 and self.num_dense_layers != self.num_layers:
            raise InputError(f"a dense model has every layer dense ({self.name})")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_hf_config(cls, config: dict[str, Any], *, name: str = "config.json") -> ModelSpec:
        """Read a Hugging Face ``config.json`` (Llama, Qwen2/3, Qwen-MoE, Mixtral, DeepSeek-V3).

        Parameters
        ----------
        config : dict
            The parsed config.json.
        name : str
            Label used in errors and reports.

        Raises
        ------
        InputError
            A required field is missing or out of range.
        """
        c = config
        layers = _positive_int(c, "num_hidden_layers", name)
        hidden = _positive_int(c, "hidden_size", name)
        heads = _positive_int(c, "num_attention_heads", name)
        kv_heads = _positive_int(c, "num_key_value_heads", name, default=heads)
        head_dim = c.get("head_dim") or hidden // heads
        kv_lora = _count(c, "kv_lora_rank", name)
        # Experts: each family names them differently.
        experts = _count(c, "n_routed_experts", name) or _count(c, "num_local_experts", name)
        experts = experts or _count(c, "num_experts", name)
        top_k = _count(c, "num_experts_per_tok", name) if experts else 0
        if experts:
            # Mixtral has no moe_intermediate_size: its experts are full-width MLPs.
            moe_inter = _count(c, "moe_intermediate_size", name) or _positive_int(
                c, "intermediate_size", name
            )
            shared = _count(c, "shared_expert_intermediate_size", name)
            shared = shared or _count(c, "n_shared_experts", name) * moe_inter
            dense_layers = _count(c, "first_k_dense_replace", name)
            mlp_only = c.get("mlp_only_layers") or []
            step = _count(c, "decoder_sparse_step", name, default=1) or 1
            sparse = [
                i
                for i in range(layers)
                if i >= dense_layers and i not in mlp_only and (i + 1) % step == 0
            ]
            dense_layers = layers - len(sparse)
            inter = _count(c, "intermediate_size", name) if dense_layers else 0
            if dense_layers and inter == 0:
                raise InputError(f"intermediate_size must be >= 1 for dense layers ({name})")
        else:
            moe_inter = shared = 0
            dense_layers = layers
            inter = _positive_int(c, "intermediate_size", name)
        dtype = str(c.get("torch_dtype") or c.get("dtype") or "bfloat16")
        wbytes = _DTYPE_BYTES.get(dtype, 2)
        quant = c.get("quantization_config") or {}
        if str(quant.get("quant_method", "")).lower() == "fp8":
            wbytes = 1
        return cls(
            name=name,
            num_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=int(head_dim),
            intermediate_size=inter,
            vocab_size=_positive_int(c, "vocab_size", name),
            tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
            weight_bytes_per_param=wbytes,
            num_experts=experts,
            experts_per_token=top_k,
            moe_intermediate_size=moe_inter,
            shared_intermediate_size=shared,
            num_dense_layers=dense_layers,
            kv_lora_rank=kv_lora,
            q_lora_rank=_count(c, "q_lora_rank", name),
            qk_rope_head_dim=_count(c, "qk_rope_head_dim", name),
            qk_nope_head_dim=_count(c, "qk_nope_head_dim", name),
            v_head_dim=_count(c, "v_head_dim", name),
        )

    @classmethod
    def from_preset(cls, name: str) -> ModelSpec:
        """Load a bundled preset (see :data:`MODEL_PRESETS`).

        Raises
        ------
        InputError
            Unknown name; the message lists the known ones.
        """
        if name not in MODEL_PRESETS:
            raise InputError(
                f"unknown model {name!r}; known presets: {', '.join(MODEL_PRESETS)} "
                "(or give a config.json path)"
            )
        text = resources.files("afdsizer.cost").joinpath(f"presets/models/{name}.json").read_text()
        return cls.from_hf_config(json.loads(text), name=name)

    # ----------------------------------------------------------------- derived shapes
    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        """True when some layers route tokens to experts."""
        return self.num_experts > 0

    @property
    def num_moe_layers(self) -> int:
        """Layers with routed experts."""
        return self.num_layers - self.num_dense_layers

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> int:
        """KV-cache bytes one token occupies, all layers.

        GQA: 2 (K and V) · H_kv · d · layers · bytes. MLA caches the compressed latent and the
        decoupled RoPE key: (kv_lora_rank + qk_rope_head_dim) · layers · bytes.

        Raises
        ------
        InputError
            ``kv_dtype`` is not one of :data:`KV_DTYPE_BYTES`.
        """
        if kv_dtype not in KV_DTYPE_BYTES:
            raise InputError(
                f"kv_dtype must be one of {', '.join(KV_DTYPE_BYTES)}, got {kv_dtype!r}"
            )
        b = KV_DTYPE_BYTES[kv_dtype]
        if self.is_mla:
            return (self.kv_lora_rank + self.qk_rope_head_dim) * self.num_layers * b
        return 2 * self.num_kv_heads * self.head_dim * self.num_layers * b

    @property
    def attention_params_per_layer(self) -> int:
        """Weights of one layer's attention projections (q, k, v, o or the MLA factors)."""
        h, H = self.hidden_size, self.num_attention_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = h * self.q_lora_rank + self.q_lora_rank * H * qk if self.q_lora_rank else h * H * qk
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            o = H * self.v_head_dim * h
            return q + kv_a + kv_b + o
        d = self.head_dim
        return h * H * d + 2 * h * self.num_kv_heads * d + H * d * h

    @property
    def embedding_params(self) -> int:
        """Embedding table plus LM head (V·h each unless tied)."""
        v_h = self.vocab_size * self.hidden_size
        return v_h if self.tie_word_embeddings else 2 * v_h

    @property
    def dense_mlp_params(self) -> int:
        """One dense gated MLP (gate, up, down): 3·h·I."""
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def expert_params(self) -> int:
        """One routed expert's gated MLP: 3·h·I_moe."""
        return 3 * self.hidden_size * self.moe_intermediate_size

    @property
    def shared_expert_params(self) -> int:
        """The shared expert(s) of one MoE layer: 3·h·I_shared."""
        return 3 * self.hidden_size * self.shared_intermediate_size

    @property
    def router_params(self) -> int:
        """The router of one MoE layer: h·E."""
        return self.hidden_size * self.num_experts

    @property
    def attention_weight_bytes(self) -> int:
        """Weights the Attention side holds: projections of all layers, embedding and LM head."""
        params = self.num_layers * self.attention_params_per_layer + self.embedding_params
        return params * self.weight_bytes_per_param

    @property
    def ffn_weight_bytes(self) -> int:
        """Weights the FFN side holds: dense MLPs, all routed experts, shared experts, routers."""
        moe = self.num_experts * self.expert_params + self.shared_expert_params + self.router_params
        params = self.num_dense_layers * self.dense_mlp_params + self.num_moe_layers * moe
        return params * self.weight_bytes_per_param

    @property
    def attention_flop_per_token(self) -> int:
        """FLOPs of the Attention side's projections and LM head for one token (2 per MAC)."""
        lm_head = self.vocab_size * self.hidden_size
        return 2 * (self.num_layers * self.attention_params_per_layer + lm_head)

    @property
    def attention_flop_per_kv_token(self) -> int:
        """FLOPs per cached token attended, all layers: scores and weighted sum (2 per MAC).

        GQA: 2·H·d (q·k) + 2·H·d (p·v) per layer. MLA, weight-absorbed as FlashMLA runs it:
        2·H·(r_kv + d_rope) for the scores and 2·H·r_kv for the latent values.
        """
        H = self.num_attention_heads
        if self.is_mla:
            per_layer = 2 * H * (self.kv_lora_rank + self.qk_rope_head_dim)
            per_layer += 2 * H * self.kv_lora_rank
        else:
            per_layer = 4 * H * self.head_dim
        return self.num_layers * per_layer

    @property
    def ffn_flop_per_token(self) -> int:
        """FLOPs of the FFN side for one token: dense MLPs, top-k experts, shared, router."""
        moe = (
            self.experts_per_token * self.expert_params
            + self.shared_expert_params
            + self.router_params
        )
        return 2 * (self.num_dense_layers * self.dense_mlp_params + self.num_moe_layers * moe)

    def distinct_experts(self, tokens: Any) -> Any:
        """Expected distinct routed experts a batch of N tokens activates, per MoE layer.

        E·(1 − (1 − k/E)^N) under uniform, independent routing (DESIGN.md §5). 0 for dense
        models. Works elementwise on numpy arrays.
        """
        if not self.is_moe:
            return 0.0 * tokens
        E, k = self.num_experts, self.experts_per_token
        return E * (1.0 - (1.0 - k / E) ** tokens)


def load_model_spec(model: str | Path) -> ModelSpec:
    """Resolve ``model``: a preset name (:data:`MODEL_PRESETS`), a config.json or its folder.

    Raises
    ------
    InputError
        Unknown preset name, or a config with missing/invalid fields.
    DataFileError
        The config file cannot be read or is not JSON.

    Examples
    --------
    >>> load_model_spec("llama-3.1-70b").kv_bytes_per_token("bf16")
    327680
    """
    text = str(model)
    path = Path(text)
    if path.is_dir():  # a downloaded Hugging Face model folder
        path = path / "config.json"
    if text in MODEL_PRESETS or not (path.suffix == ".json" or path.exists()):
        return ModelSpec.from_preset(text)
    try:
        config = json.loads(read_text_file(path))
    except OSError as exc:
        raise DataFileError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"model config {path} is not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(config, dict):
        raise InputError(f"model config {path} must be a JSON object, got {type(config).__name__}")
    return ModelSpec.from_hf_config(config, name=str(path))
