"""Plan stage: from a trace and a GPU budget to a deployment and its launch command (issue 14).

Searches layouts (GPUs per Attention and FFN instance, DP/TP attention, EP/TP FFN,
microbatches, KV dtype, B, r) with a vectorised closed-form screen, sizes the best of each
with :func:`afdsizer.theory.recommend`, turns the chosen one into a fleet for an arrival rate,
and writes the launch configuration of vLLM's afd-plugin, SGLang or aiconfigurator.

- Search: :func:`plan_layouts` over a :class:`PlanSpace` → :class:`Plan` (:class:`Candidate`
  best first, :class:`Fleet`); the closed-form :func:`screen`; :func:`fleet_for`.
- Launch configs: :func:`emit_launch`, :class:`LaunchSpec`, :func:`vllm_additional_config`,
  :func:`sglang_afd_config`.
"""

from afdsizer.plan._emit import (
    AIC_SYSTEMS,
    EMIT_TARGETS,
    EmitTarget,
    LaunchSpec,
    check_target,
    emit_launch,
    sglang_afd_config,
    vllm_additional_config,
)
from afdsizer.plan._screen import ScreenInputs, ScreenResult, pipeline_step_s, screen
from afdsizer.plan._search import Candidate, Fleet, Plan, PlanSpace, fleet_for, plan_layouts

__all__ = [
    "AIC_SYSTEMS",
    "EMIT_TARGETS",
    "Candidate",
    "EmitTarget",
    "Fleet",
    "LaunchSpec",
    "Plan",
    "PlanSpace",
    "ScreenInputs",
    "ScreenResult",
    "check_target",
    "emit_launch",
    "fleet_for",
    "pipeline_step_s",
    "plan_layouts",
    "screen",
    "sglang_afd_config",
    "vllm_additional_config",
]
