"""Launch configurations for a planned layout: vLLM afd-plugin, SGLang, aiconfigurator.

Every key and flag below is taken from the project's own source at the version named next to
it (docs/design.md §9 terms: an rA–1F bundle is r Attention instances of g_A GPUs and one FFN
instance of g_F GPUs). A layout the runtime cannot express is refused with one line naming the
rule and its source, never approximated. NVIDIA Dynamo has no merged AFD support to emit for.

Sources read (not copied):

- vLLM afd-plugin, github.com/vllm-project/afd-plugin @ 2e4378f2d478 (2026-08-08, targets
  vLLM 0.26.0): ``afd_plugin/config.py`` (``additional_config["afd"]`` keys ``role``,
  ``connector``, ``host``, ``port``, ``num_attention_ranks``, ``num_ffn_ranks``; default port
  1239), ``afd_plugin/distributed/topology.py`` (``validate_p2p_topology``: attention ranks >=
  FFN ranks and a multiple of them; ranks are DP x TP worker totals),
  ``docs/gpu/NCCL_P2P_CONNECTOR_USER_GUIDE.md`` and the DeepSeek-V2-Lite recipes (``vllm
  serve`` flags ``--data-parallel-size``, ``--tensor-parallel-size``,
  ``--enable-expert-parallel``, ``--enable-dbo``, ``--max-num-seqs``, env
  ``VLLM_USE_V2_MODEL_RUNNER=0``), ``README.md`` (DBO is exactly two ubatches; registered
  model wrappers are DeepSeek V2/V3 only).
- SGLang AFD, github.com/sgl-project/sglang, ``python/sglang/srt/afd/config.py`` @ c74e7346
  (``AFDConfig`` JSON of ``--afd-config``: ``stages`` must be 2, ``lanes``,
  ``attention_lanes``, ``rendezvous_host``, ``rendezvous_port``; ``--afd-execution-mode
  attention|ffn``), ``afd/contracts.py`` (``AFDPairedTopology``: M attention lanes, N FFN
  lanes, M >= N, N | M; expected (tp, dp, ep, pp) = (M, M, 1, 1) with DP attention on the
  Attention side, (N, 1, N, 1) on the FFN side), ``afd/profiles.py`` @ 22764bee (lanes in
  {1, 2, 4, 8, 16, 32}; Qwen3-MoE and GLM-MoE-DSA only), ``python/sglang/test/afd`` launcher
  (``python -m sglang.launch_server --model-path ... --afd-execution-mode ... --afd-config``).
- aiconfigurator, github.com/ai-dynamo/aiconfigurator @ 095f58a51c4c (v0.11.0):
  ``src/aiconfigurator/cli/main.py`` (``cli estimate --estimate-mode afd`` flags
  ``--n-a-nodes``, ``--n-f-nodes``, ``--a-tp-size``, ``--a-batch-size``, ``--f-moe-ep-size``,
  ``--num-microbatches``, ``--pipeline-model optimistic|conservative``, ``--isl``, ``--osl``,
  ``--system``, ``--backend``, ``--kvcache-quant-mode``), ``aic-core/.../sdk/config.py``
  (``AFDConfig``: node-granular pools, ``tp_a`` divides GPUs per node, one F replica of
  ``n_f_nodes`` nodes), ``cli/api.py`` (``f_moe_ep_size`` divides the F replica's GPUs),
  ``aic-core/.../systems/*.yaml`` (``num_gpus_per_node``).
- NVIDIA Dynamo: github.com/ai-dynamo/dynamo PR #6570 ("Add AFD infrastructure", placeholder
  handlers only) was closed unmerged; no AFD flag exists to emit.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any, Final, Literal

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

__all__ = [
    "AIC_SYSTEMS",
    "EMIT_TARGETS",
    "EmitTarget",
    "LaunchSpec",
    "check_target",
    "emit_launch",
    "sglang_afd_config",
    "vllm_additional_config",
]

EmitTarget = Literal["vllm", "sglang", "dynamo", "aiconfigurator"]
EMIT_TARGETS: Final[tuple[str, ...]] = ("vllm", "sglang", "dynamo", "aiconfigurator")
"""What ``plan --emit`` accepts."""

VLLM_PLUGIN_SOURCE: Final = "vllm-project/afd-plugin@2e4378f2d478 (vLLM 0.26.0)"
SGLANG_SOURCE: Final = "sgl-project/sglang python/sglang/srt/afd (config.py@c74e7346)"
AIC_SOURCE: Final = "ai-dynamo/aiconfigurator@095f58a51c4c (v0.11.0)"

_VLLM_DEFAULT_PORT: Final = 1239
"""``AFDConfig.port`` default in afd_plugin/config.py."""
_SGLANG_DEFAULT_PORT: Final = 1239
"""``AFDConfig.rendezvous_port`` default in sglang/srt/afd/config.py."""
_SGLANG_STAGES: Final = 2
"""``AFDConfig.validate``: ``stages`` must be 2 (two ping-pong microbatches)."""
_SGLANG_LANES: Final[tuple[int, ...]] = (1, 2, 4, 8, 16, 32)
"""FFN lane counts admitted by the registered capability profiles (afd/profiles.py)."""
_SGLANG_MAX_NODES: Final = 8
"""``max_nodes`` of the capability profiles: a role may span at most 8 hosts, evenly."""
_GPUS_PER_NODE: Final = 8
"""GPUs per host assumed when a role is split over hosts (HGX/DGX H100, H200, B200)."""
_SGLANG_FAMILIES: Final[tuple[str, ...]] = ("Qwen3MoeForCausalLM", "GlmMoeDsaForCausalLM")
_VLLM_FAMILIES: Final[tuple[str, ...]] = (
    "DeepseekForCausalLM",
    "DeepseekV2ForCausalLM",
    "DeepseekV3ForCausalLM",
    "DeepseekV32ForCausalLM",
)

AIC_SYSTEMS: Final[dict[str, tuple[str, int]]] = {
    "h100-sxm": ("h100_sxm", 8),
    "h200": ("h200_sxm", 8),
    "b200": ("b200_sxm", 8),
    "gb200": ("gb200", 4),
    "a100-80g": ("a100_sxm", 8),
}
"""afdsizer hardware preset → (aiconfigurator ``--system``, its ``num_gpus_per_node``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LaunchSpec:
    """What a launch config needs: the layout, the bundle shape and the model to serve.

    Attributes
    ----------
    deployment : Deployment
        g_A, g_F, attention and FFN parallelism, microbatches m, KV dtype.
    ratio : int
        r, Attention instances per FFN instance.
    batch : int
        B, slots per Attention instance.
    model : str
        What the engine serves: a Hugging Face id or a local checkpoint path.
    moe : bool
        Whether the model has experts (resolves ``ffn_parallel="auto"``).
    architecture : str, optional
        ``architectures[0]`` of the checkpoint's config.json, to check model support.
    hardware : str, optional
        afdsizer hardware preset name (aiconfigurator's ``--system``).
    isl_tokens, osl_tokens : int, optional
        Fixed input/output lengths for aiconfigurator (it takes no trace).
    """

    deployment: Deployment
    ratio: int
    batch: int
    model: str
    moe: bool = True
    architecture: str | None = None
    hardware: str | None = None
    isl_tokens: int | None = None
    osl_tokens: int | None = None

    @property
    def ffn_parallel(self) -> Literal["ep", "tp"]:
        """EP or TP on the FFN side, ``auto`` resolved by whether the model has experts."""
        p = self.deployment.ffn_parallel
        if p == "auto":
            return "ep" if self.moe else "tp"
        return p

    @property
    def attention_ranks(self) -> int:
        """r·g_A, Attention GPUs of one bundle."""
        return self.ratio * self.deployment.attn_gpus

    @property
    def per_worker_batch(self) -> int:
        """Slots per engine rank on the Attention side: b = B/g_A under DP, B under TP."""
        d = self.deployment
        return self.batch // d.attn_gpus if d.attn_parallel == "dp" else self.batch


def _refuse(target: str, source: str, rule: str) -> InputError:
    return InputError(f"--emit {target}: {rule} ({source})")


def vllm_additional_config(
    spec: LaunchSpec, role: Literal["attention", "ffn"], *, host: str = "127.0.0.1"
) -> dict[str, Any]:
    """``--additional-config`` of one vLLM afd-plugin process (role ``attention`` or ``ffn``).

    Raises
    ------
    InputError
        The layout breaks the plugin's P2P topology rule (attention ranks r·g_A >= FFN ranks
        g_F and a multiple of them).
    """
    n_attn, n_ffn = spec.attention_ranks, spec.deployment.ffn_gpus
    if n_attn < n_ffn or n_attn % n_ffn:
        raise _refuse(
            "vllm",
            VLLM_PLUGIN_SOURCE,
            f"num_attention_ranks = r·g_A = {n_attn} must be >= num_ffn_ranks = g_F = {n_ffn} "
            "and a multiple of it",
        )
    return {
        "afd": {
            "role": role,
            "connector": "P2pNcclAFDConnector",
            "host": host,
            "port": _VLLM_DEFAULT_PORT,
            "num_attention_ranks": n_attn,
            "num_ffn_ranks": n_ffn,
        }
    }


def _vllm(spec: LaunchSpec) -> str:
    d = spec.deployment
    if d.microbatches > 2:
        raise _refuse("vllm", VLLM_PLUGIN_SOURCE, "DBO runs exactly two ubatches; use m <= 2")
    if d.attn_parallel == "dp":
        attn_dp, attn_tp = spec.attention_ranks, 1
    else:
        attn_dp, attn_tp = spec.ratio, d.attn_gpus
    ffn_ep = spec.ffn_parallel == "ep"
    ffn_dp, ffn_tp = (d.ffn_gpus, 1) if ffn_ep else (1, d.ffn_gpus)
    common: list[str] = []
    if d.microbatches == 2:
        common.append("--enable-dbo")
    if d.kv_dtype == "fp8":
        common += ["--kv-cache-dtype", "fp8"]
    lines = [
        f"# vLLM afd-plugin launch for {spec.ratio}A-1F, B = {spec.batch} ({VLLM_PLUGIN_SOURCE})",
        f"# Attention: {spec.attention_ranks} GPUs (DP {attn_dp} x TP {attn_tp}); "
        f"FFN: {d.ffn_gpus} GPUs (DP {ffn_dp} x TP {ffn_tp}). Start the FFN side first;",
        "# 'host' must be the node of FFN rank 0, and port+1..port+g_F must be free.",
    ]
    if max(spec.attention_ranks, d.ffn_gpus) > _GPUS_PER_NODE:
        lines.append(
            "# note: this spans hosts; the plugin's recipes are single-node and its guide calls "
            "cross-node use unverified."
        )
    if spec.architecture is not None and spec.architecture not in _VLLM_FAMILIES:
        lines.append(
            f"# note: the plugin registers AFD model wrappers for DeepSeek V2/V3 only; "
            f"{spec.architecture} is not among them at this commit."
        )
    lines.append("export VLLM_USE_V2_MODEL_RUNNER=0")
    sides: tuple[tuple[Literal["attention", "ffn"], int, int, int | None], ...] = (
        ("ffn", ffn_dp, ffn_tp, None),
        ("attention", attn_dp, attn_tp, spec.per_worker_batch),
    )
    for role, dp, tp, seqs in sides:
        args = ["vllm", "serve", spec.model, "--data-parallel-size", str(dp)]
        args += ["--tensor-parallel-size", str(tp)]
        if ffn_ep:
            args.append("--enable-expert-parallel")
        if seqs is not None:
            args += ["--max-num-seqs", str(seqs)]
        args += common
        config = json.dumps(vllm_additional_config(spec, role), separators=(",", ":"))
        args += ["--additional-config", config]
        lines.append(" ".join(shlex.quote(a) for a in args) + " &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def sglang_afd_config(spec: LaunchSpec, *, host: str = "127.0.0.1") -> dict[str, Any]:
    """The ``--afd-config`` JSON of SGLang's AFD runtime for this bundle.

    Raises
    ------
    InputError
        A layout the runtime's paired topology cannot express (see module notes).
    """
    d = spec.deployment
    src = SGLANG_SOURCE
    if d.attn_parallel == "tp" and d.attn_gpus > 1:
        raise _refuse("sglang", src, "each Attention lane is one DP-attention GPU; use DP")
    if spec.ffn_parallel != "ep":
        raise _refuse("sglang", src, "the FFN side runs expert-parallel (ep = tp = N); use EP")
    if d.microbatches != _SGLANG_STAGES:
        raise _refuse("sglang", src, f"AFDConfig.stages must be 2, got m = {d.microbatches}")
    lanes, attention_lanes = d.ffn_gpus, spec.attention_ranks
    if lanes not in _SGLANG_LANES:
        raise _refuse("sglang", src, f"FFN lanes g_F must be one of {_SGLANG_LANES}, got {lanes}")
    if attention_lanes < lanes or attention_lanes % lanes:
        raise _refuse(
            "sglang",
            src,
            f"attention lanes r·g_A = {attention_lanes} must be >= FFN lanes g_F = {lanes} "
            "and a multiple of it",
        )
    for role, size in (("attention", attention_lanes), ("FFN", lanes)):
        nodes = -(-size // _GPUS_PER_NODE)
        if nodes > _SGLANG_MAX_NODES or size % nodes:
            raise _refuse(
                "sglang",
                src,
                f"the {role} role's {size} lanes span {nodes} hosts of {_GPUS_PER_NODE} GPUs; "
                f"a role spans at most {_SGLANG_MAX_NODES} hosts, evenly",
            )
    config: dict[str, Any] = {"stages": _SGLANG_STAGES, "lanes": lanes}
    if attention_lanes != lanes:
        config["attention_lanes"] = attention_lanes
    config["rendezvous_host"] = host
    config["rendezvous_port"] = _SGLANG_DEFAULT_PORT
    return config


def _sglang(spec: LaunchSpec) -> str:
    config = json.dumps(sglang_afd_config(spec), separators=(",", ":"))
    m_lanes, n_lanes = spec.attention_ranks, spec.deployment.ffn_gpus
    lines = [
        f"# SGLang AFD launch for {spec.ratio}A-1F, B = {spec.batch} ({SGLANG_SOURCE})",
        f"# Attention: {m_lanes} lanes (tp = dp = {m_lanes}, DP attention); "
        f"FFN: {n_lanes} lanes (tp = ep = {n_lanes}).",
    ]
    if spec.architecture is not None and spec.architecture not in _SGLANG_FAMILIES:
        lines.append(
            f"# note: SGLang's AFD profiles admit Qwen3-MoE and GLM-MoE-DSA only; "
            f"{spec.architecture} is not among them."
        )
    if max(m_lanes, n_lanes) > _GPUS_PER_NODE:
        lines.append(
            f"# a role over {_GPUS_PER_NODE} lanes spans hosts: run its line on each host with "
            "--nnodes, --node-rank and --dist-init-addr (SGLang's multi-node flags)."
        )
    kv = ["--kv-cache-dtype", "fp8_e4m3"] if spec.deployment.kv_dtype == "fp8" else []
    ffn = ["--tp-size", str(n_lanes), "--ep-size", str(n_lanes)]
    attn = ["--tp-size", str(m_lanes), "--dp-size", str(m_lanes)]
    if m_lanes > 1:
        attn.append("--enable-dp-attention")
    for role, par in (("ffn", ffn), ("attention", attn + kv)):
        args = ["python", "-m", "sglang.launch_server", "--model-path", spec.model, *par]
        args += ["--afd-execution-mode", role, "--afd-config", config]
        lines.append(" ".join(shlex.quote(a) for a in args) + " &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def _aiconfigurator(spec: LaunchSpec) -> str:
    d = spec.deployment
    src = AIC_SOURCE
    if spec.hardware not in AIC_SYSTEMS:
        known = ", ".join(AIC_SYSTEMS)
        raise _refuse(
            "aiconfigurator", src, f"no aiconfigurator system for {spec.hardware!r}; known: {known}"
        )
    system, per_node = AIC_SYSTEMS[spec.hardware]
    if spec.isl_tokens is None or spec.osl_tokens is None:
        raise _refuse("aiconfigurator", src, "it takes fixed ISL/OSL; give --trace or --isl/--osl")
    if spec.attention_ranks % per_node or d.ffn_gpus % per_node:
        raise _refuse(
            "aiconfigurator",
            src,
            f"pools are whole nodes of {per_node} GPUs; r·g_A = {spec.attention_ranks} and "
            f"g_F = {d.ffn_gpus} must be multiples of {per_node}",
        )
    a_tp = d.attn_gpus if d.attn_parallel == "tp" else 1
    if per_node % a_tp:
        raise _refuse("aiconfigurator", src, f"--a-tp-size {a_tp} must divide {per_node}")
    ep = d.ffn_gpus if spec.ffn_parallel == "ep" else 1
    pipeline = "optimistic" if d.microbatches >= 3 else "conservative"
    args = ["aiconfigurator", "cli", "estimate", "--model-path", spec.model]
    args += ["--system", system, "--estimate-mode", "afd"]
    args += ["--isl", str(spec.isl_tokens), "--osl", str(spec.osl_tokens)]
    args += ["--n-a-nodes", str(spec.attention_ranks // per_node)]
    args += ["--n-f-nodes", str(d.ffn_gpus // per_node), "--a-tp-size", str(a_tp)]
    args += ["--a-batch-size", str(spec.per_worker_batch), "--f-moe-ep-size", str(ep)]
    args += ["--num-microbatches", str(d.microbatches), "--pipeline-model", pipeline]
    kv = "fp8" if d.kv_dtype == "fp8" else "bfloat16"
    args += ["--kvcache-quant-mode", kv]
    lines = [f"# aiconfigurator second opinion for {spec.ratio}A-1F, B = {spec.batch} ({src})"]
    if d.microbatches == 1:
        lines.append("# note: its CLI has no serial pipeline model; m = 1 runs as 'conservative'.")
    lines.append(" ".join(shlex.quote(a) for a in args))
    return "\n".join(lines) + "\n"


def emit_launch(target: str, spec: LaunchSpec) -> str:
    """The launch commands (a shell snippet) for ``spec`` on ``target``.

    Parameters
    ----------
    target : {"vllm", "sglang", "dynamo", "aiconfigurator"}
        Runtime (or estimator) to emit for.
    spec : LaunchSpec
        The planned layout and bundle.

    Returns
    -------
    str
        Commented shell lines; the comment names the source and version of every flag.

    Raises
    ------
    InputError
        Unknown target, a target without AFD support (Dynamo), or a layout the target cannot
        express (the message names the rule and its source).

    Examples
    --------
    >>> spec = LaunchSpec(deployment=Deployment(attn_gpus=1, ffn_gpus=2), ratio=4, batch=64,
    ...                   model="deepseek-ai/DeepSeek-V3")
    >>> '"num_attention_ranks":4' in emit_launch("vllm", spec)
    True
    """
    check_target(target)
    if target == "vllm":
        return _vllm(spec)
    if target == "sglang":
        return _sglang(spec)
    return _aiconfigurator(spec)


def check_target(target: str) -> None:
    """Refuse an unknown target, or one without AFD support (Dynamo), before any work.

    Raises
    ------
    InputError
        ``target`` is not one of :data:`EMIT_TARGETS`, or is ``"dynamo"``.
    """
    if target not in EMIT_TARGETS:
        raise InputError(f"--emit must be one of {', '.join(EMIT_TARGETS)}, got {target!r}")
    if target == "dynamo":
        raise InputError(
            "--emit dynamo: NVIDIA Dynamo has no merged AFD support to configure "
            "(ai-dynamo/dynamo PR #6570 added placeholder handlers and was closed); "
            "emit vllm or sglang instead"
        )
