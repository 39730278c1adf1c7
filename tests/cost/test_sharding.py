"""Deployments on each side: TP vs DP attention, EP vs TP FFN, per-GPU memory and its refusals."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afdsizer.cost import (
    DeploymentMemory,
    HardwareSpec,
    ModelSpec,
    RooflineEfficiency,
    check_batch_fits,
    cost_coefficients,
    load_hardware_spec,
    load_model_spec,
    max_batch_per_worker,
    roofline_coefficients,
    roofline_memory,
)
from afdsizer.cost._sharding import ffn_token_copies
from afdsizer.deployment import Deployment
from afdsizer.errors import InputError

EFF = RooflineEfficiency(
    hbm_bandwidth_frac=0.8,
    gemm_flops_frac=0.7,
    fp8_gemm_flops_frac=0.7,
    kernel_launch_s=0.0,
    fp8_activation_quant_s=0.0,
    fp8_block_gemm_floor_s=0.0,
    attention_kernel_s=0.0,
    attention_per_request_head_s=0.0,
    attention_bandwidth_frac=0.8,
    attention_fp8_kv_bandwidth_frac=0.8,
    moe_kernel_s=0.0,
    moe_bandwidth_frac=0.8,
    moe_flops_frac=0.2,
    moe_fp8_flops_frac=0.2,
    moe_half_rate_expert_params=0.0,
    attention_flops_frac=0.5,
    link_bandwidth_frac=0.8,
    attention_overhead_s_per_layer=20e-6,
    ffn_overhead_s_per_layer=15e-6,
    memory_reserve_frac=0.1,
)
"""Explicit factors so the hand arithmetic does not depend on the defaults."""

# A small GQA model: 2 layers, h = 64, 4 heads of 16, 2 KV heads, I = 128, V = 100.
TINY = ModelSpec(
    name="tiny",
    num_layers=2,
    hidden_size=64,
    num_attention_heads=4,
    num_kv_heads=2,
    head_dim=16,
    intermediate_size=128,
    vocab_size=100,
    num_dense_layers=2,
)
GPU = HardwareSpec(
    name="toy-gpu",
    dense_flops_per_s={"bf16": 1e15, "fp8": 2e15},
    hbm_bandwidth_bytes_per_s=1e12,
    hbm_capacity_bytes=1e6,
    scale_up_bandwidth_bytes_per_s=100e9,
    scale_up_latency_s=5e-6,
    scale_up_domain_gpus=8,
    scale_out_bandwidth_bytes_per_s=10e9,
    scale_out_latency_s=10e-6,
)
"""A made-up GPU with 1 MB of HBM, so the KV capacities are small hand-checkable numbers."""
SMALL_N = (16, 64)
"""FFN batches of the tiny model (their activations must fit the toy GPU)."""


def test_tp_attention_by_hand() -> None:
    """TP over 2 GPUs: each holds one KV head and half of q, o, embedding and LM head."""
    d = Deployment(attn_gpus=2, attn_parallel="tp", ffn_gpus=1)
    c = roofline_coefficients(TINY, GPU, deployment=d, efficiency=EFF, ffn_tokens_range=SMALL_N)
    bw = 1e12 * 0.8
    # Per GPU per layer: q and o 2·64·64/2 = 4096, k and v 2·64·16·1 = 2048 params, bf16.
    proj_bytes = 2 * (4096 + 2048) * 2  # 2 layers, 2 bytes
    lm_head_bytes = 100 * 64 * 2 / 2
    assert c.alpha_attn_s == pytest.approx(2 * 20e-6 + (proj_bytes + lm_head_bytes) / bw)
    # KV per token per GPU: 2 (K, V) x 1 head x 16 x 2 layers x 2 bytes = 128 B.
    assert c.beta_attn_s_per_token == pytest.approx(128 / bw)
    held = proj_bytes + 2 * 100 * 64 * 2 / 2  # + half of embedding and LM head
    assert c.kv_capacity_tokens == (1e6 * 0.9 - held) // 128
    # Activations over both GPUs' NICs, plus the instance's all-reduce over NVLink per layer.
    nic, up = 10e9 * 0.8, 100e9 * 0.8
    assert c.alpha_comm_s == pytest.approx(2 * 2 * 10e-6 + 2 * 5e-6)
    assert c.beta_comm_s_per_token == pytest.approx(
        2 * 2 * 64 * 2 / (2 * nic) + 2 * 64 * 2 * 2 * (1 / 2) / up
    )
    assert c.layers == 2 and "2A tp (per instance)" in c.source


def test_dp_attention_by_hand() -> None:
    """DP over 2 GPUs: the coefficients are ONE GPU's, with the full weights and full KV."""
    d = Deployment(attn_gpus=2, attn_parallel="dp", ffn_gpus=1)
    c = roofline_coefficients(TINY, GPU, deployment=d, efficiency=EFF, ffn_tokens_range=SMALL_N)
    bw = 1e12 * 0.8
    proj_bytes = 2 * (2 * 64 * 64 + 2 * 64 * 2 * 16) * 2
    assert c.alpha_attn_s == pytest.approx(2 * 20e-6 + (proj_bytes + 100 * 64 * 2) / bw)
    assert c.beta_attn_s_per_token == pytest.approx(256 / bw)  # 2·2·16·2·2 bytes per token
    assert c.kv_capacity_tokens == (1e6 * 0.9 - proj_bytes - 2 * 100 * 64 * 2) // 256
    # One GPU's NIC carries its own b tokens; no all-reduce.
    assert c.alpha_comm_s == pytest.approx(2 * 2 * 10e-6)
    assert c.beta_comm_s_per_token == pytest.approx(2 * 2 * 64 * 2 / (10e9 * 0.8))
    assert "2A dp (per GPU)" in c.source
    # The FFN side does not depend on how the Attention side is split.
    tp = roofline_coefficients(
        TINY,
        GPU,
        deployment=d.replace(attn_parallel="tp"),
        efficiency=EFF,
        ffn_tokens_range=SMALL_N,
    )
    assert (c.alpha_ffn_s, c.beta_ffn_s_per_token) == (tp.alpha_ffn_s, tp.beta_ffn_s_per_token)


