"""Keep API keys out of every byte agentos writes.

Keys are registered when a worker receives them; `redact` then replaces them in any
text before it reaches the console, a log or an audit file. Output names keys only.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_secrets: dict[str, str] = {}

MIN_SECRET_LENGTH = 6  # shorter strings would redact ordinary words


def register_secret(value: str, name: str) -> None:
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets[value] = name


def clear_secrets() -> None:
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    if not _secrets:
        return text
    with _lock:
        items = sorted(_secrets.items(), key=lambda kv: -len(kv[0]))
    for value, name in items:
        if value in text:
            text = text.replace(value, f"<key:{name}>")
    return text
