"""The key ledger shared by every run of a home: its logic on an injected clock, real
concurrent writers, and hostile files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
from pathlib import Path

import pytest

from agentos.backend.key_ledger import REJECTED_FOR_S, KeyModel, KeyRef, fingerprint
from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.core.errors import KeyLedgerRefused

SECRET = "sk-ledger-test-0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ledger(path: Path, clock: Clock, run: str) -> SqliteKeyLedger:
    store = SqliteKeyLedger(path, run=run, clock=clock)
    store.open()
    return store


def test_a_key_is_its_fingerprint_never_its_secret(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.db", Clock()
    store = ledger(path, clock, "a")
    one, same = (
        KeyRef(fingerprint(SECRET), "openai", "team-a"),
        KeyRef(fingerprint(SECRET), "openai", "alias"),
    )
    store.mark(one, cooldown_until=clock.now + 30)
    store.mark(same, quota_until=clock.now + 60)
    store.close()
    assert fingerprint(SECRET) != fingerprint(SECRET + "x") and len(fingerprint(SECRET)) == 32
    rows = sqlite3.connect(path).execute("SELECT fp, name, cooldown_until, quota_until FROM keys").fetchall()
    assert rows == [(one.fp, "alias", clock.now + 30, clock.now + 60)]  # one key, two names
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in raw


def test_marks_only_grow_and_a_rejection_is_honoured_for_a_while(tmp_path: Path) -> None:
    clock = Clock()
    store = ledger(tmp_path / "keys.db", clock, "a")
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    store.mark(key, cooldown_until=clock.now + 30)
    store.mark(key, cooldown_until=clock.now + 5)  # an earlier end never shortens it
    store.mark(key, rejected="401 bad key")
    marks = store.marks([key.fp])[key.fp]
    assert marks.cooldown_until == clock.now + 30 and marks.rejected == "401 bad key"
    clock.now += REJECTED_FOR_S + 1
    assert store.marks([key.fp])[key.fp].rejected is None
    assert store.marks(["unknown"]) == {}


def test_the_latest_reading_of_a_limit_wins_and_strictness_sticks(tmp_path: Path) -> None:
    """A limit read from headers is the provider's word, and a learned one grows back: the
    latest wins. Once a run was surprised by a 429, every run paces strictly."""
    store = ledger(tmp_path / "keys.db", Clock(), "a")
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    assert store.model(key.fp) is None
    store.learn(key, KeyModel(6, 10.0, "headers"))
    store.learn(key, KeyModel(4, 8.0, "headers", strict=True))
    store.learn(key, KeyModel(9, 12.0, "headers"))
    assert store.model(key.fp) == KeyModel(9, 12.0, "headers", strict=True)


def test_another_runs_slots_are_seen_until_they_expire(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.db", Clock()
    first, second = ledger(path, clock, "first"), ledger(path, clock, "second")
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    first.hold(key, 1, clock.now)
    first.hold(key, 2, clock.now)
    assert [s.expires_at for s in second.others(key.fp, clock.now, 10.0)] == [None, None]
    assert first.others(key.fp, clock.now, 10.0) == []  # a run's own calls are its own business
    first.settle(key.fp, 1, clock.now + 10, "ok")
    clock.now += 5
    assert sorted(str(s.expires_at) for s in second.others(key.fp, clock.now, 10.0)) == [
        "1800000010.0",
        "None",
    ]
    clock.now += 6
    assert [s.expires_at for s in second.others(key.fp, clock.now, 10.0)] == [None]


def test_a_killed_runs_calls_in_flight_end_when_the_provider_lets_them_go(tmp_path: Path) -> None:
    """kill -9: the run's row stays, its pid is gone; its slot ends at granted_at + window."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    path, clock = tmp_path / "keys.db", Clock()
    killed = SqliteKeyLedger(path, run="killed", clock=clock, pid=dead.pid)
    killed.open()
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    killed.hold(key, 1, clock.now)
    survivor = ledger(path, clock, "survivor")
    (slot,) = survivor.others(key.fp, clock.now + 1, 10.0)
    assert slot.expires_at == clock.now + 10.0
    assert survivor.others(key.fp, clock.now + 10.5, 10.0) == []  # nothing left to block anyone


def _writer(path: str, run: str, n: int) -> None:
    store = SqliteKeyLedger(Path(path), run=run)
    store.open()
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    for call in range(n):
        store.hold(key, call, 1.0)
        store.settle(key.fp, call, 2.0, "ok")
        store.mark(key, cooldown_until=float(call))
    store.close()