def test_dp_equals_one_gpu_tp() -> None:
    """A DP worker is a one-GPU instance: DP over g GPUs gives the 1-GPU TP attention terms."""
    m, hw = load_model_spec("qwen3-235b-a22b-fp8"), load_hardware_spec("h200")
    dp = cost_coefficients(
        model=m, hardware=hw, deployment=Deployment(attn_gpus=8, attn_parallel="dp")
    )
    one = cost_coefficients(model=m, hardware=hw, deployment=Deployment(attn_gpus=1))
    for key in ("alpha_attn_s", "beta_attn_s_per_token", "alpha_comm_s", "beta_comm_s_per_token"):
        assert getattr(dp, key) == getattr(one, key), key
    assert dp.kv_capacity_tokens == one.kv_capacity_tokens


def test_mla_keeps_the_whole_latent_on_every_tp_gpu() -> None:
    """MLA's latent is shared by all heads: TP does not shrink the KV per GPU, DP-style."""
    m = load_model_spec("deepseek-v3")
    mem = roofline_memory(m, load_hardware_spec("h200"), Deployment(attn_gpus=8, ffn_gpus=8))
    assert mem.kv_bytes_per_token_per_gpu == m.kv_bytes_per_token("bf16")


def test_gqa_kv_heads_replicate_past_h_kv() -> None:
    """Qwen3 has 4 KV heads: TP 8 keeps one per GPU (2x replicated), so KV/GPU is 1/4 not 1/8."""
    m = load_model_spec("qwen3-235b-a22b-fp8")
    mem = roofline_memory(m, load_hardware_spec("h200"), Deployment(attn_gpus=8, ffn_gpus=8))
    assert mem.kv_bytes_per_token_per_gpu == 2 * 1 * 128 * 94 * 2 == m.kv_bytes_per_token() / 4


