"""afdsizer: size Attention–FFN disaggregated (AFD) LLM decoding.

Stages (docs/design.md §7), data flowing one way:

- :mod:`afdsizer.workload` — request traces, θ and σ² of a slot's token load;
- :mod:`afdsizer.cost` — per-step Attention / communication / FFN latency coefficients;
- :mod:`afdsizer.theory` — the closed-form ratio r*, regimes, barrier refinement, (B, r) sizing;
- :mod:`afdsizer.sim` — the step-level simulator of an rA–1F bundle;
- :mod:`afdsizer.validate`, :mod:`afdsizer.report`, :mod:`afdsizer.sweep` — checks, HTML, grids.
"""

from typing import TYPE_CHECKING, Any

from afdsizer.errors import AfdsizerError, DataFileError, InputError, TraceError

if TYPE_CHECKING:
    from afdsizer._sizing import size

__all__ = ["AfdsizerError", "DataFileError", "InputError", "TraceError", "__version__", "size"]


def __getattr__(name: str) -> Any:
    # ``afdsizer.size`` imports the stages only when it is used, so `import afdsizer` stays fast.
    if name == "size":
        from afdsizer._sizing import size

        return size
    raise AttributeError(f"module 'afdsizer' has no attribute {name!r}")


__version__ = "0.1.0"
