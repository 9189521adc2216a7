"""Bound what one provider call may take: its size and its total time.

An SDK's `timeout` bounds each wait for bytes, and `max_tokens` bounds what we ask for,
but neither bounds what a server sends: a body trickled one byte every few seconds
never times out, and a 20 MB answer is read whole. `GuardedTransport` wraps the SDK's
HTTP transport and checks every chunk of an answer against a size cap and a deadline
taken from the request's own read timeout (the `provider_timeout` setting).
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # far above any design document; an LLD is ~20 KB
DEFAULT_DEADLINE_S = 300.0  # when the request carries no read timeout


class AnswerGuardError(Exception):
    """Raised inside the SDK's read; the provider adapter maps it to a ProviderError."""

    transient = False


class AnswerTooLarge(AnswerGuardError):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"answer larger than {limit // (1024 * 1024)} MiB, the most agentos accepts from a provider"
        )


class CallDeadline(AnswerGuardError):
    transient = True  # a slow server may answer in time on the next try

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"no complete answer within {seconds:g}s (provider_timeout)")


def find_guard_error(exc: BaseException | None) -> AnswerGuardError | None:
    """The guard's error behind an SDK's wrapper exception (its cause or context), if any."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, AnswerGuardError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def deadline_of(request: Any) -> float:
    """The request's read timeout, in seconds: the total a call may take."""
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return float(read) if isinstance(read, int | float) and read > 0 else DEFAULT_DEADLINE_S


def _guard(
    inner: Any, limit: int, deadline: float, seconds: float, clock: Callable[[], float]
) -> Iterator[bytes]:
    size = 0
    for chunk in inner:
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        if clock() > deadline:
            raise CallDeadline(seconds)
        yield chunk


@functools.cache
def _classes(lib: ModuleType) -> tuple[type[Any], type[Any]]:
    """The guarded transport and stream for one HTTP library: `httpx`, or the `httpx2` fork
    that newer OpenAI and Anthropic SDKs build on (an answer's stream must be the library's own)."""

    class GuardedStream(lib.SyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(
            self, inner: Any, limit: int, deadline: float, seconds: float, clock: Callable[[], float]
        ):
            self._inner = inner
            self._args = (limit, deadline, seconds, clock)

        def __iter__(self) -> Iterator[bytes]:
            return _guard(self._inner, *self._args)

        def close(self) -> None:
            close = getattr(self._inner, "close", None)
            if callable(close):
                close()

    class GuardedTransport(lib.HTTPTransport):  # type: ignore[name-defined,misc]
        """Answers cut at `limit` bytes and at the call's deadline."""

        def __init__(
            self, limit: int = MAX_ANSWER_BYTES, clock: Callable[[], float] = time.monotonic, **kwargs: Any
        ):
            super().__init__(**kwargs)
            self.limit = limit
            self.clock = clock

        def handle_request(self, request: Any) -> Any:
            seconds = deadline_of(request)
            deadline = self.clock() + seconds
            response = super().handle_request(request)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > self.limit:
                response.close()
                raise AnswerTooLarge(self.limit)
            response.stream = GuardedStream(response.stream, self.limit, deadline, seconds, self.clock)
            return response

    return GuardedTransport, GuardedStream


def http_library(client_class: Callable[..., Any]) -> ModuleType:
    """`httpx2` or `httpx`: the library an SDK's HTTP client class is built on."""
    for base in getattr(client_class, "__mro__", ()):
        root = base.__module__.split(".")[0]
        if root in ("httpx", "httpx2"):
            return importlib.import_module(root)
    return importlib.import_module("httpx")


def guarded_transport(lib: ModuleType, limit: int = MAX_ANSWER_BYTES, **kwargs: Any) -> Any:
    return _classes(lib)[0](limit=limit, **kwargs)


def guarded_client(client_class: Callable[..., Any], **kwargs: Any) -> Any:
    """An SDK's HTTP client class (e.g. `openai.DefaultHttpxClient`) on a guarded transport."""
    return client_class(transport=guarded_transport(http_library(client_class)), **kwargs)
