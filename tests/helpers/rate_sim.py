"""A deterministic simulation of a paced batch: BudgetBook + KeyBudget against a simulated
sliding-window server, on an injected clock. No threads, no sleeping.

Items make `calls` calls in sequence; at most `parallel` items run at once. Each call asks
the book for a permit (try_acquire); without one it retries when the book says a key is
ready, or at the next event. The server admits a call if its key's window has room, answers
after `latency` with OpenAI-style headers (unless `headers=False`), or refuses it at once
with the time until the oldest call in the window leaves it. A refused call cools its key
in the pool and is sent again after `restart` seconds, as the coordinator does.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field

from agentos.core.printing import Lines
from agentos.keys.budget_book import BudgetBook, Grant
from agentos.keys.sources import Credential
from agentos.llm.errors import AuthError, LLMError
from agentos.llm.rate_limits import Budget, Outcome, RateLimitInfo


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakePool:
    def __init__(self, clock: FakeClock, names: list[str], per_key_concurrency: int, rpm: int | None = None):
        self.clock = clock
        self.per_key_concurrency = per_key_concurrency
        self.creds = [Credential(n, f"secret-{n}-0123456789", "openai", rpm) for n in names]
        self.cooling: dict[str, float] = {}
        self.rejected: set[str] = set()

    def credentials(self) -> list[Credential]:
        return list(self.creds)

    def is_usable(self, name: str) -> bool:
        return name not in self.rejected and self.cooling.get(name, 0.0) <= self.clock()

    def hold_off(self, name: str, until: float) -> None:
        self.cooling[name] = max(self.cooling.get(name, 0.0), until)

    def mark(self, name: str, error: LLMError) -> None:
        if isinstance(error, AuthError):
            self.rejected.add(name)


@dataclass
class SimServer:
    clock: FakeClock
    limit: int
    window: float
    headers: bool = True
    arrivals: dict[str, deque[float]] = field(default_factory=dict)
    served: int = 0
    refused: list[tuple[str, float]] = field(default_factory=list)

    def admit(self, key: str) -> tuple[bool, float, RateLimitInfo | None]:
        now = self.clock()
        window = self.arrivals.setdefault(key, deque())
        while window and window[0] <= now - self.window:
            window.popleft()
        accepted = len(window) < self.limit
        if accepted:
            window.append(now)
            self.served += 1
        else:
            self.refused.append((key, now))
        retry = 0.0 if accepted else window[0] + self.window - now
        info = None
        if self.headers:
            full_in = window[-1] + self.window - now if window else 0.0
            info = RateLimitInfo(Budget(self.limit, self.limit - len(window), full_in), Budget())
        return accepted, retry, info

    def max_refused_per_window(self) -> int:
        worst = 0
        for key in {k for k, _ in self.refused}:
            times = [t for k, t in self.refused if k == key]
            for i, start in enumerate(times):
                worst = max(worst, sum(1 for t in times[i:] if t - start < self.window))
        return worst


@dataclass
class SimResult:
    makespan: float
    served: int
    refused: int
    worst_window: int
    book: BudgetBook


def simulate(
    *,
    items: int = 24,
    calls: int = 2,
    parallel: int = 10,
    keys: int = 3,
    limit: int = 4,
    window: float = 10.0,
    latency: float = 0.5,
    headers: bool = True,
    per_key_concurrency: int = 4,
    rpm: int | None = None,
    restart: float = 0.2,
    send_delay: float = 0.02,
    horizon: float = 3600.0,
) -> SimResult:
    clock = FakeClock()
    pool = FakePool(clock, [f"k{i}" for i in range(1, keys + 1)], per_key_concurrency, rpm)
    server = SimServer(clock, limit, window, headers)
    book = BudgetBook({"openai": pool}, clock=clock, console=Lines())
    seq = itertools.count()
    events: list[tuple[float, int, str, tuple[object, ...]]] = []

    def at(time: float, kind: str, *data: object) -> None:
        heapq.heappush(events, (time, next(seq), kind, data))

    waiting: list[tuple[int, int]] = []  # (item, call index) wanting a permit, in order
    started = min(parallel, items)
    for item in range(started):
        waiting.append((item, 0))
    done = 0
    end = 0.0
    ticks: set[float] = set()
    while done < items:
        # grant whatever the book allows now, drafts (call 0) first
        waiting.sort(key=lambda w: (w[1] != 0,))
        progressed = True
        while waiting and progressed:
            progressed = False
            item, index = waiting[0]
            result = book.try_acquire("openai")
            if isinstance(result, Grant):
                waiting.pop(0)
                at(clock.now + send_delay, "send", result, item, index)
                progressed = True
            else:
                if result == float("inf"):  # maybe every key cools in the pool: the book polls
                    result = min((t for t in pool.cooling.values() if t > clock.now), default=result)
                if result != float("inf") and result not in ticks:
                    ticks.add(result)
                    at(result, "tick")
        if not events:
            raise AssertionError("simulation stalled")
        clock.now, _, kind, data = heapq.heappop(events)
        if clock.now > horizon:
            raise AssertionError("simulation did not finish")
        if kind == "send":
            grant, item, index = data
            assert isinstance(grant, Grant) and isinstance(item, int) and isinstance(index, int)
            accepted, retry, info = server.admit(grant.key)
            sent = clock.now
            if accepted:
                at(clock.now + latency, "answer", grant, item, index, sent, info)
            else:
                book.complete(grant.id, Outcome.RATE_LIMITED, info, sent, retry)
                pool.cooling[grant.key] = clock.now + retry
                at(clock.now + restart, "retry", item, index)
        elif kind == "answer":
            grant, item, index, sent, info = data
            assert isinstance(grant, Grant) and isinstance(item, int) and isinstance(index, int)
            book.complete(grant.id, Outcome.OK, info, sent, None)  # type: ignore[arg-type]
            if index + 1 < calls:
                waiting.append((item, index + 1))
            else:
                done += 1
                end = clock.now
                if started < items:
                    waiting.append((started, 0))
                    started += 1
        elif kind == "retry":
            item, index = data
            waiting.append((item, index))  # type: ignore[arg-type]
    return SimResult(end, server.served, len(server.refused), server.max_refused_per_window(), book)


# -- several runs on one pool, sharing the key ledger -------------------------------------


@dataclass
class MeaningServer(SimServer):
    """SimServer whose `x-ratelimit-reset` means one of the things providers and gateways
    send: `whole` (until the window is whole again, OpenAI's documented meaning),
    `next-slot` (until the oldest counted call leaves), `fixed` (the end of a fixed window,
    which is then also how calls are counted), or `none` (no headers at all)."""

    reset: str = "whole"

    def admit(self, key: str) -> tuple[bool, float, RateLimitInfo | None]:
        if self.reset != "fixed":
            accepted, retry, _ = super().admit(key)
            window = self.arrivals[key]
            now = self.clock()
            if self.reset == "none":
                return accepted, retry, None
            if self.reset == "whole":
                reset = window[-1] + self.window - now if window else 0.0
            else:  # next-slot
                reset = window[0] + self.window - now if window else 0.0
            return (
                accepted,
                retry,
                RateLimitInfo(Budget(self.limit, self.limit - len(window), reset), Budget()),
            )
        now = self.clock()
        start = now - now % self.window
        calls = self.arrivals.setdefault(key, deque())
        while calls and calls[0] < start:
            calls.popleft()
        accepted = len(calls) < self.limit
        if accepted:
            calls.append(now)
            self.served += 1
        else:
            self.refused.append((key, now))
        reset = start + self.window - now
        return (
            accepted,
            0.0 if accepted else reset,
            RateLimitInfo(Budget(self.limit, self.limit - len(calls), reset), Budget()),
        )


@dataclass
class RunsResult:
    makespan: float
    served: int
    refused: int
    refused_per_run_key: dict[tuple[int, str], int]
    worst_window: int
    refusals: list[tuple[str, float]]  # (key, when), every run's


def simulate_runs(
    ledger_path: object,
    *,
    runs: int = 2,
    reset: str = "whole",
    shared: bool = True,
    items: int = 24,
    calls: int = 2,
    parallel: int = 10,
    keys: int = 3,
    limit: int = 4,
    window: float = 10.0,
    latency: float = 0.3,
    per_key_concurrency: int = 4,
    restart: float = 0.2,
    send_delay: float = 0.02,
    horizon: float = 3600.0,
) -> RunsResult:
    """`runs` batches started at once on the same keys, each with its own book (its own
    process in real life), sharing one key ledger when `shared` (the old behaviour without)."""
    from pathlib import Path

    from agentos.backend.local.key_ledger import SqliteKeyLedger

    clock = FakeClock()
    server = MeaningServer(clock, limit, window, reset != "none", reset=reset)
    names = [f"k{i}" for i in range(1, keys + 1)]
    pools = [FakePool(clock, names, per_key_concurrency) for _ in range(runs)]
    books = []
    for r in range(runs):
        ledger = None
        if shared:
            ledger = SqliteKeyLedger(Path(str(ledger_path)), run=f"run-{r}", clock=clock)
            ledger.open()
        books.append(
            BudgetBook({"openai": pools[r]}, clock=clock, console=Lines(), ledger=ledger, wall=clock)
        )
    seq = itertools.count()
    events: list[tuple[float, int, str, tuple[object, ...]]] = []

    def at(time: float, kind: str, *data: object) -> None:
        heapq.heappush(events, (time, next(seq), kind, data))

    waiting: list[list[tuple[int, int]]] = [
        [(i, 0) for i in range(min(parallel, items))] for _ in range(runs)
    ]
    started = [min(parallel, items)] * runs
    done = [0] * runs
    refused: dict[tuple[int, str], int] = {}
    end = 0.0
    ticks: set[float] = set()
    order = itertools.cycle(range(runs))
    while sum(done) < runs * items:
        for _ in range(runs):  # every run asks, in turn
            r = next(order)
            waiting[r].sort(key=lambda w: (w[1] != 0,))
            while waiting[r]:
                item, index = waiting[r][0]
                result = books[r].try_acquire("openai")
                if isinstance(result, Grant):
                    waiting[r].pop(0)
                    at(clock.now + send_delay, "send", r, result, item, index)
                    continue
                if result == float("inf"):
                    result = min(
                        (t for t in pools[r].cooling.values() if t > clock.now), default=clock.now + 0.25
                    )
                if result not in ticks:
                    ticks.add(result)
                    at(result, "tick")
                break
        if not events:
            raise AssertionError("simulation stalled")
        clock.now, _, kind, data = heapq.heappop(events)
        if clock.now > horizon:
            raise AssertionError("simulation did not finish")
        if kind == "send":
            r, grant, item, index = data
            assert isinstance(r, int) and isinstance(grant, Grant) and isinstance(item, int)
            accepted, retry, info = server.admit(grant.key)
            sent = clock.now
            if accepted:
                at(clock.now + latency, "answer", r, grant, item, index, sent, info)
            else:
                refused[(r, grant.key)] = refused.get((r, grant.key), 0) + 1
                books[r].complete(grant.id, Outcome.RATE_LIMITED, info, sent, retry)
                pools[r].cooling[grant.key] = clock.now + retry
                at(clock.now + restart, "retry", r, item, index)
        elif kind == "answer":
            r, grant, item, index, sent, info = data
            assert (
                isinstance(r, int)
                and isinstance(grant, Grant)
                and isinstance(item, int)
                and isinstance(index, int)
            )
            books[r].complete(grant.id, Outcome.OK, info, sent, None)  # type: ignore[arg-type]
            if index + 1 < calls:
                waiting[r].append((item, index + 1))
            else:
                done[r] += 1
                end = clock.now
                if started[r] < items:
                    waiting[r].append((started[r], 0))
                    started[r] += 1
        elif kind == "retry":
            r, item, index = data
            waiting[r].append((item, index))  # type: ignore[arg-type]
    for book in books:
        if book.ledger is not None:
            book.ledger.close()
    return RunsResult(
        end, server.served, len(server.refused), refused, server.max_refused_per_window(), server.refused
    )
