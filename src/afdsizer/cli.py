"""The ``afdsizer`` command: a thin layer over the Python API.

Each command lives in ``afdsizer/_commands/<name>.py`` and registers itself on :data:`app`.
Errors that afdsizer raises on purpose (:class:`afdsizer.errors.AfdsizerError`) are printed as one
line on stderr with exit status 2 and no traceback; usage errors from typer/click also exit 2.
"""

from __future__ import annotations

import sys

import typer

from afdsizer._commands import register_all
from afdsizer.errors import AfdsizerError

__all__ = ["app", "main"]

app = typer.Typer(
    name="afdsizer",
    help="Size Attention–FFN disaggregated (AFD) LLM decoding: how many Attention instances per "
    "FFN instance, at what batch size.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
register_all(app)


def _print_version(value: bool) -> None:
    if value:
        from afdsizer import __version__

        typer.echo(f"afdsizer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """Size Attention–FFN disaggregated (AFD) LLM decoding."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Used by the console script (which exits with the returned status) and by tests.
    """
    try:
        # Standalone mode: typer prints usage errors itself and exits 2 through SystemExit.
        app(args=argv, prog_name="afdsizer")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AfdsizerError as exc:
        print(f"afdsizer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("afdsizer: interrupted", file=sys.stderr)
        return 130
    return 0


def _entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry_point()