@pytest.mark.timeout(60)
def test_three_processes_write_at_once_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), f"run-{i}", 60)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(50)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    count = sqlite3.connect(path).execute("SELECT count(*) FROM calls").fetchone()[0]
    assert count == 180


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"this is not a database at all, just text" * 200, "corrupt or not a database"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "corrupt or not a database"),
    ],
)
def test_a_corrupt_ledger_is_refused_and_left_untouched(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "keys.db"
    path.write_bytes(content)
    with pytest.raises(KeyLedgerRefused, match=why) as refused:
        SqliteKeyLedger(path).open()
    assert "move it away" in str(refused.value)
    assert path.read_bytes() == content


def test_a_foreign_database_a_symlink_and_a_folder_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "keys.db"
    sqlite3.connect(foreign).execute("CREATE TABLE accounts (id INTEGER)").connection.commit()
    before = foreign.read_bytes()
    with pytest.raises(KeyLedgerRefused, match="did not create"):
        SqliteKeyLedger(foreign).open()
    assert foreign.read_bytes() == before
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(KeyLedgerRefused, match="symlink"):
        SqliteKeyLedger(link).open()
    assert not (tmp_path / "elsewhere.db").exists()
    folder = tmp_path / "folder.db"
    folder.mkdir()
    with pytest.raises(KeyLedgerRefused, match="not a regular file"):
        SqliteKeyLedger(folder).open()


def test_reopening_is_idempotent(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.db", Clock()
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    with SqliteKeyLedger(path, run="a", clock=clock) as store:
        store.mark(key, cooldown_until=clock.now + 9)
    with SqliteKeyLedger(path, run="b", clock=clock) as store:
        assert store.marks([key.fp])[key.fp].cooldown_until == clock.now + 9


@pytest.mark.timeout(30)
def test_calls_wait_in_arrival_order_across_runs(tmp_path: Path) -> None:
    """Run A's call has waited since before run B's arrived: B yields until A's is granted,
    though B's own book has room at once."""
    import threading
    import time

    from agentos.core.printing import Lines
    from agentos.keys.budget_book import BudgetBook, Grant
    from agentos.llm.rate_limits import Outcome
    from tests.helpers.rate_sim import FakePool

    class Wall:
        def __call__(self) -> float:
            return time.monotonic()

    clock = Wall()
    books = []
    for run in ("a", "b"):
        store = SqliteKeyLedger(tmp_path / "keys.db", run=run)
        store.open()
        pool = FakePool(clock, ["k1"], per_key_concurrency=1)  # type: ignore[arg-type]
        books.append(BudgetBook({"openai": pool}, console=Lines(), ledger=store))
    first, second = books
    busy = first.try_acquire("openai")
    assert isinstance(busy, Grant)  # A's one slot is taken: its next call waits
    order: list[str] = []

    def ask(book: BudgetBook, who: str) -> None:
        if book.acquire("openai") is not None:
            order.append(who)

    waiting_a = threading.Thread(target=ask, args=(first, "a"))
    waiting_a.start()
    time.sleep(0.4)  # A's call has marked how long it waits
    waiting_b = threading.Thread(target=ask, args=(second, "b"))
    waiting_b.start()
    time.sleep(0.6)
    assert order == []  # B had room in its own book, and yielded to A's older call
    first.complete(busy.id, Outcome.OK)
    waiting_a.join(10)
    waiting_b.join(10)
    assert order == ["a", "b"]


def test_prune_drops_what_no_run_needs_and_keeps_the_last_hour(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    path, clock = tmp_path / "keys.db", Clock()
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    killed = SqliteKeyLedger(path, run="killed", clock=clock, pid=dead.pid)
    killed.open()
    killed.hold(key, 1, clock.now - 7200)  # left in flight two hours ago
    killed.hold(key, 2, clock.now - 60)  # a minute ago: `agentos keys` still counts it
    live = ledger(path, clock, "live")
    live.hold(key, 1, clock.now - 7200)
    live.settle(key.fp, 1, clock.now - 7000, "ok")  # answered long ago
    live.prune(clock.now)
    rows = sqlite3.connect(path).execute("SELECT run, call FROM calls ORDER BY run, call").fetchall()
    assert rows == [("killed", 2)]


def test_history_lists_every_runs_calls_in_a_window_for_the_dashboard(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.db", Clock()
    first, second = ledger(path, clock, "first"), ledger(path, clock, "second")
    key = KeyRef(fingerprint(SECRET), "openai", "k")
    first.hold(key, 1, clock.now)
    first.settle(key.fp, 1, clock.now + 10, "ok", latency_s=0.5)
    second.hold(key, 1, clock.now + 2)
    second.settle(key.fp, 1, clock.now + 12, "rate_limited", latency_s=0.1)
    second.hold(key, 2, clock.now + 3)  # in flight
    first.hold(key, 2, clock.now + 100)  # after the window
    found = SqliteKeyLedger(path, readonly=True).history(clock.now - 1, clock.now + 50)
    assert [(c.granted_at - clock.now, c.latency_s, c.outcome) for c in found] == [
        (0.0, 0.5, "ok"),
        (2.0, 0.1, "rate_limited"),
        (3.0, None, None),
    ]
    assert {c.key.name for c in found} == {"k"} and all(SECRET not in repr(c) for c in found)
    assert all(c.run.startswith("pid ") for c in found)
