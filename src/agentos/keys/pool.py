"""The shared pool of API keys: reservation, cool-downs, quotas, rejected keys.

Workers never read credential files: they are handed a reserved key and give it back
when their item ends. Cool-downs, quota marks and rejections go to the key ledger
(`backend.key_ledger`), shared by every run of the home: a run started a minute later, or running
beside this one, does not hammer a key that is still cooling, and it sees this run's marks
within a second. The clock is injected, so backoff is testable without sleeping.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from agentos.backend.key_ledger import KeyLedger, KeyRef, fingerprint
from agentos.core.durations import clock_time
from agentos.core.printing import STDOUT, Console
from agentos.core.retry_hints import clamp_reset_at, clamp_retry_after, clamp_until
from agentos.keys.sources import Credential
from agentos.llm.errors import AuthError, LLMError, QuotaExhausted, RateLimited

T = TypeVar("T", str, Credential)

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 300.0
DEFAULT_QUOTA_S = 3600.0
REFRESH_INTERVAL_S = 1.0


@dataclass
class _Key:
    cred: Credential
    in_use: int = 0
    cooldown_until: float = 0.0
    quota_until: float = 0.0
    disabled: str | None = None
    strikes: int = 0  # consecutive rate limits, for exponential backoff
    last_released: float = 0.0
    rate_limited: int = 0  # 429s this run, for the summary

    @functools.cached_property
    def ref(self) -> KeyRef:
        """The key as the ledger knows it: by a fingerprint of its secret."""
        return KeyRef(fingerprint(self.cred.secret), self.cred.provider or "default", self.cred.name)


@dataclass(frozen=True)
class PoolStatus:
    """A pool at a glance (the live panel's pool line). Times are wall-clock seconds."""

    total: int = 0
    usable: int = 0
    cooling: int = 0  # cooling down after a 429, or out of quota
    cooling_until: float | None = None  # when the first cooling key is usable again
    rejected: int = 0
    rate_limited: int = 0  # 429s this run
    waiting: int = 0  # calls waiting in the budget book for a key with room (paced runs)

    def __add__(self, other: PoolStatus) -> PoolStatus:
        untils = [u for u in (self.cooling_until, other.cooling_until) if u is not None]
        return PoolStatus(
            self.total + other.total,
            self.usable + other.usable,
            self.cooling + other.cooling,
            min(untils) if untils else None,
            self.rejected + other.rejected,
            self.rate_limited + other.rate_limited,
            self.waiting + other.waiting,
        )


@dataclass(frozen=True)
class DeadKey:
    """A key that can never serve this run again, and where to fix it."""

    name: str
    source: str  # `$OPENAI_API_KEY` or `credentials file <path>`
    reason: str  # the provider's (redacted) answer

    def line(self) -> str:
        where = self.source if self.source == "built in" else f"from {self.source}"
        return f"{self.name} ({where}) was rejected: {self.reason}"


class CredentialCoordinator(Generic[T]):
    """A thread-safe pool. `acquire` returns one of the items you gave (str or Credential).

    Plain strings are named `key-1`, `key-2`, ... so output never shows the key itself.
    """

    def __init__(
        self,
        credentials: Sequence[T],
        *,
        per_key_concurrency: int = 1,
        clock: Callable[[], float] = time.time,
        ledger: KeyLedger | None = None,
        source: Callable[[], Sequence[Credential]] | None = None,
        rng: random.Random | None = None,
        console: Console = STDOUT,
    ) -> None:
        if per_key_concurrency < 1:
            raise ValueError("per_key_concurrency must be at least 1")
        self.per_key_concurrency = per_key_concurrency
        self.console = console  # where cool-downs and reloads are said; a run passes its own
        self._clock = clock
        self._ledger = ledger
        self._last_marks = 0.0
        self._source = source
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._closed = False
        self._keys: dict[str, _Key] = {}
        self._original: dict[str, T] = {}
        self._last_refresh = 0.0
        for index, item in enumerate(credentials):
            cred = item if isinstance(item, Credential) else Credential(f"key-{index + 1}", item)
            if cred.name in self._keys:
                raise ValueError(f"duplicate credential name {cred.name!r}")
            self._keys[cred.name] = _Key(cred)
            self._original[cred.name] = item
        with self._cond:
            self._register(list(self._keys.values()))
            self._load_marks(announce=True)

    # -- reservation ---------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> T | None:
        """A free key, or None when `timeout` passes (or the pool is closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                self._maybe_refresh()
                key = self._pick()
                if key is not None:
                    key.in_use += 1
                    return self._original[key.cred.name]
                wait = REFRESH_INTERVAL_S
                earliest = self._earliest_free_locked()
                if earliest is not None:
                    wait = min(wait, max(0.01, earliest - self._clock()))
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = min(wait, remaining)
                self._cond.wait(wait)
        return None

    def release(self, key: T, rate_limited: bool = False, backoff_seconds: float | None = None) -> None:
        """Give `key` back. A rate-limited key cools down for `backoff_seconds` (or backoff)."""
        with self._cond:
            entry = self._entry(key)
            entry.in_use = max(0, entry.in_use - 1)
            entry.last_released = self._clock()
            if rate_limited:
                self._cool(entry, backoff_seconds)
            else:
                entry.strikes = 0
            self._cond.notify_all()

    def _cool(self, entry: _Key, backoff_seconds: float | None) -> None:
        entry.strikes += 1
        entry.rate_limited += 1
        seconds = clamp_retry_after(backoff_seconds)  # from a provider: untrusted
        if seconds is None:
            seconds = self._backoff(entry.strikes)
        entry.cooldown_until = max(entry.cooldown_until, self._clock() + seconds)
        self.console.line(
            f"[COORDINATOR] Credential {entry.cred.name} rate-limited; cooling down for {seconds:.1f}s"
        )
        self._save_marks(entry)

    def report(self, key: T, error: LLMError) -> None:
        """Release `key` after a provider error, applying what the error means for it."""
        if isinstance(error, RateLimited):
            self.release(key, rate_limited=True, backoff_seconds=error.retry_after)
            return
        with self._cond:
            entry = self._entry(key)
            entry.in_use = max(0, entry.in_use - 1)
            self._mark(entry, error)
            self._cond.notify_all()

    def mark(self, name: str, error: LLMError) -> None:
        """Apply what `error` means to the key named `name`, which this caller does not hold
        (a call made with another key of the pool than the item's own). Unknown names: ignored."""
        with self._cond:
            entry = self._keys.get(name)
            if entry is None:
                return
            if isinstance(error, RateLimited):
                self._cool(entry, error.retry_after)
            else:
                self._mark(entry, error)
            self._cond.notify_all()

    def hold_off(self, name: str, until: float) -> None:
        """The budget book saw a 429 on this key: it cools from now (wall-clock `until`), in
        silence. The worker's error, which reaches the pool later, says it and counts it."""
        with self._cond:
            entry = self._keys.get(name)
            if entry is not None:
                entry.cooldown_until = max(entry.cooldown_until, until)

    def _mark(self, entry: _Key, error: LLMError) -> None:
        if isinstance(error, QuotaExhausted):
            reset_at = clamp_reset_at(error.reset_at, self._clock())
            entry.quota_until = reset_at or self._clock() + DEFAULT_QUOTA_S
            self.console.line(
                f"[COORDINATOR] Credential {entry.cred.name} quota exhausted; out until "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(entry.quota_until))}"
            )
            self._save_marks(entry)
        elif isinstance(error, AuthError):
            first = entry.disabled is None  # the permit channel reports it first, the item after
            entry.disabled = str(error) or "rejected by the provider"
            if first:
                self.console.line(
                    f"[COORDINATOR] Credential {entry.cred.name} was rejected (auth error); "
                    f"disabled for this run. Check or replace it ({entry.cred.source()})."
                )
                self._save_marks(entry, rejected=entry.disabled)

    # -- introspection -------------------------------------------------------------
    def usable_count(self) -> int:
        """Keys that are enabled and not cooling down or out of quota (in use counts)."""
        with self._cond:
            self._maybe_refresh()
            now = self._clock()
            return sum(1 for k in self._keys.values() if self._usable(k, now))

    def dead_keys(self) -> list[DeadKey]:
        """Every key, when none can ever serve this run again (all rejected); else []."""
        with self._cond:
            self._maybe_refresh()
            if not self._keys or any(k.disabled is None for k in self._keys.values()):
                return []
            return [DeadKey(k.cred.name, k.cred.source(), k.disabled or "") for k in self._keys.values()]

    def earliest_available(self) -> float | None:
        """Clock time when the first cooling key frees up; None if none will by itself."""
        with self._cond:
            return self._earliest_free_locked()

    def status(self, wait: float = 0.02) -> PoolStatus | None:
        """Counts for the live panel, from memory (no ledger read, no reload); None when the
        pool is busy for longer than `wait`: the panel keeps its last line, the run never waits."""
        if not self._cond.acquire(timeout=wait):
            return None
        try:
            now = self._clock()
            keys = list(self._keys.values())
            cooling = [max(k.cooldown_until, k.quota_until) for k in keys if k.disabled is None]
            cooling = [until for until in cooling if until > now]
            return PoolStatus(
                total=len(keys),
                usable=sum(1 for k in keys if self._usable(k, now)),
                cooling=len(cooling),
                cooling_until=min(cooling) if cooling else None,
                rejected=sum(1 for k in keys if k.disabled is not None),
                rate_limited=sum(k.rate_limited for k in keys),
            )
        finally:
            self._cond.release()

    def names(self) -> list[str]:
        with self._cond:
            return list(self._keys)

    def credentials(self) -> list[Credential]:
        """Every key of the pool, including keys added to the credentials file during the run."""
        with self._cond:
            self._maybe_refresh()
            return [k.cred for k in self._keys.values()]

    def is_usable(self, name: str) -> bool:
        """Enabled, not cooling down and not out of quota (whoever holds it)."""
        with self._cond:
            entry = self._keys.get(name)
            return entry is not None and self._usable(entry, self._clock())

    def rate_limited_counts(self) -> dict[str, int]:
        """429s per key name this run."""
        with self._cond:
            return {name: k.rate_limited for name, k in self._keys.items()}

    def close(self) -> None:
        """Wake every waiter; `acquire` returns None from now on (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- internals -----------------------------------------------------------------
    def _entry(self, key: T) -> _Key:
        for name, original in self._original.items():
            if original is key or original == key:
                return self._keys[name]
        raise KeyError("release of a credential that is not in this pool")

    def _usable(self, key: _Key, now: float) -> bool:
        return key.disabled is None and key.cooldown_until <= now and key.quota_until <= now

    def _pick(self) -> _Key | None:
        now = self._clock()
        free = [
            k for k in self._keys.values() if self._usable(k, now) and k.in_use < self.per_key_concurrency
        ]
        if not free:
            return None
        return min(free, key=lambda k: (k.in_use, k.last_released))

    def _earliest_free_locked(self) -> float | None:
        times = [
            max(k.cooldown_until, k.quota_until)
            for k in self._keys.values()
            if k.disabled is None and max(k.cooldown_until, k.quota_until) > self._clock()
        ]
        return min(times) if times else None

    def _backoff(self, strikes: int) -> float:
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (strikes - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # "equal jitter"

    def _maybe_refresh(self) -> None:
        """Pick up other runs' marks from the ledger, and keys added or re-enabled in the
        credentials file during the run."""
        if self._ledger is not None and time.monotonic() - self._last_marks >= REFRESH_INTERVAL_S:
            self._last_marks = time.monotonic()
            self._load_marks()
        if self._source is None or time.monotonic() - self._last_refresh < REFRESH_INTERVAL_S:
            return
        self._last_refresh = time.monotonic()
        try:
            fresh = list(self._source())
        except Exception:
            return
        added = []
        for cred in fresh:
            entry = self._keys.get(cred.name)
            if entry is None or entry.cred.secret != cred.secret:
                self._keys[cred.name] = _Key(cred, in_use=entry.in_use if entry else 0)
                self._original[cred.name] = cred  # type: ignore[assignment]  # a reloading source is built with Credentials only
                added.append(cred.name)
        if added:
            self.console.line(
                f"[COORDINATOR] Credentials file changed: added or re-enabled {', '.join(added)}"
            )
            self._register([self._keys[name] for name in added])
            self._load_marks(added, announce=True)
            self._cond.notify_all()

    def use_console(self, console: Console) -> None:
        """Say everything from now on to `console`: the pool's own lines and its state file's."""
        self.console = console

    def _load_marks(self, names: list[str] | None = None, *, announce: bool = False) -> None:
        """Apply the ledger's marks, left by earlier runs or set by runs going on now, to
        `names` (default: all keys). Nothing here raises: the ledger was checked at open."""
        if self._ledger is None:
            return
        entries = [self._keys[n] for n in (names if names is not None else list(self._keys))]
        try:
            marks = self._ledger.marks([e.ref.fp for e in entries])
        except Exception as exc:  # a ledger gone bad mid-run: this run carries on in memory
            self.console.line(
                f"[COORDINATOR] Warning: cannot read the key ledger ({exc}); keeping marks in memory"
            )
            self._ledger = None
            return
        now = self._clock()
        for key in entries:
            mark = marks.get(key.ref.fp)
            if mark is None:
                continue
            before = max(key.cooldown_until, key.quota_until)
            key.cooldown_until = max(key.cooldown_until, clamp_until(mark.cooldown_until, now))
            key.quota_until = max(key.quota_until, clamp_until(mark.quota_until, now))
            until = max(key.cooldown_until, key.quota_until)
            if mark.rejected is not None and key.disabled is None:
                when = clock_time(mark.rejected_at)
                key.disabled = f"rejected at {when} (by this or another run): {mark.rejected}"
                self.console.line(
                    f"[COORDINATOR] Credential {key.cred.name} was rejected at {when}; skipped. "
                    f"Check or replace it ({key.cred.source()}); `agentos keys` lists every key."
                )
            elif until > now and (announce or until > before + 1.0):
                why = (
                    "is still cooling down from an earlier run" if announce else "was limited in another run"
                )
                self.console.line(f"[COORDINATOR] Credential {key.cred.name} {why} ({until - now:.0f}s left)")
        self._cond.notify_all()

    def _register(self, entries: list[_Key]) -> None:
        if self._ledger is None:
            return
        try:
            self._ledger.register([e.ref for e in entries])
        except Exception as exc:
            self.console.line(
                f"[COORDINATOR] Warning: cannot write the key ledger ({exc}); keeping marks in memory"
            )
            self._ledger = None

    def refresh_marks(self) -> None:
        """Read the ledger's marks now (after a migration wrote some), quietly."""
        with self._cond:
            self._load_marks()

    def _save_marks(self, entry: _Key, rejected: str | None = None) -> None:
        if self._ledger is None:
            return
        try:
            self._ledger.mark(
                entry.ref,
                cooldown_until=entry.cooldown_until,
                quota_until=entry.quota_until,
                rejected=rejected,
            )
        except Exception as exc:  # a full disk mid-run: the marks stay in memory for this run
            self.console.line(
                f"[COORDINATOR] Warning: cannot write the key ledger ({exc}); keeping marks in memory"
            )
            self._ledger = None
