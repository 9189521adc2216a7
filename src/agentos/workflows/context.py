"""What every node can use (LangGraph runtime context), and the interruptible LLM call."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from agentos.backend.postgres.item_session import ItemSession
from agentos.core import progress_note
from agentos.core.events import EventBus, EventType
from agentos.core.paths import Workspace
from agentos.core.plain_text import strip_controls
from agentos.core.printing import STDOUT, Console
from agentos.core.progress_note import ProgressNote
from agentos.core.redaction import redact
from agentos.core.stop_flag import StopFlag
from agentos.llm.base import Completion, CompletionRequest, Provider
from agentos.llm.errors import LLMError, ProviderError
from agentos.llm.retry import RetryPolicy
from agentos.llm.usage import Usage, UsageTotals
from agentos.tracker.base import Tracker
from agentos.workflows.templates import Templates

POLL_S = 0.05
DEFAULT_MAX_OUTPUT_TOKENS = 4096
DEFAULT_CALL_TIMEOUT_S = 300.0
DEADLINE_GRACE_S = 2.0  # past the deadline the transport enforces, for a server that sends nothing


class _Retry(Exception):
    """A transient failure that will be tried again after `delay` seconds."""

    def __init__(self, error: BaseException, delay: float) -> None:
        self.error = error
        self.delay = delay


class WorkflowState(TypedDict, total=False):
    key: str
    title: str
    body: str
    item_text: str
    draft: str
    feedback: list[str]
    verdict: str
    parse_error: str
    rounds: int
    seq: int
    status: str
    output: str
    filing_token: str
    filed_number: int


@dataclass
class RunContext:
    item_id: str
    workspace: Workspace
    lineage_dir: Path
    drafter: Provider
    reviewer: Provider
    templates: Templates
    events: EventBus
    stop: StopFlag
    tracker: Tracker
    max_iterations: int = 3
    labels: list[str] = field(default_factory=list)
    console: Console = STDOUT  # the item's output: the worker's pipe, or the run's console
    structured_output: bool = True  # ask the reviewer for the verdict schema natively
    usage: UsageTotals = field(default_factory=UsageTotals)  # tokens of this process's calls
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS  # per call: what a runaway answer costs at most
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S  # `provider_timeout`: the most one try may take
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # transient failures: tried again
    team: ItemSession | None = None  # the team backend's session for this item (issue 23), if set

    def safe_point(self) -> None:
        """Before each node: stop if asked, or if the item's backend session (so our hold on
        the item) is gone; either way the last completed node is checkpointed."""
        self.stop.check()
        if self.team is not None:
            self.team.check()

    def call_llm(self, role: str, request: CompletionRequest) -> Completion:
        """One provider call, tried again after a transient failure (a 5xx, a refused
        connection, a timeout) with backoff; each try is audited. A stop ends the wait at once."""
        provider = self.drafter if role == "drafter" else self.reviewer
        waited = 0.0
        for tries in itertools.count(1):
            try:
                return self._try_call(provider, role, request, tries, waited)
            except _Retry as retry:
                self.console.line(f"    {retry.error}; trying again in {retry.delay:.1f}s (retry {tries})")
                waited += retry.delay
                if self.stop.wait(retry.delay):
                    self.stop.check()
        raise AssertionError("unreachable")

    def _try_call(
        self, provider: Provider, role: str, request: CompletionRequest, tries: int, waited: float
    ) -> Completion:
        """Run one try in a daemon thread, so the node can give up on it without waiting for
        the network (a stop, or a server that trickles past the deadline): the checkpoint
        stays at the last completed node."""
        self.stop.check()
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = provider.complete(request)
            except BaseException as exc:
                box["error"] = exc

        label = f"{provider.name}:{provider.model}" + (" [OFFLINE MOCK]" if provider.name == "mock" else "")
        key = "per call" if getattr(provider, "paced", False) else provider.key_name or "-"
        again = f", try {tries}" if tries > 1 else ""
        self.console.line(f"    LLM call: {role} {label}, key {key}, round {request.round}{again}")
        if provider.key_name is not None and not getattr(provider, "paced", False):
            progress_note.report(ProgressNote(key=provider.key_name))  # a paced call says it once granted
        started = time.monotonic()
        deadline = started + self.call_timeout_s + DEADLINE_GRACE_S
        thread = threading.Thread(target=target, name=f"llm-{role}", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(POLL_S)
            if self.stop.is_set() and thread.is_alive():
                self._audit_call(provider, role, request, started, "abandoned", tries=tries)
                self.stop.check()
            if thread.is_alive() and time.monotonic() > deadline:  # the transport did not cut it
                box["error"] = ProviderError(
                    f"{provider.name}: no complete answer within {self.call_timeout_s:g}s (provider_timeout)",
                    key_name=provider.key_name,
                    transient=True,
                )
                break
        self._audit_permit_wait(provider, role, request)
        error = box.get("error")
        if error is not None:
            outcome = type(error).__name__ if isinstance(error, LLMError) else "error"
            if isinstance(error, LLMError) and error.provider is None:
                error.provider = provider.name
            delay = self.retry.delay(error, tries, waited)
            self._audit_call(
                provider, role, request, started, outcome, str(error), tries=tries, retry_in=delay
            )
            if delay is not None:
                raise _Retry(error, delay)
            raise error
        result: Completion = box["result"]
        if result.usage is not None:
            self.usage.add(f"{provider.name}:{provider.model}", result.usage)
        self._audit_call(provider, role, request, started, "ok", usage=result.usage, tries=tries)
        # An answer that echoes the key must not carry it into drafts, LLDs, issues or state,
        # nor a NUL or a terminal escape into a file someone will `cat`.
        return dataclasses.replace(result, text=strip_controls(redact(result.text)))

    def _audit_permit_wait(self, provider: Provider, role: str, request: CompletionRequest) -> None:
        """A paced provider says how long the call waited for its permit (`PacedProvider.last_wait`)."""
        wait = getattr(provider, "last_wait", None)
        if wait is None:
            return
        self.events.emit(
            EventType.PERMIT_WAIT,
            role=role,
            purpose=request.purpose,
            round=request.round,
            key_name=wait.key,
            waited_s=wait.waited_s,
            granted_epoch=round(wait.granted_at, 3),
        )

    def _audit_call(
        self,
        provider: Provider,
        role: str,
        request: CompletionRequest,
        started: float,
        outcome: str,
        error: str | None = None,
        usage: Usage | None = None,
        tries: int = 1,
        retry_in: float | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "role": role,
            "purpose": request.purpose,
            "round": request.round,
            "provider": provider.name,
            "model": provider.model,
            "key_name": provider.key_name,
            "duration_s": round(time.monotonic() - started, 4),
            "outcome": outcome,
        }
        if request.schema is not None:
            fields["structured_output"] = True
        if usage is not None:
            fields.update(usage.audit_fields())
        if error:
            fields["error"] = error
        if tries > 1:
            fields["try"] = tries
        if retry_in is not None:
            fields["retry_in_s"] = round(retry_in, 3)
        self.events.emit(EventType.LLM_CALL, **fields)
