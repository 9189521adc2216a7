"""Ctrl+C and SIGTERM from the first instant of a CLI process: a flag, never a traceback.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread happens
to be (an import, the fork server's start, a GitHub listing), and SIGTERM's default
action kills the process with status 143. The CLI installs these handlers before it
imports anything heavy. They only record the request; the CLI checks it at safe points
and `ParallelCoordinator` adopts it when it starts, so every interrupt ends the same
way: exit 130, resumable. SIGTERM is treated exactly like Ctrl+C (130, not 143): both
mean "stop, keep what is done".

The fork server and its workers must not receive these signals before they are ready.
`blocked_during_spawn` blocks them while a helper process is created, so the helper
inherits a mask that holds them pending (the resource tracker's bpo-33613 technique).
"""

from __future__ import annotations

import signal
import threading
import time

TYPE_CHECKING = False  # not typing's: this module runs before anything else, so it imports little
if TYPE_CHECKING:
    from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = threading.Event()
_first_at: float | None = None
_signum: int | None = None


def _handler(signum: int, frame: FrameType | None) -> None:
    """Flag only: remember the first request."""
    global _first_at, _signum
    if _first_at is None:
        _first_at, _signum = time.monotonic(), signum
    _requested.set()


def install() -> None:
    """Install the flag handlers (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)


def ignore_from_now() -> None:
    """The exit code is decided: ignore further signals, but remember them.

    Python's finalization resets handlers it installed to SIG_DFL, so a Ctrl+C in the
    last milliseconds of the process would otherwise kill it by signal. SIG_IGN is kept.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _handler:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def requested() -> bool:
    return _requested.is_set()


def sleep(seconds: float) -> None:
    """`time.sleep` that a Ctrl+C or SIGTERM ends at once, by raising Interrupted.

    For waits in the CLI process before the coordinator runs (a GitHub rate limit can
    ask for minutes); in any other process it is a plain sleep.
    """
    if _requested.wait(max(0.0, seconds)):
        from agentos.core.errors import Interrupted

        raise Interrupted("interrupted while waiting")


def first_request_at() -> float | None:
    """`time.monotonic()` of the first request, or None."""
    return _first_at


def unblock_in_child() -> None:
    """Undo the inherited mask in a worker once its own handlers are in place."""
    try:  # noqa: SIM105 - contextlib is not imported this early
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    except (OSError, ValueError):
        pass


class blocked_during_spawn:  # used like a function: `with blocked_during_spawn():`
    """Block SIGINT/SIGTERM in this thread while a helper process is spawned.

    The child inherits the blocked mask across exec: a Ctrl+C to the terminal's process
    group stays pending in it instead of raising KeyboardInterrupt mid-import. Here the
    signals stay pending too, and are delivered to our handler when this returns.
    """

    def __init__(self) -> None:
        self._old: set[int | signal.Signals] | None = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._old)


def reset_for_tests() -> None:
    global _first_at, _signum
    _requested.clear()
    _first_at = _signum = None
