"""The credential state file (before the key ledger) is untrusted: it is read once, by these
rules, and migrated to the ledger; bad entries are dropped, an unusable file never kills a
thread or the run. A ledger that fails mid-run leaves the pool working in memory."""

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from agentos.backend.key_ledger import KeyRef, fingerprint
from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.keys.pool import CredentialCoordinator
from agentos.keys.pools import PoolSet
from agentos.keys.sources import Credential
from agentos.keys.state import CredentialState
from agentos.llm.errors import RateLimited
from tests.helpers.cli import issue_flags, run_cli

pytestmark = pytest.mark.timeout(150)
WRONG_TYPES = {
    "mock/mock-key-1": "abc",
    "mock/mock-key-2": 5,
    "mock/mock-key-3": {"cooldown_until": "soon"},
    "mock/mock-key-4": {"cooldown_until": 1e300, "quota_until": True},
    "openai/good": {"cooldown_until": 1.0, "quota_until": 2.0},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def creds(*names: str) -> list[Credential]:
    return [Credential(n, f"secret-{n}-123456", "p") for n in names]


def test_wrong_types_are_dropped_with_one_warning_and_the_file_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(WRONG_TYPES))
    state = CredentialState(path)
    assert state.load() == {"openai/good": {"cooldown_until": 1.0, "quota_until": 2.0}}
    state.load()
    out = capsys.readouterr().out
    assert out.count("Warning") == 1 and str(path) in out
    assert json.loads(path.read_text()) == {"openai/good": {"cooldown_until": 1.0, "quota_until": 2.0}}


@pytest.mark.parametrize("content", ["[1, 2]", "not json", '"abc"', "5", "{", "\xff\xfe"])
def test_a_file_that_is_not_an_object_is_migrated_as_empty(home: Path, content: str) -> None:
    home.mkdir(parents=True)
    path = home / "credential-state.json"
    path.write_text(content, encoding="latin-1")
    pools = PoolSet.load(["mock"])
    try:
        assert pools.pools["mock"].usable_count() == len(pools.pools["mock"].names())
    finally:
        pools.close_ledger()
    assert not path.exists() and (home / "credential-state.json.migrated").exists()


def test_absurd_but_finite_marks_do_not_park_a_key_for_ever(tmp_path: Path) -> None:
    clock = Clock()
    ledger = SqliteKeyLedger(tmp_path / "keys.db", clock=clock)
    key = creds("a")[0]
    ledger.mark(KeyRef(fingerprint(key.secret), "p", "a"), cooldown_until=1e300)
    pool = CredentialCoordinator([key], clock=clock, ledger=ledger)
    earliest = pool.earliest_available()
    assert earliest is not None and earliest <= clock.now + 25 * 3600


def test_a_ledger_that_fails_mid_run_never_kills_a_supervisor_thread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.db"
    clock = Clock()
    ledger = SqliteKeyLedger(path, clock=clock)
    pool = CredentialCoordinator(creds("a", "b"), clock=clock, ledger=ledger)
    ledger.close()
    path.unlink()
    path.mkdir()  # the ledger's file turned into a folder under the run: every write fails
    errors: list[BaseException] = []

    def supervise() -> None:
        try:
            for _ in range(2):
                key = pool.acquire(timeout=0)
                assert key is not None
                pool.report(key, RateLimited(5))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=supervise)
    thread.start()
    thread.join(10)
    assert not errors
    assert pool.usable_count() == 0  # the marks live in memory
    clock.now += 6
    assert pool.usable_count() == 2
    out = capsys.readouterr().out
    assert sum("key ledger" in line for line in out.splitlines()) == 1  # said once; then in memory


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_folder_is_logged_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    state = CredentialState(folder / "state.json")
    folder.chmod(0o500)
    try:
        for _ in range(3):
            state.update({"p/a": {"cooldown_until": 2e9, "quota_until": 0.0}}, now=0.0)
        assert state.load() == {}
    finally:
        folder.chmod(0o700)
    assert capsys.readouterr().out.count("Warning") == 1


def test_an_unusable_parent_folder_is_logged_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    state = CredentialState(blocker / "state.json")
    for _ in range(3):
        state.update({"p/a": {"cooldown_until": 2e9, "quota_until": 0.0}}, now=0.0)
    assert state.load() == {}
    out = capsys.readouterr().out
    assert out.count("Warning") == 1 and str(blocker / "state.json") in out


def test_non_finite_marks_are_never_written(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = CredentialState(path)
    state.update({"p/a": {"cooldown_until": float("inf"), "quota_until": 2e9}}, now=0.0)
    text = path.read_text()
    assert "Infinity" not in text and json.loads(text)["p/a"]["cooldown_until"] == 0.0


def mock_run(demo: Path, home: Path) -> tuple[int, str]:
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        *issue_flags(3, 8),
        "--parallel",
        "2",
        "--provider",
        "mock",
        home=home,
        AGENTOS_SIMULATE_429="true",
        AGENTOS_SIMULATE_429_RETRY="1",
    )
    return result.returncode, result.stdout + result.stderr


def test_wrong_types_in_a_real_run(demo: Path, home: Path) -> None:
    """Issue 13: wrong types in the state file ended every run in a traceback."""
    home.mkdir(parents=True)
    state = home / "credential-state.json"
    # What an earlier version wrote after `retry-after: inf`, plus wrong types.
    poisoned = {**WRONG_TYPES, "mock/mock-key-5": {"cooldown_until": float("inf"), "quota_until": 0.0}}
    state.write_text(json.dumps(poisoned))
    assert "Infinity" in state.read_text()
    code, out = mock_run(demo, home)
    assert code == 0, out
    assert "Traceback" not in out and "Summary: 2 approved" in out
    assert out.count(f"the credential state file {state} held invalid entries") == 1
    migrated = home / "credential-state.json.migrated"  # read once, then retired
    assert not state.exists() and "abc" not in migrated.read_text() and "Infinity" not in migrated.read_text()


def test_a_directory_as_state_file_in_a_real_run(demo: Path, home: Path) -> None:
    """Issue 13: a directory at the path killed a supervisor on the first 429; the run idled."""
    (home / "credential-state.json").mkdir(parents=True)
    code, out = mock_run(demo, home)
    assert code == 0, out
    assert "Traceback" not in out and "Summary: 2 approved" in out
    assert "refused credential state file" in out and "it is a directory" in out, out
    assert "rate-limited; cooling down" in out


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_a_hostile_state_file_is_one_warning_never_a_hang(demo: Path, home: Path, kind: str) -> None:
    """Issue 20 finding 1: a FIFO blocked open() for minutes, /dev/zero gave a MemoryError,
    a 114 MB file slowed the run to a crawl."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "credential-state.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text(
            '{"mock/x": {"cooldown_until": 0, "quota_until": 0}, "pad": "' + "x" * 3_000_000 + '"}'
        )
    result = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--issue",
        "3",
        "--issue",
        "5",
        "--provider",
        "mock",
        home=home,
        timeout=60,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert out.count("refused credential state file") == 1, out
    assert "its cool-downs were not carried over to the key ledger" in out
    assert "Traceback" not in out and "MemoryError" not in out
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(path).st_mode)  # left as it was
