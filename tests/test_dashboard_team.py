"""The dashboard with a team backend: another machine's runs from the backend's run records,
live through LISTEN/NOTIFY, and their text shown as text (a real Postgres)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from agentos.backend.postgres.run_records import RunRecords
from agentos.dashboard.app import create_app
from agentos.dashboard.records import RecordNotFound
from agentos.dashboard.team_records import TeamRunRecords

pytestmark = pytest.mark.timeout(120)
OTHER = "20261204-101010-4242@laptop-b"
HOSTILE = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"


def other_machines_run(url: str) -> RunRecords:
    """What a coordinator on laptop-b records: its run, an item started, then approved."""
    records = RunRecords(url)
    records.host = "laptop-b"
    records.start(OTHER, "github.com/acme/widgets", "lld", "lld-workflow --all", 2)
    records.item_event(OTHER, "LLD-1", "running", 0, None, None)
    records.item_event(OTHER, "LLD-2", "running", 0, None, None)
    records.item_event(OTHER, "LLD-1", "approved", 2, "docs/lld/active/LLD-001.md", None)
    return records


def test_another_machines_run_is_listed_with_its_items_from_the_backend(postgres_url: str) -> None:
    writer = other_machines_run(postgres_url)
    team = TeamRunRecords(postgres_url)
    try:
        team.check()
        (row,) = [r for r in team.runs() if r.name == OTHER]
        assert row.host.endswith("@laptop-b") and row.workspace == "github.com/acme/widgets"
        assert row.state == "running"  # its coordinator's session holds the run's lock
        detail = team.run(OTHER)
        items = {i.item: i for i in detail.items}
        assert items["LLD-1"].status == "approved" and items["LLD-1"].rounds == 2
        assert items["LLD-1"].started is not None and items["LLD-1"].ended is not None
        assert items["LLD-2"].status == "running" and items["LLD-2"].ended is None
        assert any("laptop-b" in note for note in detail.notes)
        item = team.item(OTHER, "LLD-1")
        assert item.log_problem is not None and "laptop-b" in item.log_problem
        assert item.lineage_problem is not None and "agentos pull LLD-1" in item.lineage_problem
        with pytest.raises(RecordNotFound):
            team.run("20261204-101010-1@nowhere")
        with pytest.raises(RecordNotFound):
            team.run("../../etc/passwd")
        writer.close()  # the machine's coordinator is gone: its run is no longer going
        assert team.run(OTHER).run.state == "stopped"
        assert {i.item: i.status for i in team.run(OTHER).items}["LLD-2"] == "stopped"
    finally:
        team.close()
        writer.close()


def test_a_record_on_any_machine_moves_the_stamp_through_notify(postgres_url: str) -> None:
    writer = other_machines_run(postgres_url)
    team = TeamRunRecords(postgres_url)
    try:
        deadline = time.monotonic() + 10
        while not team._listening and time.monotonic() < deadline:
            time.sleep(0.02)
        assert team._listening
        before = team.stamp(OTHER)
        writer.item_event(OTHER, "LLD-2", "approved", 1, None, None)
        while team.stamp(OTHER) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert team.stamp(OTHER) != before
    finally:
        team.close()
        writer.close()


def test_hostile_text_from_the_backend_is_shown_as_text(postgres_url: str, tmp_path: Path) -> None:
    writer = other_machines_run(postgres_url)
    writer.item_event(OTHER, HOSTILE, "failed", 0, None, HOSTILE)
    team = TeamRunRecords(postgres_url)
    try:
        client = TestClient(create_app(team, "t0ken-for-tests_0123456789abcdefABCDEF", cookie="c"))
        page = client.get(f"/run/{OTHER}?token=t0ken-for-tests_0123456789abcdefABCDEF")
        assert page.status_code == 200
        assert "laptop-b" in page.text
        assert "<script>window.pwned" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;window.pwned" in page.text
        listing = client.get("/")
        assert listing.status_code == 200 and OTHER in listing.text
    finally:
        team.close()
        writer.close()


def test_a_hostile_run_row_in_the_backend_is_listed_as_text_and_opens_nothing(postgres_url: str) -> None:
    """Any machine can write the team's run rows: a run id and a host holding markup are
    shown escaped, and an id that is no run id of ours opens no page."""
    writer = RunRecords(postgres_url)
    writer.host = "<img src=x onerror=alert(2)>"
    writer.start("<script>window.pwned=1</script>", HOSTILE, "lld", "x", 1)
    team = TeamRunRecords(postgres_url)
    try:
        client = TestClient(create_app(team, "t0ken-for-tests_0123456789abcdefABCDEF", cookie="c"))
        listing = client.get("/?token=t0ken-for-tests_0123456789abcdefABCDEF")
        assert listing.status_code == 200
        assert "<script>window.pwned" not in listing.text and "<img src=x" not in listing.text
        assert "&lt;script&gt;window.pwned" in listing.text
        assert client.get("/run/%3Cscript%3Ewindow.pwned=1%3C%2Fscript%3E").status_code == 404
    finally:
        team.close()
        writer.close()
