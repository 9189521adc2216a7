"""What a worker is doing now, as a small typed note for its coordinator's live panel.

A worker reports its current node, review round, the key of its current call and its
tokens so far. Notes travel on the worker's own result pipe, ahead of its outcome, as
small JSON objects (never pickles: the coordinator never unpickles a note); the outcome
stays the pipe's last message. A note that does not parse, or holds a field of the wrong
type, is dropped: a worker can never put text on the coordinator's terminal this way.

The sender is process-wide (`install`/`report`), like the permit client: the parts that
know a field (a graph node, a provider that was just granted a key) live in lower layers
than the worker that owns the pipe. Outside a worker process `report` does nothing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentos.core.redaction import redact

NOTE_OP = "progress"
MAX_NOTE_BYTES = 1024  # a note is a few fields: anything longer is not one
MAX_FIELD = 64  # characters kept of a node or key name
MAX_TOKENS = 10**12
WAITING = "(waiting)"  # the key column while a call waits for its permit, or the item for a key
PAUSED = "paused for a key"  # the node column between a worker stopped on a 429 and the next one
_UNSAFE = re.compile(r"[^\x20-\x7e]")  # the panel shows printable ASCII only: one cell per character


def clean_text(value: str, limit: int = MAX_FIELD) -> str:
    """A name as the panel may show it: redacted whole (before any cut, so no piece of a key
    survives), then printable ASCII (no escape, no wide character), clipped."""
    return _UNSAFE.sub("?", redact(value)[:limit])


@dataclass(frozen=True)
class ProgressNote:
    """The fields a worker knows changed; None: unchanged."""

    node: str | None = None
    round: int | None = None  # the review round the item works in (1-based)
    key: str | None = None  # the NAME of the key of the current call, never its secret
    tokens: int | None = None  # tokens this worker process has used so far (input + output)
    # Set by the coordinator only (never read off the wire): a new worker process of the item
    # started, so its token count starts again from 0 on top of the earlier ones.
    new_worker: bool = False

    @classmethod
    def worker_started(cls) -> ProgressNote:
        return cls(node="starting", key="-", tokens=0, new_worker=True)

    def encode(self) -> bytes:
        fields = {k: v for k, v in self.__dict__.items() if v is not None and k != "new_worker"}
        return json.dumps({"op": NOTE_OP, **fields}, separators=(",", ":")).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> ProgressNote | None:
        """The note in `data`, or None when it is not one (garbage, a pickle, a huge message)."""
        if len(data) > MAX_NOTE_BYTES or not data.startswith(b"{"):
            return None
        try:
            value: Any = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(value, dict) or value.get("op") != NOTE_OP:
            return None
        node, round_, key, tokens = (value.get(k) for k in ("node", "round", "key", "tokens"))
        if not all(v is None or isinstance(v, str) for v in (node, key)):
            return None
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (round_, tokens)):
            return None
        return cls(
            node=clean_text(node) if node is not None else None,
            round=min(max(round_, 0), 9999) if round_ is not None else None,
            key=clean_text(key) if key is not None else None,
            tokens=min(max(tokens, 0), MAX_TOKENS) if tokens is not None else None,
        )


Sender = Callable[[ProgressNote], None]
_sender: list[Sender] = []
_lock = threading.Lock()


def install(sender: Sender | None) -> None:
    """Where this process's notes go (a worker's result pipe); None: nowhere."""
    with _lock:
        _sender.clear()
        if sender is not None:
            _sender.append(sender)


def report(note: ProgressNote) -> None:
    """Send `note` if this process has a coordinator listening; never raises."""
    with _lock:
        sender = _sender[0] if _sender else None
    if sender is None:
        return
    try:
        sender(note)
    except Exception:  # the panel is a view: a lost note never costs the item anything
        return
