"""CLI commands, one module each; :func:`register_all` puts them on the typer app."""

from __future__ import annotations

import importlib

import typer

__all__ = ["register_all"]

# One module per command group; each defines ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES = ("workload", "cost", "size", "simulate", "validate", "report", "sweep", "plan")


def register_all(app: typer.Typer) -> None:
    """Register every command module's commands on ``app``."""
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"afdsizer._commands.{name}")
        module.register(app)
