"""One clear line for every way an HTTP call to a provider can fail.

Each line names the provider, the host asked and, for an HTTP error, the status (once)
and the model, with the first line of the server's own message, redacted before it is
cut. A 5xx, a refused or reset connection and a timeout are *transient*: the caller
tries again. A malformed answer (invalid JSON, absurd nesting, wrong types) is one line
too, never a traceback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from agentos.core.redaction import clip, redact
from agentos.llm.answer_guard import AnswerGuardError
from agentos.llm.errors import ProviderError

MAX_DETAIL = 200
TRANSIENT_STATUS = frozenset({408, 409})  # request timeout, conflict: as the SDKs retry them
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError)


def host_of(url: Any) -> str:
    """`api.openai.com` or `127.0.0.1:8080`: where a call went (no path, no credentials)."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "?"
    if not host:
        return "?"
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return host if port is None or port == default else f"{host}:{port}"


def first_line(text: str, limit: int = MAX_DETAIL) -> str:
    """The first non-empty line of `text`, redacted first and then cut (a key cut in two
    by the cut would not be found by redaction afterwards)."""
    lines = [line.strip() for line in redact(str(text)).splitlines() if line.strip()]
    return clip(lines[0] if lines else "", limit)


def body_message(body: Any, fallback: str = "") -> str:
    """The server's own message in an error body (`{"error": {"message": ...}}` and the like)."""
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict):
        for name in ("message", "detail", "status", "type"):
            value = inner.get(name)
            if isinstance(value, str) and value.strip():
                return first_line(value)
    if isinstance(inner, str) and inner.strip():
        return first_line(inner)
    return first_line(fallback)


def is_transient(status: int) -> bool:
    return status >= 500 or status in TRANSIENT_STATUS


def status_failure(
    provider: str,
    model: str,
    status: int,
    host: str,
    detail: str,
    key_name: str | None,
    retry_after: float | None = None,
) -> ProviderError:
    """`openai: HTTP 404 from api.openai.com (model gpt-x): The model does not exist`."""
    text = f"{provider}: HTTP {status} from {host} (model {model})" + (f": {detail}" if detail else "")
    return ProviderError(
        text,
        key_name=key_name,
        transient=is_transient(status),
        status=status,
        host=host,
        retry_after=retry_after,
    )


def connection_failure(
    provider: str, host: str, cause: BaseException | None, key_name: str | None
) -> ProviderError:
    """`openai: cannot reach 127.0.0.1:9 (connection refused)`: transient."""
    return ProviderError(
        f"{provider}: cannot reach {host} ({reason_of(cause)})", key_name=key_name, transient=True, host=host
    )


def guard_failure(provider: str, host: str, error: AnswerGuardError, key_name: str | None) -> ProviderError:
    return ProviderError(
        f"{provider}: {host}: {error}", key_name=key_name, transient=error.transient, host=host
    )


def malformed_answer(provider: str, host: str, exc: BaseException, key_name: str | None) -> ProviderError:
    """`openai: malformed answer from host: invalid JSON`; not retried."""
    if isinstance(exc, RecursionError):
        what = "nested too deeply"
    elif type(exc).__name__ == "JSONDecodeError":
        what = "invalid JSON"
    else:
        what = f"{type(exc).__name__}: {first_line(str(exc), 120)}"
    return ProviderError(f"{provider}: malformed answer from {host}: {what}", key_name=key_name, host=host)


def reason_of(cause: BaseException | None) -> str:
    """A short reason from the innermost cause: `connection refused`, `timed out`."""
    seen = 0
    while cause is not None and seen < 8:
        text = str(cause).lower()
        for needle, reason in (
            ("refused", "connection refused"),
            ("reset", "connection reset"),
            ("timed out", "timed out"),
            ("timeout", "timed out"),
            ("name or service not known", "unknown host"),
            ("nodename nor servname", "unknown host"),
            ("disconnected", "server closed the connection"),
            ("without sending", "server closed the connection"),
        ):
            if needle in text:
                return reason
        if "Timeout" in type(cause).__name__:
            return "timed out"
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return "connection error"
