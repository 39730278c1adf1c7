"""Launch-config emitters against the keys and rules read from each project's source."""

from __future__ import annotations

import json
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afdsizer.deployment import Deployment
from afdsizer.errors import InputError
from afdsizer.plan import LaunchSpec, emit_launch, sglang_afd_config, vllm_additional_config

# vllm-project/afd-plugin@2e4378f2d478, afd_plugin/config.py: the fields of AFDConfig
# (unknown keys are rejected by _normalize_mapping).
VLLM_AFD_FIELDS = {
    "connector",
    "async_dp",
    "role",
    "port",
    "host",
    "num_attention_ranks",
    "num_ffn_ranks",
    "compute_gate_on_attention",
    "connector_extra_config",
}
# sgl-project/sglang python/sglang/srt/afd/config.py@c74e7346: AFDConfig fields
# (msgspec.Struct with forbid_unknown_fields=True).
SGLANG_AFD_FIELDS = {
    "stages",
    "max_hbm_bytes",
    "attention_backend",
    "lanes",
    "attention_lanes",
    "rendezvous_host",
    "rendezvous_port",
    "rendezvous_timeout_seconds",
    "idle_timeout_seconds",
    "close_timeout_seconds",
    "nccl_num_channels",
}
# ai-dynamo/aiconfigurator@095f58a51c4c src/aiconfigurator/cli/main.py, estimate parser.
AIC_ESTIMATE_FLAGS = {
    "--model-path",
    "--system",
    "--estimate-mode",
    "--isl",
    "--osl",
    "--n-a-nodes",
    "--n-f-nodes",
    "--a-tp-size",
    "--a-batch-size",
    "--f-moe-ep-size",
    "--num-microbatches",
    "--pipeline-model",
    "--kvcache-quant-mode",
}


def _spec(**kw: object) -> LaunchSpec:
    dep = {
        k: kw.pop(k)
        for k in list(kw)
        if k
        in {"attn_gpus", "ffn_gpus", "attn_parallel", "ffn_parallel", "microbatches", "kv_dtype"}
    }
    dep.setdefault("ffn_gpus", 2)
    base: dict[str, object] = {
        "deployment": Deployment(**dep),  # type: ignore[arg-type]
        "ratio": 4,
        "batch": 64,
        "model": "deepseek-ai/DeepSeek-V3",
        "architecture": "DeepseekV3ForCausalLM",
        "hardware": "h200",
        "isl_tokens": 1000,
        "osl_tokens": 200,
    }
    base.update(kw)
    return LaunchSpec(**base)  # type: ignore[arg-type]


def _commands(text: str) -> list[list[str]]:
    return [
        shlex.split(line.rstrip(" &"))
        for line in text.splitlines()
        if line and not line.startswith(("#", "export", "wait"))
    ]


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@given(
    ratio=st.integers(1, 16),
    attn_gpus=st.sampled_from([1, 2, 4, 8]),
    ffn_gpus=st.sampled_from([1, 2, 4, 8, 16]),
    parallel=st.sampled_from(["tp", "dp"]),
)
def test_vllm_config_obeys_the_divisibility_rule_and_round_trips(
    ratio: int, attn_gpus: int, ffn_gpus: int, parallel: str
) -> None:
    """The plugin's rule (attention ranks >= FFN ranks, divisible) holds or the emitter refuses."""
    spec = _spec(
        ratio=ratio,
        attn_gpus=attn_gpus,
        ffn_gpus=ffn_gpus,
        attn_parallel=parallel,
        batch=64 * attn_gpus,
    )
    n_attn = ratio * attn_gpus
    if n_attn < ffn_gpus or n_attn % ffn_gpus:
        with pytest.raises(InputError, match="multiple of"):
            vllm_additional_config(spec, "attention")
        return
    for role in ("attention", "ffn"):
        config = vllm_additional_config(spec, role)  # type: ignore[arg-type]
        assert json.loads(json.dumps(config)) == config
        afd = config["afd"]
        assert set(afd) <= VLLM_AFD_FIELDS
        assert afd["num_attention_ranks"] % afd["num_ffn_ranks"] == 0
        assert afd["num_attention_ranks"] >= afd["num_ffn_ranks"]
        assert afd["role"] == role


def test_vllm_launch_lines_match_the_ranks() -> None:
    """DP x TP of each `vllm serve` multiplies to that side's rank count; config parses back."""
    spec = _spec(
        ratio=3, attn_gpus=2, ffn_gpus=2, attn_parallel="tp", microbatches=2, kv_dtype="fp8"
    )
    ffn, attn = _commands(emit_launch("vllm", spec))
    for args, ranks in ((attn, 6), (ffn, 2)):
        dp = int(_flag(args, "--data-parallel-size"))
        tp = int(_flag(args, "--tensor-parallel-size"))
        assert dp * tp == ranks
        afd = json.loads(_flag(args, "--additional-config"))["afd"]
        assert (afd["num_attention_ranks"], afd["num_ffn_ranks"]) == (6, 2)
        assert "--enable-dbo" in args and _flag(args, "--kv-cache-dtype") == "fp8"
    assert _flag(attn, "--max-num-seqs") == "64"  # TP: one engine per instance, B slots


