"""Keys are redacted at every sink, also when they arrive split across writes or reads."""

import base64
import io
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentos.core import safe_json
from agentos.core.events import Event, EventType
from agentos.core.redaction import StreamRedactor, clear_secrets, clip, redact, redact_data, register_secret
from agentos.engine.console import ConsoleRouter
from agentos.engine.coordinator import ParallelCoordinator
from agentos.llm.errors import AuthError, ProviderError
from agentos.workflows.checkpoint import CheckpointStore
from agentos.workflows.checkpoint_identity import Owner, create_marked
from agentos.workflows.lineage import write_lineage
from tests.test_worker_launcher import hostile_runner, jobs

SECRET = "sk-proj-SPLITME0123456789abcdef"


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    register_secret(SECRET, "team-a")
    yield
    clear_secrets()


def feed_all(chunks: list[str]) -> str:
    redactor = StreamRedactor()
    return "".join(redactor.feed(c) for c in chunks) + redactor.flush()


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
def test_a_key_split_at_any_point_is_caught(cut: int) -> None:
    out = feed_all([f"before {SECRET[:cut]}", f"{SECRET[cut:]} after\n"])
    assert SECRET not in out and out == "before <key:team-a> after\n"


def test_a_key_fed_one_character_at_a_time_is_caught() -> None:
    text = f"a {SECRET} b {SECRET}"
    assert feed_all(list(text)) == "a <key:team-a> b <key:team-a>"


def test_complete_lines_are_never_held_back() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("a whole line\n") == "a whole line\n"
    assert redactor.feed("part") == ""  # could be the start of a key: held until more comes
    assert redactor.feed("ial line\n") == "partial line\n"


def test_nothing_registered_means_nothing_held() -> None:
    clear_secrets()
    assert StreamRedactor().feed("sk-") == "sk-"


def test_worker_output_split_across_writes_and_reads_is_redacted(tmp_path: Path) -> None:
    """Issue 13: a key printed in two writes, or across a 64 KiB read, reached the item log."""
    sink = io.StringIO()
    coordinator = ParallelCoordinator(1)
    runner = hostile_runner(tmp_path, coordinator, ConsoleRouter(sink), {"LEAKED": SECRET})
    stats, _ = coordinator.execute_parallel(jobs(tmp_path, "splitkey"), runner, lambda j: j.item_id)
    assert stats.success_count == 1
    log = (tmp_path / "ISSUE-splitkey.log").read_text()
    console = sink.getvalue()
    for text in (log, console):
        assert SECRET not in text
        assert SECRET[:12] not in text.replace("<key:team-a>", "")
    assert "the key is <key:team-a> and again <key:team-a>\n" in log
    assert log.endswith("unterminated tail <key:team-a>")
    assert log.count("<key:team-a>") == 4
    assert "[ISSUE-splitkey] unterminated tail <key:team-a>" in console


def test_llm_errors_are_redacted_at_the_source() -> None:
    error = AuthError(f"openai: Incorrect API key provided: {SECRET}", key_name="team-a")
    assert SECRET not in str(error) and SECRET not in repr(error)
    assert "<key:team-a>" in str(error)
    assert SECRET not in repr(ProviderError(f"HTTP 500 {SECRET}"))


def test_redact_data_walks_containers_and_exceptions() -> None:
    exc = ValueError(f"x {SECRET}")
    data = {"a": [SECRET, (1, f"{SECRET}!")], SECRET: exc}
    clean = redact_data(data)
    assert SECRET not in repr(clean)


def test_audit_summary_and_lineage_sinks(tmp_path: Path) -> None:
    line = Event(EventType.LLM_CALL, "LLD-1", {"error": SECRET, "retry_after": float("inf")}).to_json()
    assert SECRET not in line and "Infinity" not in line
    assert json.loads(line)["retry_after"] is None
    dumped = safe_json.dumps({"x": SECRET, "n": float("nan"), "quoted": f'"{SECRET}"'})
    assert SECRET not in dumped and "NaN" not in dumped
    path = write_lineage(tmp_path / "lineage", 1, "verdict", f"echo {SECRET}")
    assert SECRET not in path.read_text()


