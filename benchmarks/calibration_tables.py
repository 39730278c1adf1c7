"""Print the figures of docs/calibration.md from the full measured tables in ../shared.

Run from the repository root: ``python benchmarks/calibration_tables.py [SHARED_SILICON_DIR]``.
Prints Markdown tables: per-part fits on the preset grid, the MoE curve's accuracy, and the
DeepSeek-V3 analysis of issue 12 (what r each set of coefficients recommends).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from afdsizer.cost import MODEL_PRESETS, cost_coefficients, load_model_spec
from afdsizer.cost._calibrate import calibrate
from afdsizer.cost._moe_curve import fit_expert_curve
from afdsizer.cost._silicon import read_silicon

ROOT = Path(__file__).resolve().parents[1]
SILICON = ROOT.parent / "shared/calibration/aiconfigurator_silicon"
GPUS = {"h100_sxm": "H100", "h200_sxm": "H200"}
DEPLOYMENTS = {"deepseek-v3": (8, 16, "fp8"), "llama-3.1-70b": (4, 8, "bf16"),
               "qwen3-235b-a22b": (4, 8, "bf16")}  # fmt: skip
SHORT = {
    "vllm_flash_attn_fa3": "FA3",
    "torch.nn.functional.linear": "torch linear",
    "vllm_unquantizedfusedmoe_triton_tritonexperts": "triton fused MoE",
    "vllm_fp8moe_triton_tritonexperts": "triton fp8 MoE",
    "vllm_fp8moe_flashinfer_cutlass_flashinferexperts": "flashinfer cutlass fp8 MoE",
    "DeepGemmFp8BlockScaledMMKernel": "DeepGEMM",
    "FLASHMLA": "FlashMLA",
    "FLASH_ATTN_MLA": "FA MLA",
    "NCCL": "NCCL",
}


def _dep(model: str) -> tuple[int, int, str]:
    return DEPLOYMENTS.get(model, (1, 8, "bf16"))


def _fmt_ratio(entry: dict[str, Any]) -> str:
    ratios = entry.get("ratio_to_roofline") or {}
    return " / ".join(f"{v:.2g}" for v in ratios.values()) or "–"


def per_part_table(silicon: Path) -> None:
    """One row per (GPU, model, part)."""
    print("| GPU | model | A/F GPUs | part | kernel (dtype) | rows | fitted range | median / max "
          "error | fit ÷ roofline |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for gpu, label in GPUS.items():
        for model in MODEL_PRESETS:
            a, f, kv = _dep(model)
            res = calibrate(model=model, silicon=silicon / gpu, attn_gpus=a, ffn_gpus=f,
                            kv_dtype=kv)  # fmt: skip
            for e in res.fits:
                rng = "; ".join(
                    f"{k} {v[0]:,.0f}–{v[1]:,.0f}" for k, v in e["fitted_range"].items()
                )
                err = e["median_rel_error"]
                err_txt = "–" if err is None else f"{err:.1%} / {e['max_rel_error']:.1%}"
                kernel = SHORT.get(e["kernel_source"], e["kernel_source"])
                print(f"| {label} | {model} | {a}/{f} | {e['part']} | {kernel} ({e['dtype']}) | "
                      f"{e['rows']} | {rng} | {err_txt} | {_fmt_ratio(e)} |")  # fmt: skip


def moe_table(silicon: Path) -> None:
    """Curve accuracy: all rows, and fitted on N <= 2,048 predicting N >= 8,192."""
    print("| GPU | model | A/F | rows | routing | p | median / max (all rows) | "
          "extrapolation median / max |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for gpu, label in GPUS.items():
        for model in MODEL_PRESETS:
            spec = load_model_spec(model)
            if not spec.is_moe:
                continue
            a, f, _ = _dep(model)
            for rows in ("measured", "scaled"):
                for routing in ("balanced", "power_law_1.2", "power_law_1.01"):
                    m = read_silicon(silicon / gpu, spec, attn_gpus=a, ffn_gpus=f,
                                     moe_routing=routing, moe_rows=rows)  # fmt: skip
                    assert m.moe_tokens is not None and m.moe_call_time_s is not None
                    assert m.moe_shape is not None
                    N, t, sh = m.moe_tokens, m.moe_call_time_s, m.moe_shape
                    kw = {"part": "moe", "num_experts": int(sh["num_experts"]),
                          "experts_per_token": int(sh["experts_per_token"]),
                          "local_experts": sh["local_experts"]}  # fmt: skip
                    curve, rel = fit_expert_curve(N, t, **kw)
                    low, high = N <= 2048, N >= 8192
                    part, _ = fit_expert_curve(N[low], t[low], **kw)
                    ext = np.abs(part.time_s(N[high]) - t[high]) / t[high]
                    where = f"EP {f}" if rows == "measured" else "1 GPU"
                    print(f"| {label} | {model} | {a}/{f} | {where} | {routing} | "
                          f"{curve.sharpness:.2f} | {np.median(rel):.1%} / {rel.max():.1%} | "
                          f"{np.median(ext):.1%} / {ext.max():.1%} |")  # fmt: skip


def _size(coeffs: dict[str, Any], tmp: Path, name: str) -> dict[str, Any]:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in coeffs.items() if k != "source"}))
    cmd = ["afdsizer", "size", "--coeffs", str(path), "--json", "--tpot-ms", "50",
           "--kv-dtype", "fp8", "--attn-gpus", "8", "--ffn-gpus", "16"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    data: dict[str, Any] = json.loads(out[out.index("{") :])
    return data


def deepseek_table(silicon: Path) -> None:
    """What r each set of coefficients recommends for DeepSeek-V3, 8A/16F, fp8 KV, TPOT 50 ms."""
    a, f, kv = _dep("deepseek-v3")
    roof = cost_coefficients(model="deepseek-v3", hardware="h200", kv_dtype=kv, attn_gpus=a,
                             ffn_gpus=f).to_dict()  # fmt: skip
    # The kernels alone: over a scale-up fabric EP needs no gather across the two FFN nodes.
    roof_up = cost_coefficients(model="deepseek-v3", hardware="h200", kv_dtype=kv, attn_gpus=a,
                                ffn_gpus=f, link="scale-up").to_dict()  # fmt: skip
    scaled = calibrate(model="deepseek-v3", silicon=silicon / "h200_sxm", attn_gpus=a,
                       ffn_gpus=f, kv_dtype=kv)  # fmt: skip
    measured = calibrate(model="deepseek-v3", silicon=silicon / "h200_sxm", attn_gpus=a,
                         ffn_gpus=f, kv_dtype=kv, moe_rows="measured")  # fmt: skip
    cal, mea = scaled.coefficients.to_dict(), measured.coefficients.to_dict()
    groups = {"attention": ("alpha_attn_s", "beta_attn_s_per_token"),
              "comm": ("alpha_comm_s", "beta_comm_s_per_token"),
              "FFN": ("alpha_ffn_s", "beta_ffn_s_per_token")}  # fmt: skip
    rows: list[tuple[str, dict[str, Any]]] = [
        ("roofline (scale-out link; power-law routing)", roof),
        ("roofline, scale-up link (no EP gather across nodes)", roof_up),
        ("calibrated, EP rank from 1-GPU rows (default)", cal),
        ("calibrated, measured EP-16 rows", mea),
    ]
    for part, keys in groups.items():
        rows.append((f"roofline with the calibrated {part}", roof | {k: cal[k] for k in keys}))
    rows.append(("calibrated with the roofline comm", cal | {k: roof[k] for k in groups["comm"]}))
    print("| coefficients | α_A ms | β_A ns | α_C ms | β_C µs | α_F ms | β_F µs | r | B | regime |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, c) in enumerate(rows):
            d = _size(c, Path(tmp), f"c{i}")
            scaled_values = [
                c["alpha_attn_s"] * 1e3, c["beta_attn_s_per_token"] * 1e9, c["alpha_comm_s"] * 1e3,
                c["beta_comm_s_per_token"] * 1e6, c["alpha_ffn_s"] * 1e3,
                c["beta_ffn_s_per_token"] * 1e6,
            ]  # fmt: skip
            cells = " | ".join(f"{v:.3g}" for v in scaled_values)
            print(f"| {name} | {cells} | {d['r_int']} | {d['batch']} | {d['regime']} |")
    for w in scaled.warnings:
        print(f"- warning: {w}")
    for e in scaled.fits:
        for note in e.get("notes", []):
            print(f"- note ({e['part']}): {note}")


def main(silicon: Path) -> None:
    """All tables."""
    for title, fn in (("per part", per_part_table), ("MoE curve", moe_table),
                      ("DeepSeek-V3", deepseek_table)):  # fmt: skip
        print(f"\n### {title}\n")
        fn(silicon)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SILICON)
