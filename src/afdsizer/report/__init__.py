"""Report stage: figures and the self-contained HTML report (docs/design.md §7).

:func:`build_report_data` computes what a report shows through the public APIs of workload,
theory and sim; :func:`write_report` renders it as one HTML file with inline SVG figures and
the numbers behind each figure embedded as JSON.
"""

from afdsizer.report._build import (
    DEFAULT_SIM_STEPS,
    auto_sim_steps,
    build_deployment_report,
    build_report_data,
    curve_ratios,
    make_report,
    sim_ratios_around,
    theta_windows,
    write_deployment_report,
)
from afdsizer.report._calibration import calibration_summary
from afdsizer.report._data import (
    REGIMES,
    CalibrationPart,
    CalibrationSummary,
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
from afdsizer.report._svg import figure_to_inline_svg

__all__ = [
    "DEFAULT_SIM_STEPS",
    "REGIMES",
    "CalibrationPart",
    "CalibrationSummary",
    "FigureBlock",
    "RatioCurves",
    "RecommendationSummary",
    "RegimeMap",
    "ReportData",
    "SimPoints",
    "ThetaWindows",
    "WorkloadSummary",
    "auto_sim_steps",
    "build_deployment_report",
    "build_figures",
    "build_report_data",
    "calibration_summary",
    "curve_ratios",
    "figure_to_inline_svg",
    "make_report",
    "render_report",
    "report_payload",
    "sim_ratios_around",
    "theta_windows",
    "write_deployment_report",
    "write_report",
]
