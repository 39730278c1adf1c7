"""Local worker processes end when the command that started them dies, SIGKILL included.

A local sweep runs cells in a process pool whose workers are forked by a *fork server*, itself a
child of the command (the driver). Python keeps the fork server alive while any worker lives,
and a worker blocked in a long cell never notices that nobody will read its result, so a
SIGKILLed driver used to leave the fork server, its workers and the resource tracker running.

Two independent lines tie them to the driver:

* Linux's ``PR_SET_PDEATHSIG``: the kernel sends SIGKILL to a process when its parent exits. The
  fork server sets it on import of this module (it is in the fork server's preload list), so it
  dies with the driver; each worker sets it in its initializer, so it dies with the fork server.
* A daemon thread in each worker that checks twice a second that the driver still runs (and is
  not a zombie) and that the worker's parent is unchanged; it ends the worker otherwise. This
  also covers platforms without ``prctl`` and the ``spawn`` start method.

The resource tracker exits by itself once no process holds its pipe. Workers ignore SIGINT: on
Ctrl-C the driver alone stops, flushes what finished and stops the workers (see ``iter_local``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

__all__ = ["DRIVER_PID_ENV", "die_with_parent", "driver_alive", "init_worker"]

DRIVER_PID_ENV = "AFDSIZER_SWEEP_DRIVER_PID"
"""Set by the driver before its pool starts; the fork server inherits it and knows its driver."""
WATCH_INTERVAL_S = 0.5
"""How often a worker checks on its driver, s."""
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def driver_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else (cannot be our driver, but do not guess)
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # The state follows the parenthesised command name, which may itself hold spaces.
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: os.kill said it exists


def _watch(driver_pid: int, parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != parent_pid or not driver_alive(driver_pid):
            os._exit(1)  # no cleanup: the driver that would read our results is gone


def init_worker(driver_pid: int) -> None:
    """Initializer of every local worker process: ignore SIGINT, die with the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent or not driver_alive(driver_pid):
        os._exit(1)  # the parent or driver died before the line was set up
    threading.Thread(
        target=_watch, args=(driver_pid, parent), name="afdsizer-lifeline", daemon=True
    ).start()


def _tie_fork_server_to_driver() -> None:
    """On import in the fork server (a direct child of the driver): die with the driver."""
    driver = os.environ.get(DRIVER_PID_ENV)
    if driver is not None and driver == str(os.getppid()):
        die_with_parent()
        if not driver_alive(int(driver)):
            os._exit(1)


_tie_fork_server_to_driver()
