"""`--parallel auto`: Little's law on the pool's measured capacity, within the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentos.backend.key_ledger import Capacity, KeyModel, KeyRef, fingerprint
from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.runs.parallelism import Machine, PoolShape, choose
from tests.helpers.cli import issue_flags, run_cli

BIG = Machine(cpus=64, available_bytes=256 * 2**30)
UNKNOWN = Capacity(None, None, 0)


def test_unknown_limits_are_bounded_by_the_pools_concurrency() -> None:
    number, why = choose([PoolShape("openai", 3, 2, UNKNOWN)], items=40, machine=BIG)
    assert (number, why) == (6, "openai: 3 key(s) x 2 at once")


def test_known_limits_and_latency_give_littles_law() -> None:
    # 3 keys x 4 calls per 10 s = 1.2 calls/s; a call takes 2.5 s: 3 calls in flight keep it busy
    capacity = Capacity(1.2, 2.5, 100)
    number, why = choose([PoolShape("openai", 3, 4, capacity)], items=40, machine=BIG)
    assert number == 3 and "Little's law" in why and "72 calls/min x 2.5s" in why


def test_the_machine_and_the_items_bound_it() -> None:
    small = Machine(cpus=2, available_bytes=300 * 2**20)
    number, why = choose([PoolShape("openai", 8, 4, UNKNOWN)], items=40, machine=small)
    assert number == 1 and "GiB free" in why
    number, why = choose([PoolShape("openai", 8, 4, UNKNOWN)], items=2, machine=BIG)
    assert (number, why) == (2, "2 pending item(s)")
    number, why = choose([PoolShape("openai", 8, 4, UNKNOWN)], items=40, machine=BIG)
    assert (number, why) == (10, "the cap of 10")


def test_the_ledger_measures_rate_and_latency(tmp_path: Path) -> None:
    store = SqliteKeyLedger(tmp_path / "keys.db", clock=lambda: 1000.0)
    keys = [KeyRef(fingerprint(f"sk-{n}-0123456789"), "openai", f"k{n}") for n in range(2)]
    assert store.capacity([k.fp for k in keys], 1000.0) == Capacity(None, None, 0)
    for n, key in enumerate(keys):
        store.learn(key, KeyModel(4, 10.0, "headers"))
        store.hold(key, n, 990.0)
        store.settle(key.fp, n, 1001.0, "ok", 2.0 + n)
    capacity = store.capacity([k.fp for k in keys], 1000.0)
    assert capacity.calls_per_s == pytest.approx(0.8) and capacity.latency_s == 3.0 and capacity.samples == 2


def test_a_ledger_of_the_first_schema_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "keys.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA application_id = 1095191372")
        conn.execute(
            "CREATE TABLE calls (run TEXT NOT NULL, call INTEGER NOT NULL, fp TEXT NOT NULL, "
            "granted_at REAL NOT NULL, expires_at REAL, outcome TEXT, PRIMARY KEY (run, call))"
        )
        conn.execute("PRAGMA user_version = 1")
    with SqliteKeyLedger(path) as store:
        key = KeyRef("fp", "openai", "k")
        store.hold(key, 1, 1.0)
        store.settle("fp", 1, 2.0, "ok", 0.5)


@pytest.mark.timeout(120)
def test_parallel_auto_says_how_many_and_why(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 8),
        "--parallel",
        "auto",
        "--provider",
        "mock",
        home=home,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[COORDINATOR] --parallel auto: 2 worker(s), bounded by 2 pending item(s)" in result.stdout
    bad = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "many", "--provider", "mock", home=home
    )
    assert bad.returncode == 2 and "takes a positive number or auto" in bad.stderr