def test_checkpoints_never_store_a_key(tmp_path: Path) -> None:
    create_marked(tmp_path / "cp.db", Owner("ws", "lld_workflow", "1", "0" * 64))
    store = CheckpointStore(tmp_path / "cp.db")
    saver = store.open()
    serde = saver.serde
    for value in ({"draft": f"text {SECRET}"}, ProviderError(f"e {SECRET}"), RuntimeError(SECRET)):
        type_, data = serde.dumps_typed(value)
        assert SECRET.encode() not in data
        assert SECRET not in repr(serde.loads_typed((type_, data)))
    store.close()
    sqlite3.connect(tmp_path / "cp.db").close()


def test_redact_is_plain_replacement() -> None:
    assert redact(f"{SECRET}{SECRET}") == "<key:team-a><key:team-a>"


@settings(max_examples=200, deadline=timedelta(milliseconds=500))
@given(
    st.lists(st.sampled_from([SECRET, SECRET[:5], "x", "\n", "sk-", " "]), max_size=30).map("".join),
    st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_fuzz_any_chunking_equals_redacting_the_whole(text: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert feed_all(chunks) == redact(text)


def test_clip_redacts_before_it_cuts() -> None:
    """Issue 20 finding 4: padding then a token, cut at 200: neither part of the token shows."""
    token = "ghp_SECRETTOKENabcdefghijklmnopqrstuvwx"
    register_secret(token, "GH_TOKEN")
    try:
        for pad in (150, 161, 170, 195):
            text = "x" * pad + token + " tail"
            clipped = clip(text, 200)
            assert "ghp_" not in clipped and "SECRET" not in clipped, clipped
            assert len(clipped) <= 200
    finally:
        clear_secrets()


@pytest.mark.parametrize(
    "shown",
    [
        lambda k: k.upper(),
        lambda k: k.lower(),
        lambda k: urllib.parse.quote(k, safe=""),
        lambda k: urllib.parse.quote(k),  # `/` kept
        lambda k: re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), urllib.parse.quote(k, safe="")),
        lambda k: k.replace("/", "\\/"),  # JSON with escaped slashes
        lambda k: k.encode().hex(),
        lambda k: base64.b64encode(k.encode()).decode(),
        lambda k: base64.b64encode(b"x" + k.encode()).decode(),
        lambda k: base64.b64encode(b"xy" + k.encode()).decode(),
        lambda k: base64.urlsafe_b64encode(b"xy" + k.encode()).decode(),
    ],
)
def test_common_encodings_of_a_key_are_redacted(shown: Any) -> None:
    key = "sk-Live+Key/with=odd_chars-0123"
    register_secret(key, "openai-api-key")
    try:
        text = f"Authorization echoed: {shown(key)} (end)"
        assert "<key:openai-api-key>" in redact(text), redact(text)
        assert shown(key) not in redact(text)
    finally:
        clear_secrets()


LETTERS_KEY = "sk_LETTERSONLYkeyABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the verdict parser keeps letters and _


def test_an_unknown_verdict_is_redacted_before_it_is_cut() -> None:
    """Issue 20 finding 4: a reviewer answering `VERDICT: <a key>` at the 40-character cut."""
    from agentos.workflows.verdict import parse_verdict

    register_secret(LETTERS_KEY, "letters")
    for pad in (10, 20, 30, 38):
        result = parse_verdict(f"VERDICT: {'A' * pad} {LETTERS_KEY}\n")
        shown = str(result)
        for part in (LETTERS_KEY.upper()[:12], LETTERS_KEY.upper()[-12:], "SK_LETT"):
            assert part not in shown, shown


def test_a_model_name_from_a_worker_is_redacted_before_it_is_cut() -> None:
    from agentos.llm.usage import UsageTotals

    for pad in (170, 180, 190, 199):
        totals = UsageTotals()
        totals.merge({"m" * pad + SECRET: {"input_tokens": 1, "output_tokens": 1, "calls": 1}})
        (model,) = totals.by_model
        assert "sk-proj" not in model and "SPLITME" not in model and len(model) <= 200, model
