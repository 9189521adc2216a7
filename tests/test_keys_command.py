"""`agentos keys`: the key ledger shown by the rules for untrusted input, never a secret."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agentos.backend.key_ledger import KeyModel, KeyRef, fingerprint
from agentos.backend.local.key_ledger import SqliteKeyLedger
from tests.helpers.cli import cli_env

pytestmark = pytest.mark.timeout(60)


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env=cli_env(home),
        check=False,
    )


def test_no_ledger_yet_is_said_and_nothing_is_created(home: Path) -> None:
    result = agentos(home, "keys")
    assert result.returncode == 0 and "No key ledger yet" in result.stdout
    assert not (home / "keys.db").exists()


def test_each_key_with_its_state_budget_and_calls(home: Path) -> None:
    secret = "sk-listed-0123456789abcdef"
    with SqliteKeyLedger(home / "keys.db") as ledger:
        key = KeyRef(fingerprint(secret), "openai", "team-a")
        ledger.register([key, KeyRef(fingerprint("other-0123456789"), "gemini", "spare")])
        ledger.mark(key, cooldown_until=4_000_000_000.0)
        ledger.learn(key, KeyModel(4, 10.0, "headers", strict=True))
        ledger.hold(key, 1, 1.0)
        ledger.settle(key.fp, 1, 2.0, "rate_limited")
    result = agentos(home, "keys")
    assert result.returncode == 0, result.stderr
    line = next(row for row in result.stdout.splitlines() if "team-a" in row)
    assert "cooling until" in line and "4 req/10s (from headers, strict after a surprise 429)" in line
    assert "spare" in result.stdout and "usable" in result.stdout and "not known yet" in result.stdout
    assert secret not in result.stdout
    rows = json.loads(agentos(home, "keys", "--json").stdout)
    assert {r["key"] for r in rows} == {"team-a", "spare"}


@pytest.mark.parametrize("kind", ["foreign", "corrupt"])
def test_a_store_that_is_not_ours_is_refused_and_left_alone(home: Path, kind: str) -> None:
    home.mkdir(parents=True)
    path = home / "keys.db"
    if kind == "foreign":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE keys (fp TEXT)")
    else:
        path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 5000)
    before = path.read_bytes()
    result = agentos(home, "keys")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Refusing to use" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_hostile_rows_are_shown_cleaned_never_a_crash(home: Path) -> None:
    with SqliteKeyLedger(home / "keys.db") as ledger:
        ledger.register([KeyRef("fp1", "openai", "x")])
    with sqlite3.connect(home / "keys.db") as conn:
        conn.execute(
            "UPDATE keys SET name = ?, provider = ?, limit_n = 'many', window_s = 'inf', limit_from = ?, "
            "cooldown_until = 'soon', rejected = ?, rejected_at = 1e300",
            ("\x1b[31mred\x1b[0m <script>alert(1)</script>", "\x07bell", "x" * 5000, "\x1b]0;title\x07" * 50),
        )
        conn.execute(
            "INSERT INTO calls (run, call, fp, granted_at, expires_at, outcome) VALUES ('r', 1, 'fp1', 'x', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO runs (run, pid, host, started, what) VALUES ('r', 'abc', 'h', 0, '\x1b[2J')"
        )
    for args in (("keys",), ("keys", "--json")):
        result = agentos(home, *args)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "Traceback" not in result.stderr
