"""A paced call that waited for its permit is audited as a `permit_wait` event (issue 24):
the dashboard's timeline shows the wait apart from the call."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from agentos.core.events import EventBus, EventType

T0 = 1_800_000_000.0


def test_a_paced_call_that_waited_audits_a_permit_wait(tmp_path: Path) -> None:
    from agentos.core.stop_flag import StopFlag
    from agentos.keys.paced_provider import PermitWait
    from agentos.llm.base import Completion, CompletionRequest
    from agentos.workflows.context import RunContext

    class Paced:
        name, model, key_name, paced = "openai", "m", "k1", True
        last_wait: PermitWait | None = None

        def complete(self, request: CompletionRequest) -> Completion:
            self.last_wait = PermitWait("k2", 1.5, T0)
            return Completion("answer", "openai", "m")

    seen: list[tuple[EventType, dict[str, object]]] = []
    bus = EventBus("LLD-1")
    bus.subscribe(lambda e: seen.append((e.type, e.fields)))
    quiet = SimpleNamespace(line=lambda text: None)
    provider = Paced()
    ctx = RunContext(
        "LLD-1",
        None,
        tmp_path,
        provider,
        provider,
        None,
        bus,
        StopFlag(),
        None,
        console=quiet,  # type: ignore[arg-type]
    )
    ctx.call_llm("drafter", CompletionRequest(prompt="p", round=2))
    waits = [f for t, f in seen if t is EventType.PERMIT_WAIT]
    assert waits == [
        {
            "role": "drafter",
            "purpose": "draft",
            "round": 2,
            "key_name": "k2",
            "waited_s": 1.5,
            "granted_epoch": T0,
        }
    ]
    assert [t for t, _ in seen] == [EventType.PERMIT_WAIT, EventType.LLM_CALL]


def test_an_unpaced_call_audits_no_permit_wait(tmp_path: Path) -> None:
    from agentos.core.stop_flag import StopFlag
    from agentos.llm.base import CompletionRequest
    from agentos.llm.mock import MockProvider
    from agentos.workflows.context import RunContext

    seen: list[EventType] = []
    bus = EventBus("LLD-1")
    bus.subscribe(lambda e: seen.append(e.type))
    provider = MockProvider(key_name="mock-key-1")
    quiet = SimpleNamespace(line=lambda text: None)
    ctx = RunContext("LLD-1", None, tmp_path, provider, provider, None, bus, StopFlag(), None, console=quiet)  # type: ignore[arg-type]
    ctx.call_llm("drafter", CompletionRequest(prompt="p", context={"title": "t"}))
    assert seen == [EventType.LLM_CALL]
