"""A provider whose every call first waits for a permit from the coordinator (paced batch runs).

The permit names the key to use for this one call: whichever key of the provider has
budget now, not necessarily the item's own. After the call, its answer's rate-limit
numbers (or its 429) go back to the coordinator's budgets. A 429 is still raised as
`RateLimited`, so the item resumes from its checkpoint exactly as before.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from agentos.core import environment, progress_note
from agentos.core.errors import Interrupted
from agentos.core.printing import STDOUT, Console
from agentos.core.progress_note import ProgressNote
from agentos.keys.permit_client import PermitClient, PermitUnavailable, shared_client
from agentos.keys.sources import Credential
from agentos.llm.base import Completion, CompletionRequest, Provider
from agentos.llm.errors import AuthError, RateLimited
from agentos.llm.rate_limits import CallObserver, Outcome
from agentos.llm.registry import ProviderSpec, create_provider

SHOW_WAIT_S = 0.05


_observers: list[CallObserver] = []


@dataclass(frozen=True)
class PermitWait:
    """How long the last call waited for its permit: the workflow audits it (`permit_wait`),
    so a run's timeline shows time spent waiting for budget apart from time in the call."""

    key: str
    waited_s: float
    granted_at: float  # wall-clock seconds


def _observer() -> CallObserver:
    """This worker's one observer: its calls are sequential, and every client built with it
    (drafter, reviewer, one per key) shares one HTTP client and so one TLS setup."""
    if not _observers:
        _observers.append(CallObserver())
    return _observers[0]


def prewarm() -> None:
    """In the fork server, for a paced run: build the shared HTTP client of each preloaded
    SDK now, so every worker inherits it instead of paying for a TLS setup (~50 ms of CPU)
    before its first call. It has no connection yet; each worker opens its own."""
    if (environment.RATE_STRATEGY.get_stripped() or "paced").lower() != "paced":
        return
    observer = _observer()
    for sdk in ("openai", "anthropic"):
        module: Any = sys.modules.get(sdk)
        if module is not None:
            observer.http_client(sdk, module.DefaultHttpxClient)


def estimate_tokens(request: CompletionRequest) -> int:
    """What a provider counts against a token budget up front: ~4 characters per prompt
    token, plus the whole output allowance (OpenAI reserves `max_tokens`)."""
    return (len(request.prompt) + len(request.system)) // 4 + request.max_tokens


class PacedProvider:
    paced = True  # the console names the key per call, once granted

    def __init__(
        self,
        spec: ProviderSpec,
        client: PermitClient,
        fallback: Credential | None,
        console: Console = STDOUT,
        timeout_s: float | None = None,
    ) -> None:
        self.name = spec.provider
        self.model = spec.model
        self.key_name: str | None = fallback.name if fallback else None  # the key of the last call
        self._spec = spec
        self._client = client
        self._fallback = fallback
        self._console = console
        self._observer = _observer()
        self._clients: dict[str, Provider] = {}
        self._unpaced = False
        self._timeout_s = timeout_s  # per HTTP call (`provider_timeout`); None: the default
        self.last_wait: PermitWait | None = None  # the last call's wait, when it waited at all

    def _for(self, key: str, secret: str) -> Provider:
        client = self._clients.get(key)
        if client is None:
            client = create_provider(
                self._spec, secret=secret, key_name=key, timeout_s=self._timeout_s, observer=self._observer
            )
            self._clients[key] = client
        return client

    def complete(self, request: CompletionRequest) -> Completion:
        self.last_wait = None
        if self._unpaced:
            return self._unpaced_call(request)
        progress_note.report(
            ProgressNote(key=progress_note.WAITING)
        )  # the live panel: until a key is granted
        try:
            permit = self._client.acquire(self.name, estimate_tokens(request), request.purpose)
        except PermitUnavailable as exc:
            if exc.closed:
                raise Interrupted(f"interrupted ({exc}); resumable from the last checkpoint") from None
            self._unpaced = True
            self._console.line(f"    WARNING: {exc}; calls go out unpaced with the item's own key")
            return self._unpaced_call(request)
        provider, observer = self._for(permit.key, permit.secret), self._observer
        self.key_name = permit.key
        if permit.waited >= SHOW_WAIT_S:
            self.last_wait = PermitWait(permit.key, round(permit.waited, 3), time.time())
        progress_note.report(ProgressNote(key=permit.key))  # the live panel: this call's key, by name
        wait = f", after waiting {permit.waited:.1f}s for budget" if permit.waited >= SHOW_WAIT_S else ""
        self._console.line(f"    permit: key {permit.key}{wait}")
        observer.reset()
        try:
            result = provider.complete(request)
        except RateLimited as exc:
            self._client.done(
                permit.grant, Outcome.RATE_LIMITED, observer.info(), observer.sent_at, exc.retry_after
            )
            raise
        except AuthError:  # at once, not when the item's outcome comes back: no call on it after this
            self._client.done(permit.grant, Outcome.REJECTED, observer.info(), observer.sent_at, None)
            raise
        except BaseException:
            self._client.done(permit.grant, Outcome.ERROR, observer.info(), observer.sent_at, None)
            raise
        self._client.done(permit.grant, Outcome.OK, observer.info(), observer.sent_at, None)
        return result

    def _unpaced_call(self, request: CompletionRequest) -> Completion:
        if self._fallback is None:
            raise Interrupted("no permit channel and no key of our own; resumable from the last checkpoint")
        provider = self._for(self._fallback.name, self._fallback.secret)
        self.key_name = self._fallback.name
        return provider.complete(request)


def paced_provider(
    spec: ProviderSpec,
    fallback: Credential | None,
    console: Console,
    timeout_s: float | None = None,
) -> PacedProvider | None:
    """A paced client when this worker runs under a coordinator that paces calls, else None.
    The offline mock has no rate limits and is never paced."""
    if spec.is_mock:
        return None
    client = shared_client()
    return PacedProvider(spec, client, fallback, console, timeout_s) if client is not None else None
