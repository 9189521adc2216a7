"""Line-atomic prefixed output: each complete line is one `stream.write` call."""

from __future__ import annotations

import sys
import threading

from agentos.core.std_streams import TextSink


class OutputPrefixer:
    """Buffer text and emit whole lines as ``"<prefix> <line>\\n"``.

    Partial lines wait for their newline (or `flush()`), so lines from different workers
    never mix. `max_line` (characters) splits a runaway line so one worker printing a
    megabyte without a newline cannot hold the console hostage; None keeps lines whole.
    """

    def __init__(self, prefix: str, stream: TextSink | None = None, max_line: int | None = None) -> None:
        self.prefix = prefix
        self._stream = stream
        self._max_line = max_line
        self._buffer = ""
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextSink:
        return self._stream if self._stream is not None else sys.stdout

    def _emit(self, line: str) -> None:
        self.stream.write(f"{self.prefix} {line}\n" if line else "\n")

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            while True:
                newline = self._buffer.find("\n")
                if newline < 0:
                    break
                line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
                self._emit(line.rstrip("\r"))
            if self._max_line is not None:
                while len(self._buffer) >= self._max_line:
                    chunk, self._buffer = (
                        self._buffer[: self._max_line],
                        self._buffer[self._max_line :],
                    )
                    self._emit(chunk)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                line, self._buffer = self._buffer, ""
                self._emit(line)
