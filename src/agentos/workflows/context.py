"""What every node can use (LangGraph runtime context), and the interruptible LLM call."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from agentos.errors import Interrupted
from agentos.events import EventBus, EventType
from agentos.llm.base import Completion, CompletionRequest, Provider
from agentos.llm.errors import LLMError
from agentos.llm.usage import Usage, UsageTotals
from agentos.paths import Workspace
from agentos.redaction import redact
from agentos.tracker.base import Tracker
from agentos.workflows.templates import Templates

POLL_S = 0.05
DEFAULT_MAX_OUTPUT_TOKENS = 4096


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

    def check(self) -> None:
        if self._event.is_set():
            raise Interrupted(f"interrupted ({self.reason}); resumable from the last checkpoint")


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
    say: Callable[[str], None] = print
    structured_output: bool = True  # ask the reviewer for the verdict schema natively
    usage: UsageTotals = field(default_factory=UsageTotals)  # tokens of this process's calls
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS  # per call: what a runaway answer costs at most

    def call_llm(self, role: str, request: CompletionRequest) -> Completion:
        """Run one provider call; abandon it at once if a stop is requested.

        The call runs in a daemon thread so the node can give up on it without waiting
        for the network: the checkpoint stays at the last completed node.
        """
        provider = self.drafter if role == "drafter" else self.reviewer
        self.stop.check()
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = provider.complete(request)
            except BaseException as exc:
                box["error"] = exc

        label = f"{provider.name}:{provider.model}" + (" [OFFLINE MOCK]" if provider.name == "mock" else "")
        key = "per call" if getattr(provider, "paced", False) else provider.key_name or "-"
        self.say(f"    LLM call: {role} {label}, key {key}, round {request.round}")
        started = time.monotonic()
        thread = threading.Thread(target=target, name=f"llm-{role}", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(POLL_S)
            if self.stop.is_set() and thread.is_alive():
                self._audit_call(provider, role, request, started, "abandoned")
                self.stop.check()
        error = box.get("error")
        if error is not None:
            outcome = type(error).__name__ if isinstance(error, LLMError) else "error"
            if isinstance(error, LLMError) and error.provider is None:
                error.provider = provider.name
            self._audit_call(provider, role, request, started, outcome, str(error))
            raise error
        result: Completion = box["result"]
        if result.usage is not None:
            self.usage.add(f"{provider.name}:{provider.model}", result.usage)
        self._audit_call(provider, role, request, started, "ok", usage=result.usage)
        # An answer that echoes the key must not carry it into drafts, LLDs, issues or state.
        return dataclasses.replace(result, text=redact(result.text))

    def _audit_call(
        self,
        provider: Provider,
        role: str,
        request: CompletionRequest,
        started: float,
        outcome: str,
        error: str | None = None,
        usage: Usage | None = None,
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
        self.events.emit(EventType.LLM_CALL, **fields)
