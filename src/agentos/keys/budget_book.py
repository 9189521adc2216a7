"""The coordinator's book of key budgets: the single source of truth for "may this call go now?".

Workers ask for a permit before each call (through `permit_server`). The book grants the
call whichever key of that provider can take it now: a key that is usable in the pool (not
cooling, out of quota or rejected) and whose `KeyBudget` has room. Calls wait inside the
book, so a worker waits without a restart, and the pool never idles while a call waits: the
head of the queue is granted the moment any key frees a slot. Urgent calls (drafts, which
lead to more calls) go before the others (reviews, often an item's last), then arrival order:
this way the last items of a batch do not trail one window behind. When the pool is what
limits the run, the book says so, at most every NOTE_EVERY_S seconds.

With a key ledger (`backend.key_ledger`), the book is one of many: before it weighs a key it reads
the other runs' slots on it and what they learned of its limit, and it records its own
grants, answers and lessons there, so that every run on the key paces against all of them.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agentos.backend.key_ledger import KeyLedger, KeyModel, KeyRef, Slot, fingerprint
from agentos.core.printing import STDOUT, Console
from agentos.core.retry_hints import clamp_until
from agentos.keys.key_budget import INF, MAX_WINDOW_S, KeyBudget
from agentos.keys.sources import Credential
from agentos.llm.errors import AuthError, LLMError
from agentos.llm.rate_limits import Outcome, RateLimitInfo

MAX_WAIT_S = 0.25  # a waiting call re-checks at least this often (cancellation, cooled keys)
NOTE_EVERY_S = 10.0
NOTE_AFTER_S = 1.0  # a wait shorter than this is not worth a line
READ_EVERY_S = 0.05  # the ledger's view of a key is read at most this often
SLOT_AHEAD_S = MAX_WINDOW_S + 60.0  # the furthest ahead another run's slot can rightly end


class KeyPool(Protocol):
    per_key_concurrency: int

    def credentials(self) -> Sequence[Credential]: ...

    def is_usable(self, name: str) -> bool: ...

    def mark(self, name: str, error: LLMError) -> None: ...

    def hold_off(self, name: str, until: float) -> None: ...


@dataclass(frozen=True)
class Grant:
    id: int
    provider: str
    key: str
    secret: str
    waited: float


class BudgetBook:
    def __init__(
        self,
        pools: Mapping[str, KeyPool],
        *,
        rpm: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        console: Console = STDOUT,
        ledger: KeyLedger | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.pools = dict(pools)
        self.ledger = ledger
        self._offset = wall() - clock()  # ledger times (wall clock) to this book's clock
        self._read_at: dict[tuple[str, str], float] = {}  # when each key's shared state was read
        self._told: dict[tuple[str, str], tuple[int | None, float | None, str, bool]] = {}
        self.rpm = rpm  # for keys that declare none themselves
        self.clock = clock
        self.console = console
        self._cond = threading.Condition()
        self._closed = False
        self._ids = itertools.count(1)
        self._budgets: dict[tuple[str, str], KeyBudget] = {}
        self._grants: dict[int, tuple[str, str]] = {}
        self._queues: dict[str, list[tuple[int, int]]] = {p: [] for p in self.pools}
        self._head_since: dict[str, float] = {}
        self._noted: dict[str, float] = {}
        self.notes = 0
        self.waiting = 0  # calls in the queues now, read without the lock (the live panel)

    # -- permits ---------------------------------------------------------------------
    def try_acquire(self, provider: str, tokens: int = 0) -> Grant | float:
        """A grant now, or the time the best key is ready (inf: only an answer frees one)."""
        with self._cond:
            return self._try(provider, tokens, self.clock(), 0.0)

    def acquire(
        self,
        provider: str,
        tokens: int = 0,
        cancelled: Callable[[], bool] = lambda: False,
        urgent: bool = True,
    ) -> Grant | None:
        """Wait for a key with room: urgent calls first, then first come first served.
        None: the book closed, the caller went away (`cancelled`), or no such provider."""
        if provider not in self.pools:
            return None
        with self._cond:
            ticket = (0 if urgent else 1, next(self._ids))
            queue = self._queues[provider]
            queue.append(ticket)
            queue.sort()
            self.waiting += 1
            started = self.clock()
            try:
                while not self._closed and not cancelled():
                    now = self.clock()
                    wait = MAX_WAIT_S
                    if queue[0] == ticket:
                        self._head_since.setdefault(provider, now)
                        if self._after_other_runs(provider, started):
                            result: Grant | float = now + MAX_WAIT_S
                        else:
                            result = self._try(provider, tokens, now, now - started)
                        if isinstance(result, Grant):
                            return result
                        self._mark_waiting(provider, started)
                        self._note(provider, now)
                        wait = min(MAX_WAIT_S, max(0.001, result - now))
                    self._cond.wait(wait)
                return None
            finally:
                if queue and queue[0] == ticket:
                    self._head_since.pop(provider, None)
                    self._stop_waiting(provider)
                queue.remove(ticket)
                self.waiting -= 1
                self._cond.notify_all()

    def complete(
        self,
        grant_id: int,
        outcome: Outcome,
        info: RateLimitInfo | None = None,
        sent_at: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        with self._cond:
            where = self._grants.pop(grant_id, None)
            if where is not None:
                budget = self._budgets[where]
                if outcome is Outcome.RATE_LIMITED:  # it learns from every run's sends: read them now
                    self._refresh(where)
                now = self.clock()
                granted_at = budget.granted_at(grant_id)
                frees_at = budget.complete(grant_id, now, outcome, info, sent_at, retry_after)
                self._record(
                    where, grant_id, now if frees_at is None else frees_at, outcome.value, granted_at
                )
                if outcome is Outcome.REJECTED:  # no further call is granted this key
                    provider, name = where
                    self.pools[provider].mark(
                        name, AuthError(f"{provider}: key {name} rejected by the provider")
                    )
            self._cond.notify_all()

    def abandon(self, grant_id: int) -> None:
        """The worker holding this grant went away before reporting its answer."""
        with self._cond:
            where = self._grants.pop(grant_id, None)
            if where is not None:
                now = self.clock()
                frees_at = self._budgets[where].abandon(grant_id, now)
                self._record(where, grant_id, now if frees_at is None else frees_at, "abandoned")
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reporting -------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per provider and key: calls granted, served, refused, and the limit in use."""
        with self._cond:
            out: dict[str, dict[str, dict[str, Any]]] = {}
            for (provider, name), b in sorted(self._budgets.items()):
                out.setdefault(provider, {})[name] = {
                    "granted": b.granted,
                    "served": b.served,
                    "sent": b.sent,
                    "refused": b.refused,
                    "limit": b.limit,
                    "window_s": round(b.window, 3) if b.window is not None else None,
                    "limit_from": b.source.value,
                }
            return out

    def describe(self, provider: str) -> str:
        with self._cond:
            return self._describe(provider, self.clock())

    # -- internals -------------------------------------------------------------------
    def _budget(self, provider: str, cred: Credential) -> KeyBudget:
        budget = self._budgets.get((provider, cred.name))
        if budget is None:
            budget = KeyBudget(
                cred.name,
                max_in_flight=self.pools[provider].per_key_concurrency,
                rpm=cred.rpm or self.rpm,
            )
            self._budgets[(provider, cred.name)] = budget
        return budget

    def _usable(self, provider: str) -> list[tuple[Credential, KeyBudget]]:
        pool = self.pools[provider]
        usable = [(c, self._budget(provider, c)) for c in pool.credentials() if pool.is_usable(c.name)]
        for cred, budget in usable:
            self._share(provider, cred, budget)
        return usable

    # -- the ledger: other runs' slots and lessons in, ours out ---------------------
    def _share(self, provider: str, cred: Credential, budget: KeyBudget) -> None:
        """Read the other runs' slots on this key and what they learned, at most every READ_EVERY_S."""
        if self.ledger is None:
            return
        now = self.clock()
        if now - self._read_at.get((provider, cred.name), -INF) < READ_EVERY_S:
            return
        self._read_at[(provider, cred.name)] = now
        fp = fingerprint(cred.secret)
        try:
            model = self.ledger.model(fp)
            slots = self.ledger.others(fp, now + self._offset, budget.window)
        except Exception as exc:
            self._ledger_failed(exc)
            return
        self._apply(budget, model, slots, now)

    def _apply(self, budget: KeyBudget, model: KeyModel | None, slots: list[Slot], now: float) -> None:
        if model is not None:
            budget.adopt(model.limit, model.window_s, model.limit_from, model.strict, now)
        wall = now + self._offset  # a store is untrusted: no slot is held past the longest window
        budget.shared = [
            (
                s.granted_at - self._offset,
                INF if s.expires_at is None else clamp_until(s.expires_at, wall, SLOT_AHEAD_S) - self._offset,
            )
            for s in slots
        ]
        budget.hold_shared_for_window()

    def _refresh(self, where: tuple[str, str]) -> None:
        provider, name = where
        cred = next((c for c in self.pools[provider].credentials() if c.name == name), None)
        if cred is not None:
            self._read_at.pop(where, None)
            self._share(provider, cred, self._budgets[where])

    def _record(
        self,
        where: tuple[str, str],
        grant_id: int,
        frees_at: float,
        outcome: str,
        granted_at: float | None = None,
    ) -> None:
        """Our call's slot, and what we learned of its key, for the other runs."""
        if self.ledger is None:
            return
        provider, name = where
        cred = next((c for c in self.pools[provider].credentials() if c.name == name), None)
        if cred is None:
            return
        model = self._budgets[where].model()
        try:
            latency = self.clock() - granted_at if granted_at is not None else None
            ref = KeyRef(fingerprint(cred.secret), provider, cred.name)
            self.ledger.settle(ref.fp, grant_id, frees_at + self._offset, outcome, latency)
            blocked = self._budgets[where].blocked_until
            if outcome == Outcome.RATE_LIMITED.value and blocked > self.clock():
                # Every run's next admission on the key sees it now, not when the worker's
                # error has reached a pool (hundreds of ms under load); our pool first, so that
                # it does not take its own cool-down for another run's.
                self.pools[provider].hold_off(name, blocked + self._offset)
                self.ledger.mark(ref, cooldown_until=blocked + self._offset)
            if model != self._told.get(where) and model[0] is not None:
                self._told[where] = model
                self.ledger.learn(ref, KeyModel(model[0], model[1], model[2], model[3]))
        except Exception as exc:
            self._ledger_failed(exc)

    def _after_other_runs(self, provider: str, since: float) -> bool:
        """Calls wait in arrival order across runs: our oldest call yields while another
        run's has waited longer (it is granted by its own run's book, on its next look)."""
        if self.ledger is None:
            return False
        try:
            return self.ledger.earlier_waiter(provider, since + self._offset)
        except Exception as exc:
            self._ledger_failed(exc)
            return False

    def _mark_waiting(self, provider: str, since: float) -> None:
        """Our oldest call has to wait: say so (and since when) to the other runs."""
        if self.ledger is not None:
            try:
                self.ledger.wait(provider, since + self._offset)
            except Exception as exc:
                self._ledger_failed(exc)

    def _stop_waiting(self, provider: str) -> None:
        if self.ledger is not None:
            try:
                self.ledger.unwait(provider)
            except Exception as exc:
                self._ledger_failed(exc)

    def _ledger_failed(self, exc: Exception) -> None:
        self.console.line(
            f"[COORDINATOR] Warning: the key ledger failed ({exc}); pacing goes on for this run alone"
        )
        self.ledger = None

    def _try(self, provider: str, tokens: int, now: float, waited: float) -> Grant | float:
        ready: list[tuple[Credential, KeyBudget]] = []
        earliest = INF
        for cred, budget in self._usable(provider):
            at = budget.ready_at(now, tokens)
            if at > now:
                earliest = min(earliest, at)
            else:
                ready.append((cred, budget))
        # The key with the most room first, then the one least recently used.
        ready.sort(key=lambda cb: (cb[1].headroom(now), -cb[1].last_grant), reverse=True)
        for cred, budget in ready:
            grant_id = next(self._ids)
            if not self._claim(provider, cred, budget, grant_id, now, tokens):
                earliest = min(earliest, budget.ready_at(now, tokens))
                continue
            budget.grant(grant_id, now, tokens)
            self._grants[grant_id] = (provider, cred.name)
            return Grant(grant_id, provider, cred.name, cred.secret, waited)
        return earliest

    def _claim(
        self, provider: str, cred: Credential, budget: KeyBudget, grant_id: int, now: float, tokens: int
    ) -> bool:
        """Decide under the key's lock in the ledger, on a fresh view of every run's slots:
        two runs never both take the last free slot, and an unknown limit is probed one call
        per PROBE_GAP_S across every run. False: the fresh view says not yet."""
        if self.ledger is None:
            return True
        try:
            with self.ledger.admission(KeyRef(fingerprint(cred.secret), provider, cred.name)) as seat:
                # A store is untrusted: a hostile or corrupt mark is bounded as the pool bounds it.
                blocked = clamp_until(seat.blocked_until(), now + self._offset) - self._offset
                if (
                    blocked > now
                ):  # another run was refused on it just now: the pool hears of it within a second
                    budget.block(blocked)
                    return False
                self._apply(budget, seat.model(), seat.others(now + self._offset, budget.window), now)
                self._read_at[(provider, cred.name)] = now
                if budget.ready_at(now, tokens) > now:
                    return False
                seat.hold(grant_id, now + self._offset)
        except Exception as exc:
            self._ledger_failed(exc)
        return True

    def _note(self, provider: str, now: float) -> None:
        since = self._head_since.get(provider, now)
        last = self._noted.get(provider, -INF)
        if now - since < NOTE_AFTER_S or now - last < NOTE_EVERY_S:
            return
        self._noted[provider] = now
        self.notes += 1
        waiting = len(self._queues[provider])
        self.console.line(
            f"[COORDINATOR] pool at capacity: {self._describe(provider, now)}; "
            f"{waiting} call{'s' if waiting != 1 else ''} waiting"
        )

    def _describe(self, provider: str, now: float) -> str:
        creds = list(self.pools[provider].credentials())
        usable = self._usable(provider)
        cooling = len(creds) - len(usable)
        keys = f"{len(usable)} {provider} key{'s' if len(usable) != 1 else ''}"
        extra = f" ({cooling} more cooling down, out of quota or rejected)" if cooling else ""
        if not usable:
            return f"no usable {provider} key{extra}"
        known = [b for _, b in usable if b.limit is not None and b.window]
        if len(known) < len(usable):
            return f"{keys}, {len(usable) - len(known)} with limits not known yet{extra}"
        windows = {round(b.window or 0) for b in known}
        total = sum(b.limit or 0 for b in known)
        if len(windows) == 1:
            rate = f"{total} req/{windows.pop()}s"
        else:
            rate = f"{math.floor(sum((b.limit or 0) * 60 / (b.window or 60) for b in known))} req/min"
        return f"{rate} across {keys}{extra}"
