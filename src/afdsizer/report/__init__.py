"""Report stage: figures and the self-contained HTML report (DESIGN.md §7).

:func:`build_report_data` computes what a report shows through the public APIs of workload,
theory and sim; :func:`write_report` renders it as one HTML file with inline SVG figures and
the numbers behind each figure embedded as JSON.
"""

from afdsizer.report._data import (
    REGIMES,
    RatioCurves,
    RecommendationSummary,
    RegimeMap,
    ReportData,
    SimPoints,
    ThetaWindows,
    WorkloadSummary,
)
from afdsizer.report._figures import FigureBlock, build_figures
from afdsizer.report._render import render_report, report_payload, write_report

__all__ = [
    "REGIMES",
    "FigureBlock",
    "RatioCurves",
    "RecommendationSummary",
    "RegimeMap",
    "ReportData",
    "SimPoints",
    "ThetaWindows",
    "WorkloadSummary",
    "build_figures",
    "render_report",
    "report_payload",
    "write_report",
]
