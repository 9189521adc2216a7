"""An item's summary record: the `summary.json` shape, and reading it back into the same type."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from agentos.core.outcome import ItemOutcome, ItemStatus
from agentos.core.redaction import clear_secrets, register_secret
from agentos.engine.result import WorkflowResult
from agentos.runs.item_record import ItemRecord, ItemUsage


def test_an_approved_item_has_the_summary_json_shape(tmp_path: Path) -> None:
    outcome = ItemOutcome(ItemStatus.APPROVED, rounds=2, output="/w/docs/lld/42.md", filed_number=7)
    result = WorkflowResult(
        "LLD-42", True, None, 1.23456, ItemStatus.APPROVED, outcome, 1e9, 1e9 + 1.5, 2, outcome
    )
    usage = ItemUsage(1200, 300, estimated=True, priced=True, cost=0.5)
    record = ItemRecord.of(result, tmp_path / "LLD-42.log", str(tmp_path / "gone.db"), usage, 4321)
    started, ended = record.started, record.ended
    assert started is not None and ended is not None
    assert (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds() == 1.5
    assert list(record.to_json().items()) == [
        ("item", "LLD-42"),
        ("status", "approved"),
        ("rounds", 2),
        ("duration_s", 1.235),
        ("error", None),
        ("output", "/w/docs/lld/42.md"),
        ("log", str(tmp_path / "LLD-42.log")),
        ("resumed", False),
        ("filed_issue", 7),
        ("input_tokens", 1200),
        ("output_tokens", 300),
        ("tokens_estimated", True),
        ("cost", 0.5),
        ("started", started),
        ("ended", ended),
        ("attempts", 2),
        ("pid", 4321),
    ]  # no "checkpoint": only a failed or interrupted item keeps one
    assert ItemRecord.from_json(record.to_json()) == record


def test_a_failed_item_names_its_checkpoint_only_if_it_exists(tmp_path: Path) -> None:
    db = tmp_path / "lld_workflow_3.db"
    db.write_bytes(b"")
    result = WorkflowResult("LLD-3", False, "boom", 0.5, ItemStatus.FAILED)
    assert ItemRecord.of(result, None, str(db)).to_json()["checkpoint"] == str(db)
    db.unlink()
    data = ItemRecord.of(result, None, str(db)).to_json()
    assert "checkpoint" in data and data["checkpoint"] is None
    assert "input_tokens" not in data  # a run without accounting: no token fields


def test_an_error_is_redacted_when_recorded() -> None:
    register_secret("sk-record-test-0123456789abcdef", "TEST_KEY")
    result = WorkflowResult("LLD-4", False, "bad key sk-record-test-0123456789abcdef", 0.1, ItemStatus.FAILED)
    try:
        error = ItemRecord.of(result, None, "/nonexistent.db").error
    finally:
        clear_secrets()
    assert error is not None and "sk-record-test" not in error and "TEST_KEY" in error


def test_a_record_survives_the_round_trip_through_json(tmp_path: Path) -> None:
    outcome = ItemOutcome(ItemStatus.INTERRUPTED, rounds=1, resumed=True)
    result = WorkflowResult(
        "ISSUE-x", False, "stopped", 2.0, ItemStatus.INTERRUPTED, outcome, outcome=outcome
    )
    db = tmp_path / "issue.db"
    db.write_bytes(b"")
    record = ItemRecord.of(result, tmp_path / "x.log", str(db), ItemUsage(5, 6, priced=True, cost=None))
    back = ItemRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert back == record


def test_read_back_values_of_the_wrong_type_are_unknown_not_errors() -> None:
    record = ItemRecord.from_json(
        {"item": "", "status": 3, "rounds": -1, "duration_s": "x", "resumed": "yes", "input_tokens": True}
    )
    assert (record.item, record.status, record.rounds, record.duration_s, record.resumed) == (
        "?",
        "?",
        0,
        None,
        False,
    )
    assert record.usage == ItemUsage(None, None)  # a token field was there, but no count: "?"
    assert ItemRecord.from_json({"item": "A", "status": "approved"}).usage is None
