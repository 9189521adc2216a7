"""The key ledger on a real Postgres: the same rules as the local one, liveness by advisory
locks that die with their connection, and two "machines" sharing one pool."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from benchmarks.rate_limited_server import RateLimitedServer

from agentos.backend.key_ledger import KeyModel, KeyRef, fingerprint
from agentos.backend.postgres.connection import BackendUnavailable
from agentos.backend.postgres.key_ledger import PostgresKeyLedger
from tests.helpers.cli import cli_env, with_verbose

pytestmark = pytest.mark.timeout(180)
SECRET = "sk-pg-ledger-0123456789abcdef"
KEY = KeyRef(fingerprint(SECRET), "openai", "team-a")


def test_marks_models_and_slots_as_the_local_ledger(postgres_url: str) -> None:
    now = time.time()
    with (
        PostgresKeyLedger(postgres_url, run="a") as first,
        PostgresKeyLedger(postgres_url, run="b") as second,
    ):
        first.mark(KEY, cooldown_until=now + 30)
        first.mark(KEY, cooldown_until=now + 5)
        assert second.marks([KEY.fp])[KEY.fp].cooldown_until == pytest.approx(now + 30)
        first.learn(KEY, KeyModel(4, 10.0, "headers", strict=True))
        first.learn(KEY, KeyModel(5, 10.0, "headers"))
        assert second.model(KEY.fp) == KeyModel(5, 10.0, "headers", strict=True)
        first.hold(KEY, 1, now)
        assert [s.expires_at for s in second.others(KEY.fp, now, 10.0)] == [None]  # in flight, alive
        first.settle(KEY.fp, 1, now + 10, "ok", 0.4)
        assert [s.expires_at for s in second.others(KEY.fp, now + 1, 10.0)] == [pytest.approx(now + 10)]
        assert second.capacity([KEY.fp], now + 1).latency_s == pytest.approx(0.4)


def test_a_terminated_connection_ends_the_runs_claim(postgres_url: str) -> None:
    """pg_terminate_backend on a run's session: its advisory lock goes, and its calls in flight
    are held only until the provider has let them go (granted_at + window)."""
    now = time.time()
    doomed = PostgresKeyLedger(postgres_url, run="doomed")
    doomed.open()
    doomed.hold(KEY, 1, now)
    pid = doomed._conn.info.backend_pid
    with PostgresKeyLedger(postgres_url, run="survivor") as survivor:
        assert survivor.others(KEY.fp, now + 1, 10.0)[0].expires_at is None
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while survivor.others(KEY.fp, now + 1, 10.0)[0].expires_at is None and time.monotonic() < deadline:
            time.sleep(0.1)
        (slot,) = survivor.others(KEY.fp, now + 1, 10.0)
        assert slot.expires_at == pytest.approx(now + 10.0)
        assert survivor.others(KEY.fp, now + 11, 10.0) == []


def test_a_newer_schema_is_refused_and_left_alone(postgres_url: str) -> None:
    with PostgresKeyLedger(postgres_url, run="a"):
        pass
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("UPDATE agentos.meta SET value = '99' WHERE name = 'key_ledger_schema'")
    with pytest.raises(BackendUnavailable, match="version 99, written by a newer agentos"):
        PostgresKeyLedger(postgres_url, run="b").open()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        assert admin.execute(
            "SELECT value FROM agentos.meta WHERE name = 'key_ledger_schema'"
        ).fetchone() == ("99",)


def lld(
    ws: Path, home: Path, url: str, server: RateLimitedServer, *extra: str
) -> subprocess.CompletedProcess[str]:
    args = [
        "--repo",
        str(ws),
        "--all",
        "--parallel",
        "4",
        "--per-key-concurrency",
        "3",
        "--provider",
        "openai:gpt-test",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.lld", *with_verbose(args, True)],
        capture_output=True,
        text=True,
        timeout=150,
        env=cli_env(home, AGENTOS_OPENAI_BASE_URL=server.url + "/v1", AGENTOS_BACKEND_URL=url),
        check=False,
    )


def machine(root: Path, name: str, items: int) -> tuple[Path, Path]:
    ws, home = root / f"{name}-ws", root / f"{name}-home"
    (ws / "issues").mkdir(parents=True)
    for n in range(1, items + 1):
        (ws / "issues" / f"{n}.md").write_text(f"# Issue {n}\n\nStore record type {n} on {name}.\n")
    home.mkdir()
    creds = home / "openai-credentials.json"
    creds.write_text(
        json.dumps({"credentials": [{"name": "alpha", "key": SECRET}, {"name": "beta", "key": SECRET + "b"}]})
    )
    creds.chmod(0o600)
    return ws, home


def test_two_machines_share_one_pool_through_postgres(tmp_path: Path, postgres_url: str) -> None:
    """Two homes (two machines), one backend: each paces against the other's calls."""
    from concurrent.futures import ThreadPoolExecutor

    machines = [machine(tmp_path, name, 6) for name in ("one", "two")]
    with RateLimitedServer(3, 3.0, latency=0.1) as server, ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: lld(m[0], m[1], postgres_url, server), machines))
        refused, served = server.refused(), server.served()
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    assert served == 24 and refused <= 4, (served, refused)
    for _, home in machines:
        assert not (home / "keys.db").exists()  # the backend holds the ledger
    with psycopg.connect(postgres_url) as conn:
        names = sorted(r[0] for r in conn.execute("SELECT name FROM agentos.keys"))
        dump = str(conn.execute("SELECT * FROM agentos.keys").fetchall())
    assert names == ["alpha", "beta"] and SECRET not in dump


def test_an_unreachable_backend_is_one_line_naming_the_host_never_the_password(tmp_path: Path) -> None:
    ws, home = machine(tmp_path, "alone", 1)
    url = "postgresql://agentos:hunter2-secret-pw@127.0.0.1:9/team"
    with RateLimitedServer(3, 3.0, latency=0.1) as server:
        result = lld(ws, home, url, server)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the backend at 127.0.0.1:9/team cannot be used" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_the_backend_from_agentos_toml(tmp_path: Path, postgres_url: str) -> None:
    ws, home = machine(tmp_path, "toml", 2)
    (ws / "agentos.toml").write_text(f'[backend]\nurl = "{postgres_url}"\n')
    with RateLimitedServer(3, 3.0, latency=0.1) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "agentos.cli.lld",
                "--repo",
                str(ws),
                "--all",
                "--parallel",
                "2",
                "--provider",
                "openai:gpt-test",
            ],
            capture_output=True,
            text=True,
            timeout=150,
            env=cli_env(home, AGENTOS_OPENAI_BASE_URL=server.url + "/v1"),
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (home / "keys.db").exists()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM agentos.keys").fetchone() == (2,)


def test_a_password_in_agentos_toml_is_refused_and_never_shown(tmp_path: Path) -> None:
    from agentos.core.errors import ConfigError
    from agentos.core.settings import load_settings

    path = tmp_path / "agentos.toml"
    path.write_text('[backend]\nurl = "postgresql://team:s3cret-in-git@db.example.com/agentos"\n')
    with pytest.raises(ConfigError, match="PGPASSWORD") as refused:
        load_settings(path)
    assert "s3cret-in-git" not in str(refused.value)
    path.write_text('[backend]\nurl = "mysql://db/x"\n')
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings(path)
    path.write_text('[backend]\nurl = "postgresql://team@db.example.com/agentos?sslmode=verify-full"\n')
    assert load_settings(path).backend_url == "postgresql://team@db.example.com/agentos?sslmode=verify-full"
