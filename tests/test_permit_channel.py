"""The permit channel over a real Unix socket: grants, reports, waits, disconnects, hostile peers."""

import contextlib
import os
import socket
import stat
import threading
import time
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from agentos.core import progress_note
from agentos.core.printing import Lines
from agentos.core.progress_note import ProgressNote
from agentos.core.redaction import redact
from agentos.keys.budget_book import BudgetBook
from agentos.keys.key_budget import LimitSource
from agentos.keys.permit_client import ADDRESS_ENV, AUTHKEY_ENV, PermitClient, PermitUnavailable
from agentos.keys.permit_server import (
    CLOSE_JOIN_S,
    HANDSHAKE_S,
    MAX_HANDSHAKES,
    PermitServer,
    RateStrategy,
    rate_strategy,
)
from agentos.llm.rate_limits import Budget, Outcome, RateLimitInfo
from tests.helpers.rate_sim import FakePool

pytestmark = pytest.mark.timeout(30)


class RealClock:
    def __call__(self) -> float:
        return time.monotonic()


@pytest.fixture
def served():  # type: ignore[no-untyped-def]
    pool = FakePool(RealClock(), ["k1", "k2"], per_key_concurrency=4)  # type: ignore[arg-type]
    book = BudgetBook({"openai": pool}, console=Lines())
    server = PermitServer(book)
    env = server.start()
    yield server, book, pool, env
    server.close()


def test_socket_is_private_and_the_key_is_registered_for_redaction(served) -> None:  # type: ignore[no-untyped-def]
    _server, _, _, env = served
    directory = Path(env[ADDRESS_ENV]).parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert env[AUTHKEY_ENV] not in redact(f"key {env[AUTHKEY_ENV]}")


def test_grant_then_report_updates_the_budget(served) -> None:  # type: ignore[no-untyped-def]
    _, book, _, env = served
    client = PermitClient.from_env(env)
    assert client is not None
    permit = client.acquire("openai", 100, "draft")
    assert permit.key in ("k1", "k2") and permit.secret == f"secret-{permit.key}-0123456789"
    info = RateLimitInfo(Budget(4, 3, 10.0), Budget())
    client.done(permit.grant, Outcome.OK, info, time.monotonic(), None)
    deadline = time.monotonic() + 5
    while book.stats()["openai"][permit.key]["served"] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = book.stats()["openai"][permit.key]
    assert stats["served"] == 1 and stats["limit"] == 4 and stats["limit_from"] == LimitSource.HEADERS.value


def test_a_call_waits_inside_the_channel_until_budget_frees(served) -> None:  # type: ignore[no-untyped-def]
    _, _book, pool, env = served
    pool.cooling["k2"] = time.monotonic() + 60
    client = PermitClient.from_env(env)
    assert client is not None
    first = client.acquire("openai", 0)
    client.done(first.grant, Outcome.RATE_LIMITED, None, time.monotonic(), 0.3)  # blocked 0.3 s
    started = time.monotonic()
    second = client.acquire("openai", 0)  # no restart: it just waits
    assert second.key == "k1"
    assert 0.2 <= time.monotonic() - started < 5
    assert second.waited >= 0.2