def test_tp_degree_must_fit_the_heads() -> None:
    """TP degrees that do not divide the heads (or the KV heads) are refused in one line."""
    m = load_model_spec("qwen3-235b-a22b-fp8")
    with pytest.raises(InputError, match=r"attn_gpus=3 must divide the 64 attention heads"):
        cost_coefficients(model=m, hardware="h200", deployment=Deployment(attn_gpus=3))
    tiny = dataclasses.replace(TINY, num_attention_heads=12, num_kv_heads=4)
    with pytest.raises(InputError, match=r"attn_gpus=6 and the 4 KV heads .* divide one another"):
        roofline_coefficients(
            tiny, GPU, deployment=Deployment(attn_gpus=6, ffn_gpus=1), ffn_tokens_range=SMALL_N
        )


def _brute_copies(E: int, k: int, g: int) -> float:
    """Mean distinct GPUs (experts in g contiguous blocks) over all top-k expert sets."""
    per = E // g
    sets = list(itertools.combinations(range(E), k))
    return sum(len({e // per for e in s}) for s in sets) / len(sets)


@pytest.mark.parametrize(("E", "k", "g"), [(8, 2, 8), (8, 2, 4), (12, 3, 4), (16, 4, 2), (6, 1, 3)])
def test_ep_token_copies_match_enumeration(E: int, k: int, g: int) -> None:
    """EP copies per token equal the exact mean distinct GPUs its k experts land on."""
    m = dataclasses.replace(
        TINY, num_experts=E, experts_per_token=k, moe_intermediate_size=8, num_dense_layers=0
    )
    got = ffn_token_copies(m, Deployment(ffn_gpus=g))
    assert got == pytest.approx(_brute_copies(E, k, g), rel=1e-12)
    assert ffn_token_copies(m, Deployment(ffn_gpus=g, ffn_parallel="tp")) == 1.0


def test_ep_and_tp_ffn_memory() -> None:
    """EP holds ⌈E/g⌉ whole experts per GPU, TP 1/g of each; auto picks EP for MoE, TP dense."""
    m, hw = load_model_spec("qwen3-235b-a22b-fp8"), load_hardware_spec("h200")
    expert, router = 3 * 4096 * 1536, 4096 * 128
    ep = roofline_memory(m, hw, Deployment(ffn_gpus=6))
    assert ep.ffn_parallel == "ep"
    assert ep.ffn_weight_bytes_per_gpu == pytest.approx(94 * (22 * expert + router * 2 / 6))
    tp = roofline_memory(m, hw, Deployment(ffn_gpus=6, ffn_parallel="tp"))
    assert tp.ffn_weight_bytes_per_gpu == pytest.approx(94 * (128 * expert + router * 2) / 6)
    assert roofline_memory(load_model_spec("llama-3.1-8b"), hw).ffn_parallel == "tp"
    with pytest.raises(InputError, match="ffn_parallel ep needs routed experts"):
        roofline_memory(load_model_spec("llama-3.1-8b"), hw, Deployment(ffn_parallel="ep"))
    with pytest.raises(InputError, match=r"ffn_gpus=256 must not exceed the 128 routed experts"):
        roofline_memory(m, hw, Deployment(ffn_gpus=256, ffn_parallel="ep"))
    assert roofline_memory(m, hw, Deployment(ffn_gpus=256)).ffn_parallel == "tp"


def test_ffn_refusal_names_side_sizes_and_smallest_fitting_count() -> None:
    """FFN weights that do not fit name the side, GB needed and available, and the smallest
    --ffn-gpus that fits; one GPU fewer than that does not fit (brute force)."""
    m, hw = load_model_spec("qwen3-235b-a22b"), load_hardware_spec("h100-sxm")
    with pytest.raises(InputError) as err:
        cost_coefficients(model=m, hardware=hw, deployment=Deployment(ffn_gpus=4))
    msg = str(err.value)
    assert re.match(
        r"FFN weights of qwen3-235b-a22b \(bf16\) plus activations of 4096 tokens need "
        r"[\d.]+ GB per GPU on 4 x h100-sxm \(ep\), 72.0 GB available after the reserve; "
        r"the smallest FFN instance that fits is --ffn-gpus (\d+)$",
        msg,
    ), msg
    g = int(msg.rsplit(" ", 1)[1])
    cost_coefficients(model=m, hardware=hw, deployment=Deployment(ffn_gpus=g))
    with pytest.raises(InputError, match="FFN weights"):
        cost_coefficients(model=m, hardware=hw, deployment=Deployment(ffn_gpus=g - 1))
    # The same model in FP8 needs half the GPUs' worth of memory.
    fp8 = cost_coefficients(
        model=m, hardware=hw, deployment=Deployment(ffn_gpus=4, weight_dtype="fp8")
    )
    assert fp8.layers == 94


def test_dp_attention_refusal_suggests_tp() -> None:
    """Under DP every GPU holds all attention weights: more GPUs cannot help, TP can."""
    small = dataclasses.replace(GPU, hbm_capacity_bytes=60e3)  # 54 kB usable
    # Full copy: 2 layers x 12288 params + 2 x 6400 embedding/LM head, bf16 = 74.8 kB.
    kw = {"ffn_hardware": GPU, "ffn_tokens_range": SMALL_N}
    with pytest.raises(
        InputError,
        match=r"attention weights of tiny \(bf16\) need 74.8 kB per GPU on 4 x toy-gpu \(dp\), "
        r"54.0 kB available after the reserve; DP attention keeps a full copy on every GPU: "
        r"use --attn-parallel tp with --attn-gpus 2 or more$",
    ):
        roofline_coefficients(
            TINY, small, deployment=Deployment(attn_gpus=4, attn_parallel="dp"), **kw
        )
    with pytest.raises(
        InputError, match=r"smallest Attention instance that fits is --attn-gpus 2$"
    ):
        roofline_coefficients(TINY, small, deployment=Deployment(attn_gpus=1), **kw)
    ok = roofline_coefficients(TINY, small, deployment=Deployment(attn_gpus=2), **kw)
    assert ok.kv_capacity_tokens == (54e3 - 2 * 6144 * 2 - 2 * 100 * 64 * 2 / 2) // 128


def test_batch_refusal_names_the_largest_batch_that_fits() -> None:
    """A fixed per-GPU batch whose KV does not fit is refused with the largest that does."""
    c = cost_coefficients(
        model="qwen3-235b-a22b-fp8",
        hardware="h200",
        deployment=Deployment(attn_gpus=8, attn_parallel="dp"),
    )
    assert c.kv_capacity_tokens == 611_432
    most = max_batch_per_worker(c.kv_capacity_tokens, 1100)
    assert most == 555 and 555 * 1100 <= 611_432 < 556 * 1100
    d = Deployment(attn_gpus=8, attn_parallel="dp", batch_per_gpu=600)
    with pytest.raises(
        InputError,
        match=r"600 slots x 1,100 KV tokens = 660,000 tokens exceed the 611,432 that one GPU "
        r"holds \(bf16 KV\); the largest batch that fits is --batch-per-gpu 555$",
    ):
        check_batch_fits(c.kv_capacity_tokens, d, 1100)
    check_batch_fits(c.kv_capacity_tokens, d.replace(batch_per_gpu=555), 1100)
    # batch = B of the whole DP instance: 8·555 fits, 8·556 does not.
    check_batch_fits(c.kv_capacity_tokens, d.replace(batch_per_gpu=None, batch=8 * 555), 1100)
    with pytest.raises(InputError, match="must be a multiple of attn_gpus=8"):
        check_batch_fits(c.kv_capacity_tokens, d.replace(batch_per_gpu=None, batch=4001), 1100)
    assert max_batch_per_worker(None, 1100) is None
    with pytest.raises(InputError, match="tokens_per_slot must be a finite number > 0"):
        max_batch_per_worker(1e6, 0)


def test_memory_record_fields() -> None:
    """DeploymentMemory reports per-GPU bytes for both sides, JSON-friendly."""
    mem = roofline_memory(
        load_model_spec("qwen3-235b-a22b-fp8"),
        load_hardware_spec("h200"),
        Deployment(attn_gpus=8, attn_parallel="dp"),
    )
    assert isinstance(mem, DeploymentMemory)
    d = mem.to_dict()
    assert d["workers_per_instance"] == 8 and d["attn_parallel"] == "dp"
    assert d["ffn_usable_bytes_per_gpu"] == pytest.approx(141e9 * 0.9)
    assert (
        d["attn_weight_bytes_per_gpu"]
        == load_model_spec("qwen3-235b-a22b-fp8").attention_weight_bytes
    )


def test_old_keywords_still_work_and_conflicts_are_refused() -> None:
    """Old keywords attn_gpus/ffn_gpus/kv_dtype equal that Deployment; contradictions fail."""
    old = cost_coefficients(
        model="llama-3.1-70b", hardware="h100-sxm", attn_gpus=2, ffn_gpus=4, kv_dtype="fp8"
    )
    new = cost_coefficients(
        model="llama-3.1-70b",
        hardware="h100-sxm",
        deployment=Deployment(attn_gpus=2, ffn_gpus=4, kv_dtype="fp8"),
    )
    assert old == new
    with pytest.raises(InputError, match=r"ffn_gpus=2 contradicts the deployment's ffn_gpus=8"):
        cost_coefficients(
            model="llama-3.1-70b", hardware="h100-sxm", deployment=Deployment(), ffn_gpus=2
        )
    # Defaults come from Deployment: 8 FFN GPUs.
    default = cost_coefficients(model="llama-3.1-70b", hardware="h100-sxm")
    assert default == cost_coefficients(
        model="llama-3.1-70b", hardware="h100-sxm", deployment=Deployment()
    )
    assert "8F tp" in default.source


@settings(max_examples=40, deadline=None)
@given(g=st.sampled_from([1, 2, 4, 8]), b=st.integers(1, 4096))
def test_dp_instance_kv_is_g_workers(g: int, b: int) -> None:
    """DP: a worker's capacity does not depend on g_A; the instance holds g_A times it."""
    m, hw = load_model_spec("llama-3.1-8b"), load_hardware_spec("h100-sxm")
    one = roofline_memory(m, hw, Deployment(attn_gpus=1, ffn_gpus=1))
    dp = roofline_memory(m, hw, Deployment(attn_gpus=g, attn_parallel="dp", ffn_gpus=1))
    assert dp.kv_capacity_tokens == one.kv_capacity_tokens
    assert dp.workers_per_instance == g
    fits = b <= max_batch_per_worker(dp.kv_capacity_tokens, 100)  # type: ignore[operator]
    d = Deployment(attn_gpus=g, attn_parallel="dp", batch_per_gpu=b, ffn_gpus=1)
    if fits:
        check_batch_fits(dp.kv_capacity_tokens, d, 100)
    else:
        with pytest.raises(InputError, match="the largest batch that fits"):
            check_batch_fits(dp.kv_capacity_tokens, d, 100)


def test_nic_traffic_counts_ffn_nodes_not_gpus() -> None:
    """Over NICs one copy per FFN node crosses the network; over NVLink one per FFN GPU."""
    m = load_model_spec("qwen3-235b-a22b-fp8")
    dp = Deployment(attn_gpus=8, attn_parallel="dp")
    h200 = cost_coefficients(model=m, hardware="h200", deployment=dp, efficiency=EFF)
    # All 8 FFN GPUs in one HGX node: one copy per token, per direction, per layer.
    assert h200.beta_comm_s_per_token == pytest.approx(2 * 94 * 4096 * 2 * 1 / (50e9 * 0.8))
    two_nodes = cost_coefficients(
        model=m, hardware="h200", deployment=dp.replace(ffn_gpus=16), efficiency=EFF
    )
    # Two nodes of 64 experts each: a token misses one with probability Π (64 − i)/(128 − i).
    copies = 2 * (1 - math.prod((64 - i) / (128 - i) for i in range(8)))
    assert two_nodes.beta_comm_s_per_token == pytest.approx(2 * 94 * 4096 * 2 * copies / 40e9)
    nvl = cost_coefficients(
        model=m, hardware="h200", deployment=dp, link="scale-up", efficiency=EFF
    )
    per_gpu = ffn_token_copies(m, dp)
    assert 5 < per_gpu < 6
    assert nvl.beta_comm_s_per_token == pytest.approx(2 * 94 * 4096 * 2 * per_gpu / (450e9 * 0.8))


@pytest.mark.parametrize(("E", "k", "g", "per"), [(16, 3, 8, 4), (12, 2, 6, 3), (8, 4, 8, 8)])
def test_grouped_copies_match_enumeration(E: int, k: int, g: int, per: int) -> None:
    """Destinations of `per` GPUs: the copies equal the exact mean distinct groups hit."""
    m = dataclasses.replace(
        TINY, num_experts=E, experts_per_token=k, moe_intermediate_size=8, num_dense_layers=0
    )
    got = ffn_token_copies(m, Deployment(ffn_gpus=g), gpus_per_destination=per)
    assert got == pytest.approx(_brute_copies(E, k, g // per), rel=1e-12)


def test_huge_top_k_copies_are_fast_and_bounded() -> None:
    """A top-k of a million (hostile config) gives the log-gamma copies, ≤ min(k, n), at once."""
    big = dataclasses.replace(
        TINY,
        num_experts=4_000_000,
        experts_per_token=1_000_000,
        moe_intermediate_size=8,
        num_dense_layers=0,
    )
    copies = ffn_token_copies(big, Deployment(ffn_gpus=8))
    assert copies == pytest.approx(8.0)
    small = dataclasses.replace(big, num_experts=4096, experts_per_token=2000)
    # Log-gamma branch against the explicit product at the same shape.
    from afdsizer.cost import _sharding

    exact = math.prod((4096 - 512 - i) / (4096 - i) for i in range(2000))
    assert _sharding._miss_probability(4096, 2000, 512.0) == pytest.approx(exact, rel=1e-9)
    assert ffn_token_copies(small, Deployment(ffn_gpus=8)) == pytest.approx(8 * (1 - exact))


@settings(max_examples=80, deadline=None)
@given(
    kv_heads=st.sampled_from([1, 2, 4, 8]),
    group=st.sampled_from([1, 2, 4]),
    g_a=st.sampled_from([1, 2, 4, 8, 16]),
    experts=st.sampled_from([8, 16, 64]),
    g_f=st.sampled_from([1, 2, 4, 8]),
    fp8=st.booleans(),
)
def test_shards_add_up_to_the_model(
    kv_heads: int, group: int, g_a: int, experts: int, g_f: int, fp8: bool
) -> None:
    """Per-GPU shares times the GPUs give back the whole model, exactly when nothing is
    replicated (g_A ≤ H_kv, g_F | E), and more than the model when KV heads are replicated."""
    from afdsizer.cost._sharding import attention_weight_bytes_per_gpu, ffn_weight_bytes_per_gpu

    heads = kv_heads * group
    m = dataclasses.replace(
        TINY,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        num_experts=experts,
        experts_per_token=2,
        moe_intermediate_size=8,
        num_dense_layers=0,
    ).with_weight_dtype("fp8" if fp8 else None)
    if heads % g_a or (kv_heads % g_a and g_a % kv_heads):
        return  # not a valid TP degree (refused elsewhere)
    d = Deployment(attn_gpus=g_a, ffn_gpus=g_f)
    attn = attention_weight_bytes_per_gpu(m, d) * g_a
    if g_a <= kv_heads:
        assert attn == pytest.approx(m.attention_weight_bytes, rel=1e-12)
    else:
        assert attn > m.attention_weight_bytes
    for mode in ("ep", "tp"):
        ffn = ffn_weight_bytes_per_gpu(m, d.replace(ffn_parallel=mode)) * g_f
        assert ffn == pytest.approx(m.ffn_weight_bytes, rel=1e-12)  # g_F divides E here
    dp = Deployment(attn_gpus=g_a, attn_parallel="dp", ffn_gpus=g_f)
    assert attention_weight_bytes_per_gpu(m, dp) == m.attention_weight_bytes
