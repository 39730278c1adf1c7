"""File input and output: read small text inputs safely; check an output path before work
starts, then write it atomically.

:func:`read_text_file` reads a specification file (YAML, JSON, CSV of a few megabytes at most): it
refuses directories, devices and pipes (``/dev/zero`` would be read forever), files over a size
limit and bytes that are not UTF-8, each as one line naming the file.

:func:`check_output_path` refuses, in one line, an output that cannot be written (a directory,
a device, a path under ``/proc`` or ``/sys`` or below a regular file, a folder without write
permission) or that would replace one of the command's inputs. Commands call it before any
work, so a long run never ends in a traceback at the last step.

:func:`atomic_path` writes to a temporary file beside the target, then renames it: a crash or an
error mid-write leaves either the old file or nothing, never half a file. It runs the same
checks (without the inputs), so every writer gets them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from afdsizer.errors import DataFileError, InputError

__all__ = [
    "MAX_TEXT_FILE_BYTES",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_path",
    "read_text_file",
]

PathLike = str | os.PathLike[str]

MAX_TEXT_FILE_BYTES = 64 * 2**20
"""Largest specification file read (64 MiB): configs, specs and profiles are kilobytes."""

_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
"""Kernel and device filesystems: never a place for a report or a table."""


class _ReadRefusedError(DataFileError):
    """A refused read: ``strerror`` is the short reason (callers that catch OSError and add
    their own prefix use it), ``str()`` the whole line."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.strerror = reason
        self._line = f"cannot read {path}: {reason}"

    def __str__(self) -> str:
        return self._line


def read_text_file(path: PathLike, *, max_bytes: int = MAX_TEXT_FILE_BYTES) -> str:
    """The UTF-8 text of a small regular file.

    Raises
    ------
    DataFileError
        Missing, a directory, not a regular file (device, pipe, socket), larger than
        ``max_bytes``, unreadable, or not UTF-8. It is an ``OSError`` whose ``strerror`` is
        the reason alone, so ``except OSError`` handlers that name the file keep working.

    Examples
    --------
    >>> try:
    ...     read_text_file("/dev/zero")
    ... except OSError as exc:
    ...     print(exc)
    cannot read /dev/zero: not a regular file (a device, pipe or socket)
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise _ReadRefusedError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise _ReadRefusedError(path, "is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise _ReadRefusedError(path, "not a regular file (a device, pipe or socket)")
    if info.st_size > max_bytes:
        raise _ReadRefusedError(path, f"{info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # a file growing while read stays bounded too
    except OSError as exc:
        raise _ReadRefusedError(path, exc.strerror or str(exc)) from None
    if len(data) > max_bytes:
        raise _ReadRefusedError(path, f"over the {max_bytes:,}-byte limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})"
        raise _ReadRefusedError(path, reason) from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (through links, ``..``, hard links)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _system_root(path: Path) -> Path | None:
    for root in _SYSTEM_ROOTS:
        if path == root or root in path.parents:
            return root
    return None


def _check_ancestors(target: Path, option: str) -> None:
    """The nearest existing ancestor of ``target`` must be a folder we may write in."""
    for ancestor in target.parents:
        if not ancestor.exists():
            if ancestor.is_symlink():  # a dangling link: mkdir would fail on it
                raise InputError(f"{option} {target}: {ancestor} is a broken symbolic link")
            continue
        if not ancestor.is_dir():
            raise InputError(
                f"{option} {target}: {ancestor} is a file, not a directory; "
                "nothing can be written below it"
            )
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise InputError(
                f"{option} {target}: cannot create files in {ancestor} (no permission)"
            )
        return


def _check_target(path: PathLike, option: str, *, directory: bool) -> Path:
    target = Path(path).expanduser()
    if str(path) == "":
        raise InputError(f"{option} must be a path, got an empty string")
    resolved = Path(os.path.realpath(target))
    root = _system_root(Path(os.path.abspath(target))) or _system_root(resolved)
    if root is not None:
        raise InputError(f"{option} {target}: is under {root}, which holds no ordinary files")
    if resolved.exists():
        if directory and not resolved.is_dir():
            raise InputError(
                f"{option} {target}: exists and is a file; this output is a directory "
                "(give a new path, or an earlier output directory to resume)"
            )
        if not directory and resolved.is_dir():
            raise InputError(f"{option} {target}: is a directory; give a file path")
        if not directory and not resolved.is_file():
            raise InputError(f"{option} {target}: is not a regular file (a device or pipe)")
        if not os.access(resolved, os.W_OK) or not os.access(resolved.parent, os.W_OK | os.X_OK):
            raise InputError(f"{option} {target}: cannot be replaced (no permission)")
        return target
    _check_ancestors(Path(os.path.abspath(target)), option)
    return target


def check_output_path(
    path: PathLike,
    *,
    option: str = "--output",
    inputs: Mapping[str, PathLike | None] | None = None,
    directory: bool = False,
) -> Path:
    """Refuse an output path that cannot be written or that would replace an input.

    Call it before the command does any work.

    Parameters
    ----------
    path : str or Path
        The output path as the user gave it.
    option : str, default "--output"
        The option that named it, for the message.
    inputs : mapping of str to path or None, optional
        The command's input files by option name (``{"--trace": trace}``); None values are
        skipped. The output may be none of them.
    directory : bool, default False
        The output is a directory (a sweep's parts), not a file.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path` (``~`` expanded).

    Raises
    ------
    InputError
        The path is a directory (or a file, with ``directory``), a device, under ``/proc``,
        ``/sys`` or ``/dev``, below a regular file, in a folder without write permission, or the
        same file as one of ``inputs``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_path(folder / "report.html", option="-o").name
    'report.html'
    >>> check_output_path(folder, option="-o")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    afdsizer.errors.InputError: -o ...: is a directory; give a file path
    """
    target = _check_target(path, option, directory=directory)
    for name, source in (inputs or {}).items():
        if source is not None and _same_file(target, Path(source).expanduser()):
            raise InputError(
                f"{option} {target} is also the {name} input; writing it would destroy the "
                "input: give another output path"
            )
    return target


@contextlib.contextmanager
def atomic_path(target: PathLike, *, option: str = "output") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The caller writes the temporary path however it likes (polars, matplotlib, ...). If the
    block raises, the temporary file is removed and ``target`` is untouched.

    Raises
    ------
    InputError
        ``target`` fails :func:`check_output_path` (without inputs).
    DataFileError
        The file system refuses the write (full disk, read-only mount, ...).
    """
    target = _check_target(target, option, directory=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise DataFileError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file 0600; give the result the mode a plain open() would (umask).
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    except DataFileError:
        raise
    except OSError as exc:
        raise DataFileError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))
