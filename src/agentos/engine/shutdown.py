"""A run's shutdown request: the first SIGINT/SIGTERM drains, a second (over a second later) kills.

The handler only sets flags (huey's consumer); the coordinator's main loop reads them and
acts, and its tick times the drain. A request that came before the coordinator started
(`core.stop_signals`, installed at the CLI's first instant) is adopted, never lost.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from agentos.core import stop_signals

DUPLICATE_SIGNAL_S = 1.0  # a second press closer than this is the same press (a key bounce)


class ShutdownRequest:
    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.stop = threading.Event()  # first signal: drain
        self.force = threading.Event()  # second signal: kill
        self.first_at: float | None = None  # time.monotonic() of the first request
        self.signum: int | None = None  # the signal that started the shutdown; None: none did
        self._wake = wake  # tells the main loop to look now

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler. Flags only."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            self.signum = signum
            self.stop.set()
        elif now - self.first_at >= DUPLICATE_SIGNAL_S:
            self.force.set()
        self._wake()

    def install(self) -> dict[int, Any]:
        """Handle SIGINT and SIGTERM (main thread only), adopting a request made before.
        Returns the handlers to put back (`restore`)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self.handle)
        early = stop_signals.first_request_at()
        if early is not None and self.first_at is None:  # Ctrl+C before we started: adopt it
            self.first_at = early
            self.stop.set()
        return previous

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def words(self) -> str | None:
        """The signal in the operator's words (`Ctrl+C`, `SIGTERM`); None when none came."""
        if self.signum is None:
            return None
        if self.signum == signal.SIGINT:
            return "Ctrl+C"
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"
