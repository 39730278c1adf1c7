"""The ``afdsizer`` command: a thin layer over the Python API.

Each command lives in ``afdsizer/_commands/<name>.py`` and registers itself on :data:`app`.
Errors that afdsizer raises on purpose (:class:`afdsizer.errors.AfdsizerError`) are printed as one
line on stderr with exit status 2 and no traceback; usage errors from typer/click also exit 2.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

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

    Used by the console script (which exits with the returned status) and by tests. Every
    error ends in one line on stderr: afdsizer's own errors and usage errors exit 2, an
    interrupt 130.
    """
    click = _click_exceptions()
    try:
        with _whole_cells_when_piped(argv if argv is not None else sys.argv[1:]):
            code = app(args=argv, prog_name="afdsizer", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AfdsizerError as exc:
        return _error(str(exc))
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 2  # typer has printed the help already
        # One line (not click's usage block and panel) like every other error.
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        return _error(" ".join(exc.format_message().split()) + where)
    except click.ClickException as exc:  # a bad file argument, say
        return _error(" ".join(exc.format_message().split()))
    except (typer.Abort, KeyboardInterrupt):
        return _interrupted()
    except OSError as exc:
        if exc.filename is None:
            raise
        # A path the OS refuses however it is used (too long, a loop of links, not a folder):
        # the user's input, wherever in afdsizer it was first touched.
        name = str(exc.filename)
        shown = name if len(name) <= 80 else name[:77] + "..."
        return _error(f"{shown}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:  # a binary file read as text somewhere not yet guarded
        return _error(f"an input file is not UTF-8 text ({exc.reason} at byte {exc.start})")
    except MemoryError:
        return _error("out of memory: an input or a size is far larger than this machine holds")
    except RecursionError:
        # Deeply nested JSON (the YAML loader bounds its own depth): input, not a bug here.
        return _error("input nested too deeply to read (JSON or YAML thousands of levels deep)")
    if code == _INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130)
        return _interrupted()
    return code if isinstance(code, int) else 0


_INTERRUPTED = 130
"""Exit status after SIGINT (128 + 2), as shells report it."""


def _click_exceptions() -> Any:
    """The exceptions module of the click that typer runs on (recent typer vendors its own)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def _error(message: str) -> int:
    print(f"afdsizer: error: {message}", file=sys.stderr)
    return 2


def _interrupted() -> int:
    print("afdsizer: interrupted", file=sys.stderr)
    return _INTERRUPTED


@contextlib.contextmanager
def _whole_cells_when_piped(argv: list[str]) -> Iterator[None]:
    """Let rich lay tables out at their natural width when stdout is not a terminal.

    Rich fits output to 80 columns when it cannot ask a terminal, cutting cells to "…"; a file
    or pipe has no width, so give it one no table reaches (rich reads ``COLUMNS``). The old
    value is restored so in-process callers (tests) see no lasting change. Help pages keep the
    usual width: they are prose, and rich wraps it without cutting.
    """
    if sys.stdout.isatty() or not argv or "--help" in argv:
        yield
        return
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(_PIPED_COLUMNS)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


_PIPED_COLUMNS = 10_000
"""Width given to rich when stdout is a file or pipe: wider than any table afdsizer prints."""


def _entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry_point()
