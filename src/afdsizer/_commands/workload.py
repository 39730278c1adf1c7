"""`afdsizer workload` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Register the command(s) of this module on ``app``."""