def test_a_worker_that_dies_while_waiting_leaves_the_queue(served) -> None:  # type: ignore[no-untyped-def]
    _, book, pool, env = served
    pool.cooling.update({"k1": time.monotonic() + 60, "k2": time.monotonic() + 60})
    conn = Client(env[ADDRESS_ENV], family="AF_UNIX", authkey=bytes.fromhex(env[AUTHKEY_ENV]))
    conn.send_bytes(b'{"op":"acquire","provider":"openai","tokens":1}')
    deadline = time.monotonic() + 5
    while not book._queues["openai"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(book._queues["openai"]) == 1
    conn.close()
    while book._queues["openai"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert book._queues["openai"] == []


def test_grants_never_reported_are_abandoned_when_the_worker_goes(served) -> None:  # type: ignore[no-untyped-def]
    _, book, _, env = served
    client = PermitClient.from_env(env)
    assert client is not None
    permit = client.acquire("openai", 0)
    client._drop()  # the worker dies mid-call
    deadline = time.monotonic() + 5
    while book._grants and time.monotonic() < deadline:
        time.sleep(0.01)
    assert permit.grant not in book._grants
    assert book._budgets[("openai", permit.key)].in_flight() == 0


def test_wrong_key_and_garbage_are_refused(served) -> None:  # type: ignore[no-untyped-def]
    _, book, _, env = served
    with pytest.raises(PermitUnavailable):
        PermitClient(env[ADDRESS_ENV], os.urandom(32)).acquire("openai", 0)
    for garbage in (b"\x80\x81", b"[]", b'{"op":"pickle"}', b'{"op":"acquire","provider":1}'):
        conn = Client(env[ADDRESS_ENV], family="AF_UNIX", authkey=bytes.fromhex(env[AUTHKEY_ENV]))
        conn.send_bytes(garbage)
        with pytest.raises(EOFError):
            conn.recv_bytes()  # dropped, nothing granted
        conn.close()
    conn = Client(env[ADDRESS_ENV], family="AF_UNIX", authkey=bytes.fromhex(env[AUTHKEY_ENV]))
    conn.send_bytes(b'{"op":"done","grant":12345,"outcome":"ok","sent_at":1e309}')  # not its grant
    conn.close()
    assert book.stats() == {} or all(v["served"] == 0 for v in book.stats()["openai"].values())
    # the channel still serves honest workers
    client = PermitClient.from_env(env)
    assert client is not None and client.acquire("openai", 0).key in ("k1", "k2")


def test_a_client_that_connects_and_stalls_blocks_no_other_worker(served) -> None:  # type: ignore[no-untyped-def]
    _, _, _, env = served
    stalled = [Client(env[ADDRESS_ENV], family="AF_UNIX") for _ in range(3)]  # never answer the challenge
    try:
        client = PermitClient.from_env(env)
        assert client is not None
        got: list[str] = []
        worker = threading.Thread(target=lambda: got.append(client.acquire("openai", 0).key), daemon=True)
        worker.start()
        worker.join(10)
        assert got and got[0] in ("k1", "k2"), "an honest worker waited behind a stalled connection"
    finally:
        for conn in stalled:
            conn.close()


def test_closing_tells_waiting_workers_to_stop(served) -> None:  # type: ignore[no-untyped-def]
    server, _, pool, env = served
    pool.cooling.update({"k1": time.monotonic() + 60, "k2": time.monotonic() + 60})
    client = PermitClient.from_env(env)
    assert client is not None
    errors: list[PermitUnavailable] = []

    def wait() -> None:
        try:
            client.acquire("openai", 0)
        except PermitUnavailable as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.1)
    server.close()
    thread.join(timeout=5)
    assert errors and errors[0].closed
    assert not Path(env[ADDRESS_ENV]).parent.exists()


def test_no_channel_in_the_environment_means_unpaced() -> None:
    assert PermitClient.from_env({}) is None
    assert PermitClient.from_env({ADDRESS_ENV: "/x", AUTHKEY_ENV: "not hex"}) is None


def test_strategy_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentos.core.errors import ConfigError

    monkeypatch.delenv("AGENTOS_RATE_STRATEGY", raising=False)
    assert rate_strategy() is RateStrategy.PACED
    monkeypatch.setenv("AGENTOS_RATE_STRATEGY", "Reactive")
    assert rate_strategy() is RateStrategy.REACTIVE
    monkeypatch.setenv("AGENTOS_RATE_STRATEGY", "fast")
    with pytest.raises(ConfigError, match="AGENTOS_RATE_STRATEGY must be paced or reactive"):
        rate_strategy()


# -- the worker's paced provider, against a real SDK and server ---------------------------


def paced(env: dict[str, str], lines: Lines, fallback=None):  # type: ignore[no-untyped-def]
    from agentos.keys.paced_provider import PacedProvider
    from agentos.llm.registry import ProviderSpec

    client = PermitClient.from_env(env)
    assert client is not None
    return PacedProvider(ProviderSpec.parse("openai:gpt-test"), client, fallback, lines)


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert predicate()


def test_paced_calls_report_the_providers_numbers(served, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.rate_limited_server import RateLimitedServer

    from agentos.llm.base import CompletionRequest
    from agentos.llm.errors import RateLimited

    _, book, _, env = served
    lines = Lines()
    with RateLimitedServer(limit=2, window=30.0, latency=0.0) as server:
        monkeypatch.setenv("AGENTOS_OPENAI_BASE_URL", server.url + "/v1")
        provider = paced(env, lines)
        request = CompletionRequest("Write a design", purpose="draft")
        notes: list[ProgressNote] = []
        progress_note.install(notes.append)
        try:
            assert "loopback server" in provider.complete(request).text
        finally:
            progress_note.install(None)
        first = provider.key_name
        assert lines == [f"    permit: key {first}"]
        assert notes == [ProgressNote(key="(waiting)"), ProgressNote(key=first)]  # the live panel's key
        assert book.waiting == 0
        wait_for(lambda: book.stats()["openai"][first]["served"] == 1)
        assert book.stats()["openai"][first]["limit"] == 2  # learned from the headers
        provider.complete(request)  # the other key has more room now
        assert provider.key_name != first
        server.limit = 0  # the provider now refuses everything
        with pytest.raises(RateLimited) as info:
            provider.complete(CompletionRequest("x", purpose="review"))
    assert info.value.key_name in ("k1", "k2") and info.value.retry_after is not None
    wait_for(lambda: sum(v["refused"] for v in book.stats()["openai"].values()) == 1)


def test_without_a_reachable_channel_calls_go_unpaced_on_the_items_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentos.keys.sources import Credential
    from agentos.llm.base import CompletionRequest
    from tests.helpers.fake_llm_servers import FakeLLMServer

    env = {ADDRESS_ENV: str(tmp_path / "gone.sock"), AUTHKEY_ENV: os.urandom(32).hex()}
    lines = Lines()
    with FakeLLMServer("openai") as server:
        monkeypatch.setenv("AGENTOS_OPENAI_BASE_URL", server.url + "/v1")
        provider = paced(env, lines, Credential("own", "sk-own-key-123456", "openai"))
        provider.complete(CompletionRequest("Write a design"))
        provider.complete(CompletionRequest("Write a design"))
    assert server.calls["sk-own-key-123456"] == 2 and provider.key_name == "own"
    assert len(lines) == 1 and "calls go out unpaced with the item's own key" in lines[0]


def test_a_closed_channel_interrupts_the_call(served) -> None:  # type: ignore[no-untyped-def]
    from agentos.core.errors import Interrupted
    from agentos.llm.base import CompletionRequest

    server, _, _, env = served
    provider = paced(env, Lines())
    server.close()
    with pytest.raises(Interrupted, match="resumable"):
        provider.complete(CompletionRequest("x"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_flood_of_silent_connections_is_bounded_and_serving_goes_on(served) -> None:  # type: ignore[no-untyped-def]
    """Issue 20 finding 7: connections that never authenticate pushed the coordinator past
    1,024 descriptors and 1,493 threads; it never exited."""
    server, _book, _, env = served
    before_fds, before_threads = open_fds(), threading.active_count()
    flood = []
    try:
        for _ in range(600):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            try:
                sock.connect(env[ADDRESS_ENV])
            except OSError:
                sock.close()
                continue  # a full backlog refuses: fine
            flood.append(sock)
        time.sleep(0.5)
        # Each flood socket is one fd on our side; the server holds at most MAX_HANDSHAKES.
        assert open_fds() - before_fds - len(flood) <= MAX_HANDSHAKES + 5
        assert threading.active_count() - before_threads <= MAX_HANDSHAKES + 2
        wait_for(lambda: server._handshaking == 0, timeout=HANDSHAKE_S + 5)  # deadlines passed
        client = PermitClient.from_env(env)
        assert client is not None
        permit = client.acquire("openai", 10, "draft")  # a real worker is still served
        client.done(permit.grant, Outcome.OK, RateLimitInfo(Budget(), Budget()), None, None)
    finally:
        for sock in flood:
            sock.close()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < CLOSE_JOIN_S + 2


def test_close_never_blocks_after_a_connect_and_close_flood(served) -> None:  # type: ignore[no-untyped-def]
    server, _, _, env = served
    for _ in range(2000):  # fills the listener's backlog faster than it is drained
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.connect(env[ADDRESS_ENV])
        sock.close()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < CLOSE_JOIN_S + 2
