"""StopFlag: how a stop request reaches a running workflow.

Set from a signal handler or a watchdog (the engine's worker), checked by the workflow at
its safe points (between nodes, in waits), where it raises Interrupted.
"""

from __future__ import annotations

import threading

from agentos.core.errors import Interrupted


class StopFlag:
    """Set from a signal handler or a watchdog; checked by the workflow at safe points."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self._event = event or threading.Event()
        self.reason = "stop requested"

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once on a stop; True when stopped."""
        return self._event.wait(seconds)

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted(f"interrupted ({self.reason}); resumable from the last checkpoint")
