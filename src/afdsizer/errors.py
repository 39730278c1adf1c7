"""Errors raised by afdsizer.

Every error afdsizer raises on bad input derives from :class:`AfdsizerError`, and also from the
builtin it specialises, so callers can catch either::

    AfdsizerError
    ├── InputError (ValueError)      a value, option or spec is out of its allowed range
    │   └── TraceError               a trace file is malformed (names file, line and column)
    └── DataFileError (OSError)      a file is missing or cannot be read

The CLI prints ``str(error)`` as a single line on stderr and exits with status 2; usage errors
(an unknown option, a value of the wrong type or out of range) are one line and status 2 too, an
interrupt (Ctrl-C, SIGTERM in a sweep) is one line and status 130. Sizes that cannot run are
refused with an estimate before any work (``afdsizer._limits``), outputs that cannot be written
or would replace an input before any work (``afdsizer._io.check_output_path``).
Messages name the thing (parameter, or file:line:column), the rule with its unit, and the value
received, e.g.
``"decode_tokens must be >= 1 (trace.csv line 1207, column GeneratedTokens), got 0"``.
"""

from __future__ import annotations

__all__ = ["AfdsizerError", "DataFileError", "InputError", "TraceError"]


class AfdsizerError(Exception):
    """Base class of every error afdsizer raises on purpose."""


class InputError(AfdsizerError, ValueError):
    """Raised when a parameter, option or configuration value breaks its rule."""


class TraceError(InputError):
    """Raised when a request trace is malformed; the message names file, line and column."""


class DataFileError(AfdsizerError, OSError):
    """Raised when an input file is missing or unreadable."""