def test_vllm_refuses_three_microbatches() -> None:
    """The plugin's DBO runs exactly two ubatches."""
    with pytest.raises(InputError, match="two ubatches"):
        emit_launch("vllm", _spec(microbatches=3))


def test_vllm_notes_an_unsupported_model_family() -> None:
    """A non-DeepSeek checkpoint gets a note, since the plugin registers DeepSeek only."""
    text = emit_launch("vllm", _spec(architecture="LlamaForCausalLM", model="meta-llama/x"))
    assert "DeepSeek V2/V3 only" in text


def test_sglang_config_uses_its_fields_and_paired_topology() -> None:
    """SGLang's AFDConfig keys only; tp = dp = M on Attention, tp = ep = N on FFN."""
    spec = _spec(ratio=4, attn_gpus=2, attn_parallel="dp", ffn_gpus=4, microbatches=2, batch=128)
    config = sglang_afd_config(spec)
    assert set(config) <= SGLANG_AFD_FIELDS
    assert config["stages"] == 2 and config["lanes"] == 4 and config["attention_lanes"] == 8
    ffn, attn = _commands(emit_launch("sglang", spec))
    assert (_flag(attn, "--tp-size"), _flag(attn, "--dp-size")) == ("8", "8")
    assert "--enable-dp-attention" in attn and _flag(attn, "--afd-execution-mode") == "attention"
    assert (_flag(ffn, "--tp-size"), _flag(ffn, "--ep-size")) == ("4", "4")
    assert json.loads(_flag(ffn, "--afd-config")) == config


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"microbatches": 1}, "stages must be 2"),
        ({"microbatches": 2, "attn_gpus": 2, "attn_parallel": "tp", "batch": 128}, "use DP"),
        ({"microbatches": 2, "ffn_parallel": "tp"}, "use EP"),
        ({"microbatches": 2, "ffn_gpus": 3, "ratio": 3}, "FFN lanes"),
        ({"microbatches": 2, "ffn_gpus": 8, "ratio": 4}, "multiple of"),
        (
            {"microbatches": 2, "ffn_gpus": 8, "ratio": 72, "attn_parallel": "dp"},
            "at most 8 hosts",
        ),
        ({"microbatches": 2, "ffn_gpus": 4, "ratio": 20, "attn_parallel": "dp"}, "20 lanes span 3"),
    ],
)
def test_sglang_refuses_what_its_runtime_cannot_express(kw: dict[str, object], match: str) -> None:
    """Each rule of SGLang's AFD validation is a one-line refusal."""
    with pytest.raises(InputError, match=match):
        emit_launch("sglang", _spec(**kw))


def test_aiconfigurator_command_maps_bundle_to_nodes() -> None:
    """Node-granular pools: 16 DP attention GPUs = 2 nodes, one 8-GPU F replica, EP 8."""
    spec = _spec(ratio=4, attn_gpus=4, attn_parallel="dp", ffn_gpus=8, microbatches=3, batch=256)
    (args,) = _commands(emit_launch("aiconfigurator", spec))
    flags = {a for a in args if a.startswith("--")}
    assert flags <= AIC_ESTIMATE_FLAGS
    assert args[:3] == ["aiconfigurator", "cli", "estimate"]
    assert _flag(args, "--estimate-mode") == "afd" and _flag(args, "--system") == "h200_sxm"
    assert (_flag(args, "--n-a-nodes"), _flag(args, "--n-f-nodes")) == ("2", "1")
    assert (_flag(args, "--a-tp-size"), _flag(args, "--a-batch-size")) == ("1", "64")
    assert _flag(args, "--f-moe-ep-size") == "8" and _flag(args, "--pipeline-model") == "optimistic"


def test_aiconfigurator_refuses_partial_nodes_and_missing_lengths() -> None:
    """A pool that is not whole nodes, or a workload without fixed lengths, is refused."""
    with pytest.raises(InputError, match="whole nodes"):
        emit_launch("aiconfigurator", _spec(ratio=3, ffn_gpus=8))
    with pytest.raises(InputError, match="ISL/OSL"):
        emit_launch("aiconfigurator", _spec(ratio=8, ffn_gpus=8, isl_tokens=None))


def test_dynamo_and_unknown_targets_are_refused() -> None:
    """Dynamo has no AFD support to emit for; an unknown target names the choices."""
    with pytest.raises(InputError, match="no merged AFD support"):
        emit_launch("dynamo", _spec())
    with pytest.raises(InputError, match="must be one of"):
        emit_launch("trtllm", _spec())
