"""Keep API keys out of every byte agentos writes.

Keys are registered wherever they are loaded (the coordinator's pool, a worker's
environment, a provider client); every sink then passes its text through `redact`.
`StreamRedactor` does the same for a byte stream that arrives in arbitrary chunks, so a
key split across two writes or two reads is still caught. Output names keys only.
Each key is also redacted in the forms a server may echo it in (see `encodings`), and
`clip` redacts before it cuts.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse
from typing import Any

_lock = threading.Lock()
_secrets: dict[str, str] = {}
_ordered: list[tuple[str, str]] = []  # longest first, rebuilt on registration

MIN_SECRET_LENGTH = 6  # shorter strings would redact ordinary words
_PERCENT = re.compile(r"%[0-9A-F]{2}")  # .NET's UrlEncode writes %2b, Python's quote %2B


def encodings(value: str) -> set[str]:
    """The forms of a secret a server may echo: as given, upper- and lower-cased,
    JSON-escaped (`\\/`), URL-encoded (with `/` escaped or kept, `%2B` or `%2b`), hex, and
    base64 (standard and URL-safe) at each of its 3 byte offsets (the part of the encoding
    that depends on the secret alone, wherever it sits)."""
    raw = value.encode("utf-8")
    forms = {value, value.upper(), value.lower(), raw.hex(), raw.hex().upper(), value.replace("/", "\\/")}
    quoted = {
        quote(value, safe=safe)
        for quote in (urllib.parse.quote, urllib.parse.quote_plus)
        for safe in ("", "/")
    }
    forms |= quoted | {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in quoted}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        inner = encoded[start:end]
        forms |= {inner, inner.replace("+", "-").replace("/", "_")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: str, name: str) -> None:
    """Redact `value`, and its common encodings (`encodings`), as `<key:name>` from now on."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            if _secrets.get(value) == name:
                return
            for form in encodings(value):
                _secrets.setdefault(form, name)
            _secrets[value] = name
            _ordered[:] = sorted(_secrets.items(), key=lambda kv: -len(kv[0]))


def clear_secrets() -> None:
    with _lock:
        _secrets.clear()
        _ordered.clear()


def max_secret_length() -> int:
    with _lock:
        return len(_ordered[0][0]) if _ordered else 0


def redact(text: str) -> str:
    if not _ordered:
        return text
    with _lock:
        items = list(_ordered)
    for value, name in items:
        if value in text:
            text = text.replace(value, f"<key:{name}>")
    return text


def clip(text: str, limit: int) -> str:
    """`text` redacted, then cut to `limit` characters (with `…`): cut first, a key split by
    the cut would no longer match, and its first part would show."""
    clean = redact(text)
    return clean if len(clean) <= limit else clean[: max(0, limit - 1)] + "…"


def contains_secret(data: str | bytes) -> bool:
    """True when `data` holds a registered key (bytes are searched as UTF-8)."""
    with _lock:
        values = [value for value, _ in _ordered]
    if isinstance(data, bytes):
        return any(value.encode("utf-8") in data for value in values)
    return any(value in data for value in values)


def redact_data(value: Any) -> Any:
    """`redact` every string inside plain data (dicts, lists, tuples, exceptions' args)."""
    if not _ordered:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(redact_data(v) for v in value)
    if isinstance(value, BaseException):
        value.args = tuple(redact_data(a) for a in value.args)
    return value


class StreamRedactor:
    """Redact a text stream fed in chunks, whatever the chunk boundaries.

    `feed` returns the text that is safe to pass on now. It holds back a tail of up to
    (longest registered key - 1) characters of the last partial line, because that tail could be the start of a
    key whose rest arrives with the next chunk. `flush` releases the tail at EOF.
    """

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, text: str) -> str:
        buffered = self._pending + text
        hold = max_secret_length() - 1
        if hold <= 0:
            self._pending = ""
            return buffered
        clean = redact(buffered)
        # A key fully inside `clean` is already replaced; only a key that starts in the
        # last `hold` characters can still be incomplete. Keys hold no newline, so a
        # complete line is never held back (the console shows it at once).
        hold = min(hold, len(clean) - (clean.rfind("\n") + 1))
        if hold == 0:
            self._pending = ""
            return clean
        self._pending = clean[-hold:]
        return clean[:-hold]

    def flush(self) -> str:
        tail, self._pending = redact(self._pending), ""
        return tail
