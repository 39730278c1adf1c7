"""Model specs from Hugging Face ``config.json``: shapes, precision, KV bytes, weights, FLOPs.

design §5, §9. An AFD deployment splits every decoder layer: the **Attention side** holds the
attention projections, the KV cache, the embedding table and the LM head (it owns the token
state); the **FFN side** holds the dense MLP or the MoE experts (routed and shared) and the
router. Norms and biases are left out: they are < 0.1% of the weights of every preset.

Precision is the checkpoint's (``torch_dtype``, ``quantization_config``): an FP8 checkpoint
stores its projection and expert matrices in 1 byte per weight, while the embedding, the LM head
and the MoE router stay 16-bit (as in DeepSeek-V3 and Qwen3-FP8 and as vLLM/SGLang load them).
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

from afdsizer._io import read_text_file
from afdsizer.cost._hf_config import spec_fields_from_hf_config
from afdsizer.errors import DataFileError, InputError

__all__ = ["KV_DTYPE_BYTES", "MODEL_PRESETS", "WEIGHT_DTYPE_BYTES", "ModelSpec", "load_model_spec"]

KV_DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1}
"""Bytes per element of the KV cache for each ``--kv-dtype``."""

WEIGHT_DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1}
"""Bytes per weight of the quantizable matrices for each weight dtype (``--weight-dtype``)."""

UNQUANTIZED_WEIGHT_BYTES = 2
"""Bytes per weight of the embedding, LM head and router, which FP8 checkpoints keep 16-bit."""

MODEL_PRESETS: tuple[str, ...] = (
    "deepseek-v3",
    "llama-3.1-70b",
    "llama-3.1-8b",
    "mixtral-8x7b",
    "qwen3-235b-a22b",
    "qwen3-235b-a22b-fp8",
    "qwen3-30b-a3b",
)
"""Bundled model presets (``cost/presets/models/<name>.json``, real config.json values)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Shapes and precision of a decoder-only transformer, as afdsizer's cost model needs them.

    Build one with :meth:`from_hf_config`, :meth:`from_preset` or :func:`load_model_spec`.

    Parameters
    ----------
    name : str
        Preset name or config path, for reports.
    num_layers : int
        L, decoder layers (``num_hidden_layers``).
    hidden_size : int
        Model width h (elements).
    num_attention_heads, num_kv_heads, head_dim : int
        Query heads H, KV heads H_kv, head dimension d (GQA/MHA); H must be a multiple of H_kv.
    intermediate_size : int
        Width of a dense gated MLP (dense models, and the leading dense layers of MoE models).
    vocab_size : int
        Vocabulary V (embedding table and LM head are V·h each).
    tie_word_embeddings : bool
        LM head shares the embedding weights.
    weight_dtype : {"bf16", "fp16", "fp8"}, default "bf16"
        Dtype of the projection and expert matrices (the checkpoint's).
    quantization : {"fp8_block", "fp8"} or None, default None
        FP8 scheme of the checkpoint: 128x128 block-scaled (``weight_block_size``) or
        per-tensor/channel; None for 16-bit weights.
    activation_scheme : {"dynamic", "static"} or None, default None
        How FP8 activations are scaled (``quantization_config.activation_scheme``).
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
    weight_dtype: str = "bf16"
    quantization: str | None = None
    activation_scheme: str | None = None
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
        for key in ("num_layers", "hidden_size", "num_attention_heads", "num_kv_heads"):
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be >= 1 ({self.name}), got {getattr(self, key)}")
        if self.head_dim < 1 or self.vocab_size < 1:
            raise InputError(f"head_dim and vocab_size must be >= 1 ({self.name})")
        if not self.is_mla and self.num_attention_heads % self.num_kv_heads:
            raise InputError(
                f"num_attention_heads {self.num_attention_heads} must be a multiple of "
                f"num_kv_heads {self.num_kv_heads} ({self.name})"
            )
        if self.weight_dtype not in WEIGHT_DTYPE_BYTES:
            raise InputError(
                f"weight_dtype must be one of {', '.join(WEIGHT_DTYPE_BYTES)} ({self.name}), "
                f"got {self.weight_dtype!r}"
            )
        if (self.quantization is not None) != (self.weight_dtype == "fp8"):
            raise InputError(
                f"quantization must be fp8_block or fp8 exactly when weight_dtype is fp8 "
                f"({self.name}), got {self.quantization!r} with {self.weight_dtype}"
            )
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

        Precision comes from ``torch_dtype`` and ``quantization_config`` (``quant_method: fp8``,
        with ``weight_block_size`` for block scaling, or compressed-tensors float8 weights).

        Parameters
        ----------
        config : dict
            The parsed config.json.
        name : str
            Label used in errors and reports.

        Raises
        ------
        InputError
            A required field is missing or out of range, or the shapes are impossible (heads
            not a multiple of KV heads, top-k above the experts, an unmodelled quantization).

        Examples
        --------
        >>> cfg = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
        ...        "intermediate_size": 128, "vocab_size": 100,
        ...        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
        >>> m = ModelSpec.from_hf_config(cfg)
        >>> m.weight_dtype, m.quantization, m.weight_bytes_per_param
        ('fp8', 'fp8_block', 1)
        """
        return cls(**spec_fields_from_hf_config(config, name=name))

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

    def with_weight_dtype(self, weight_dtype: str | None) -> ModelSpec:
        """This model with its matrices in ``weight_dtype`` (``Deployment.weight_dtype``).

        None keeps the checkpoint's. FP8 on a 16-bit checkpoint is online per-tensor FP8
        (``quantization="fp8"``, dynamic activations), as engines' ``--quantization fp8`` does.

        Raises
        ------
        InputError
            ``weight_dtype`` is not one of :data:`WEIGHT_DTYPE_BYTES`.
        """
        if weight_dtype is None or weight_dtype == self.weight_dtype:
            return self
        if weight_dtype not in WEIGHT_DTYPE_BYTES:
            raise InputError(
                f"weight_dtype must be one of {', '.join(WEIGHT_DTYPE_BYTES)}, got {weight_dtype!r}"
            )
        fp8 = weight_dtype == "fp8"
        return dataclasses.replace(
            self,
            weight_dtype=weight_dtype,
            quantization="fp8" if fp8 else None,
            activation_scheme="dynamic" if fp8 else None,
        )

    # ----------------------------------------------------------------- derived shapes
    @property
    def weight_bytes_per_param(self) -> int:
        """Bytes per weight of the projection and expert matrices (1 for FP8, else 2)."""
        return WEIGHT_DTYPE_BYTES[self.weight_dtype]

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
    def attention_params(self) -> int:
        """Parameters the Attention side holds: projections of all layers, embedding, LM head."""
        return self.num_layers * self.attention_params_per_layer + self.embedding_params

    @property
    def ffn_params(self) -> int:
        """Parameters the FFN side holds: dense MLPs, routed and shared experts, routers."""
        moe = self.num_experts * self.expert_params + self.shared_expert_params + self.router_params
        return self.num_dense_layers * self.dense_mlp_params + self.num_moe_layers * moe

    @property
    def total_params(self) -> int:
        """All parameters (both sides; norms and biases left out)."""
        return self.attention_params + self.ffn_params

    @property
    def attention_weight_bytes(self) -> int:
        """Bytes of the Attention side's weights: projections in ``weight_dtype``, the
        embedding and LM head 16-bit."""
        projections = self.num_layers * self.attention_params_per_layer
        return (
            projections * self.weight_bytes_per_param
            + self.embedding_params * UNQUANTIZED_WEIGHT_BYTES
        )

    @property
    def lm_head_bytes(self) -> int:
        """Bytes of the LM head (V·h, 16-bit), read once per decode step."""
        return self.vocab_size * self.hidden_size * UNQUANTIZED_WEIGHT_BYTES

    @property
    def ffn_weight_bytes(self) -> int:
        """Bytes of the FFN side's weights: MLPs and experts in ``weight_dtype``, routers 16-bit."""
        routers = self.num_moe_layers * self.router_params
        matrices = self.ffn_params - routers
        return matrices * self.weight_bytes_per_param + routers * UNQUANTIZED_WEIGHT_BYTES

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

        E·(1 − (1 − k/E)^N) under uniform, independent routing (docs/design.md §5). 0 for dense
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
