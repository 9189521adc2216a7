"""The key ledger's interface: one ledger per key, shared by every run that uses it (issue 22).

A key's rate limit belongs to the key, not to a run: two runs on the same keys must see
each other's calls, or pacing turns back into learning by 429. The ledger holds, per key:
its cool-down, quota and rejection marks; what was learned of its limit; every call slot that
any run holds on it; and which run's call has waited longest. Each run keeps its own
fine-grained model in memory (`keys.key_budget`) and reads the other runs' slots from here.

- A key is named by a fingerprint of its secret (`fingerprint`), never by the secret: the
  same key under two names is one ledger entry. Names and providers are only labels.
- Times are wall-clock seconds (`time.time()`), so that runs and machines agree on them.
- A run killed with `kill -9` holds its in-flight slots only until the provider would have
  let them go (`granted_at + window`), since its process is gone.

Implemented for one machine by `backend.local.key_ledger` (SQLite, ADR 0011), and for a
team by the Postgres backend.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

KEEP_HISTORY_S = 3600.0  # answered calls are kept an hour: `agentos keys` shows the last hour
REJECTED_FOR_S = 3600.0  # a rejected key is skipped by new runs for an hour (a new secret: at once)
MAX_TEXT = 300  # names, providers and reasons stored: bounded
WAITER_STALE_S = 2.0  # a waiting run refreshes its mark every 0.25 s; older marks are passed over
WAITER_SLACK_S = 0.05  # two calls that arrived this close together are a tie: no one yields


def fingerprint(secret: str) -> str:
    """A key's identity in the ledger: 32 hex digits of a salted SHA-256, never the key."""
    return hashlib.sha256(b"agentos-key-ledger-v1\0" + secret.encode("utf-8", "surrogatepass")).hexdigest()[
        :32
    ]


@dataclass(frozen=True)
class KeyRef:
    """A key as the ledger knows it: its fingerprint, and labels to show."""

    fp: str
    provider: str
    name: str


@dataclass(frozen=True)
class KeyMarks:
    cooldown_until: float = 0.0
    quota_until: float = 0.0
    rejected_at: float = 0.0
    rejected: str | None = None


@dataclass(frozen=True)
class KeyModel:
    """What was learned of a key's limit: `limit` calls per `window_s` seconds, and whether a
    surprise 429 made pacing strict (a slot is held a whole window, whatever `reset` said)."""

    limit: int | None
    window_s: float | None
    limit_from: str
    strict: bool = False


@dataclass(frozen=True)
class Slot:
    """A call another run holds on a key: in flight (`expires_at` None) or until it expires."""

    run: str
    granted_at: float
    expires_at: float | None
    outcome: str | None = None  # None in flight; "rate_limited": refused, so not counted


@dataclass(frozen=True)
class Capacity:
    """What a set of keys can carry: `calls_per_s` (None: some limit not known yet) and the
    median latency of a call (None: no answer seen), from `samples` answers."""

    calls_per_s: float | None
    latency_s: float | None
    samples: int


@dataclass(frozen=True)
class LedgerCall:
    """A call any run made on a key, as the ledger keeps it for an hour: for the dashboard's
    key pool over time. `outcome` None: still in flight; `latency_s` None: not answered."""

    key: KeyRef
    run: str  # the run's label: its pid and what it is (`pid 4242 (lld-workflow)`)
    granted_at: float
    latency_s: float | None
    outcome: str | None


@dataclass(frozen=True)
class KeyActivity:
    """One key as `agentos keys` shows it."""

    key: KeyRef
    marks: KeyMarks
    model: KeyModel | None
    calls_last_hour: int
    refused_last_hour: int
    runs_now: tuple[str, ...]


class KeyAdmission(Protocol):
    """One key's ledger while a run decides whether to send a call on it (`KeyLedger.admission`):
    what it reads here is not stale, and no other run can hold a slot on the key meanwhile."""

    def model(self) -> KeyModel | None: ...

    def blocked_until(self) -> float:
        """Until when a run marked the key cooling or out of quota (0: not marked)."""
        ...

    def others(self, now: float, window_s: float | None) -> list[Slot]: ...

    def hold(self, call: int, granted_at: float) -> None: ...


@dataclass(frozen=True)
class BoundAdmission:
    """A `KeyAdmission` made of a store's own reads and write, bound to the connection and
    the transaction that hold the key's lock."""

    model: Callable[[], KeyModel | None]
    blocked_until: Callable[[], float]
    others: Callable[[float, float | None], list[Slot]]
    hold: Callable[[int, float], None]


def model_from_row(row: Sequence[object] | None) -> KeyModel | None:
    """(limit_n, window_s, limit_from, strict) as a store holds them: bounded, or None."""
    if row is None or row[2] is None:
        return None
    limit, window, source, strict = row
    count = limit if isinstance(limit, int) and 0 < limit <= 10**9 else None
    seconds = float(window) if isinstance(window, int | float) and 0 < window < 86400 else None
    return KeyModel(count, seconds, bounded_text(source, 20), bool(strict))


class KeyLedger(Protocol):
    """Where every run's knowledge of its keys meets. Implemented here for one machine
    (SQLite) and by the Postgres backend for a team."""

    run: str

    def register(self, keys: Sequence[KeyRef]) -> None: ...

    def marks(self, fps: Sequence[str]) -> dict[str, KeyMarks]: ...

    def mark(
        self,
        key: KeyRef,
        *,
        cooldown_until: float = 0.0,
        quota_until: float = 0.0,
        rejected: str | None = None,
    ) -> None: ...

    def model(self, fp: str) -> KeyModel | None: ...

    def learn(self, key: KeyRef, model: KeyModel) -> None: ...

    def hold(self, key: KeyRef, call: int, granted_at: float) -> None: ...

    def admission(self, key: KeyRef) -> AbstractContextManager[KeyAdmission]:
        """The key's lock, for one decision: read every run's slots and what was learned, then
        hold a slot or not. Two runs that both saw the last free slot cannot both take it, and
        two runs starting together probe an unknown limit one call at a time."""
        ...

    def settle(
        self, fp: str, call: int, expires_at: float, outcome: str, latency_s: float | None = None
    ) -> None: ...

    def capacity(self, fps: Sequence[str], now: float) -> Capacity: ...

    def others(self, fp: str, now: float, window_s: float | None) -> list[Slot]: ...

    def activity(self, now: float) -> list[KeyActivity]: ...

    def wait(self, provider: str, since: float) -> None: ...

    def unwait(self, provider: str) -> None: ...

    def earlier_waiter(self, provider: str, since: float) -> bool: ...

    def open(self) -> None: ...

    def prune(self, now: float) -> None: ...

    def close(self) -> None: ...


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finite(value: object) -> float:
    """A time or a number read back from the store: finite, else 0 (a hostile or corrupt row)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def as_count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**12 else None


def bounded_text(value: object, limit: int = MAX_TEXT) -> str:
    return str(value)[:limit]
