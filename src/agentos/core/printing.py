"""Where a component's lines go: a console object, passed in.

In a run, the coordinator's console (`engine.console.ConsoleRouter`: line-atomic across
threads, redacted, mirrored to `coordinator.log`, kept above the progress bar) is handed to
every component that speaks; in a worker process, the worker's own output pipe. Nothing
swaps `sys.stdout` to reach them. `STDOUT` is the default outside a run (a library caller,
a test).
"""

from __future__ import annotations

from typing import Protocol


class Console(Protocol):
    """One whole line per call; never split across threads."""

    def line(self, text: str) -> None: ...


class StandardOutput:
    """`sys.stdout` as it is when a line is written, the line as one write."""

    def line(self, text: str) -> None:
        print(text + "\n", end="", flush=True)


class Lines(list[str]):
    """A console that keeps its lines: for callers (and tests) that read what was said."""

    def line(self, text: str) -> None:
        self.append(text)


STDOUT: Console = StandardOutput()
