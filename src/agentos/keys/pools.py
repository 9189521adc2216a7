"""One reservation across several providers' pools (e.g. Gemini drafter, Claude reviewer).

A lease is `{provider: Credential}`. Errors are reported to the pool of the provider
that raised them; the other keys of the lease are simply released.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence

from agentos.backend.key_ledger import KeyLedger, KeyRef, fingerprint
from agentos.backend.local.key_ledger import SqliteKeyLedger
from agentos.core import environment
from agentos.core.errors import ConfigError
from agentos.core.paths import credential_state_file, key_ledger_file
from agentos.core.printing import Console
from agentos.core.redaction import register_secret
from agentos.keys.pool import CredentialCoordinator, PoolStatus
from agentos.keys.sources import Credential, load_credentials, no_key_message
from agentos.keys.state import CredentialState
from agentos.llm.errors import LLMError

Lease = dict[str, Credential]


class PoolSet:
    def __init__(
        self, pools: dict[str, CredentialCoordinator[Credential]], ledger: KeyLedger | None = None
    ) -> None:
        self.pools = pools
        self.ledger = ledger  # the home's key ledger, shared with every other run

    def close_ledger(self) -> None:
        """At the end of a run: let go of the ledger (its rows stay for the other runs)."""
        if self.ledger is not None:
            self.ledger.close()

    def use_console(self, console: Console) -> None:
        """Say everything from now on to `console` (a run's): the pools are built before it exists."""
        for pool in self.pools.values():
            pool.use_console(console)

    @classmethod
    def load(
        cls,
        providers: Sequence[str],
        per_key_concurrency: int = 1,
        what: str = "",
        backend_url: str | None = None,
    ) -> PoolSet:
        """Pools for `providers`, on the home's key ledger; raises ConfigError (exit 2) before
        anything starts: no key, a bad credentials file, or a ledger that is not ours."""
        ledger = open_key_ledger(what, backend_url=backend_url)
        ledger.prune(time.time())  # what killed and finished runs left: an hour of history stays
        pools: dict[str, CredentialCoordinator[Credential]] = {}
        for provider in dict.fromkeys(providers):
            creds = load_credentials(provider)
            for cred in creds:
                register_secret(cred.secret, cred.name)
            if not creds:
                raise ConfigError(no_key_message(provider))
            pools[provider] = CredentialCoordinator(
                creds,
                per_key_concurrency=per_key_concurrency,
                ledger=ledger,
                source=_reloader(provider),
            )
        migrate_state_file(ledger, pools)
        return cls(pools, ledger)

    def acquire(self, timeout: float | None = None) -> Lease | None:
        lease: Lease = {}
        for provider, pool in self.pools.items():
            cred = pool.acquire(timeout=timeout)
            if cred is None:
                self.release(lease)
                return None
            lease[provider] = cred
        return lease

    def release(self, lease: Lease, rate_limited: bool = False, backoff_seconds: float | None = None) -> None:
        for provider, cred in lease.items():
            self.pools[provider].release(cred, rate_limited=rate_limited, backoff_seconds=backoff_seconds)

    def report(self, lease: Lease, error: LLMError) -> None:
        """The error goes to the key that met it: the lease's own, or (a paced call may use
        any key of its provider) the key it names; the lease's keys are given back."""
        target = error.provider if error.provider in lease else next(iter(lease), None)
        for provider, cred in lease.items():
            named = error.key_name
            if (
                provider == target
                and named is not None
                and named != cred.name
                and named in self.pools[provider].names()
            ):
                self.pools[provider].mark(named, error)
                self.pools[provider].release(cred)
            elif provider == target:
                self.pools[provider].report(cred, error)
            else:
                self.pools[provider].release(cred)

    def rate_limited_counts(self) -> dict[str, dict[str, int]]:
        """429s per provider and key this run."""
        return {provider: pool.rate_limited_counts() for provider, pool in self.pools.items()}

    def status(self) -> PoolStatus | None:
        """Every provider's pool at a glance, summed; None when one is busy right now."""
        total = PoolStatus()
        for pool in self.pools.values():
            status = pool.status()
            if status is None:
                return None
            total += status
        return total

    def usable_count(self) -> int:
        return min((pool.usable_count() for pool in self.pools.values()), default=0)

    def dead_keys(self) -> list[str]:
        """One line per key of each provider whose every key was rejected; [] if none is."""
        return [
            f"{provider}: {dead.line()}" for provider, pool in self.pools.items() for dead in pool.dead_keys()
        ]

    def earliest_available(self) -> float | None:
        """When every provider has a usable key again (None: not by waiting alone)."""
        waits = []
        for pool in self.pools.values():
            if pool.usable_count() == 0:
                earliest = pool.earliest_available()
                if earliest is None:
                    return None
                waits.append(earliest)
        return max(waits) if waits else None

    def capacity(self) -> int:
        """How many workflows the pool can serve at once."""
        return min((len(pool.names()) * pool.per_key_concurrency for pool in self.pools.values()), default=0)

    def describe(self) -> str:
        return "; ".join(f"{p}: {', '.join(pool.names())}" for p, pool in self.pools.items())

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def _reloader(provider: str) -> Callable[[], list[Credential]]:
    def reload() -> list[Credential]:
        return load_credentials(provider)

    return reload


def migrate_state_file(ledger: KeyLedger, pools: Mapping[str, CredentialCoordinator[Credential]]) -> None:
    """`credential-state.json` (before the ledger: cool-downs by key name) is read once, by the
    rules it always had (hostile files: one warning), its marks go to the ledger for the keys
    configured now, and a regular file is then retired as `credential-state.json.migrated`."""
    path = credential_state_file()
    if not os.path.lexists(path):
        return
    marks = CredentialState(path).load()
    now = time.time()
    for provider, pool in pools.items():
        for cred in pool.credentials():
            mark = marks.get(f"{provider}/{cred.name}")
            if mark and max(mark.values()) > now:
                ref = KeyRef(fingerprint(cred.secret), provider, cred.name)
                ledger.mark(ref, cooldown_until=mark["cooldown_until"], quota_until=mark["quota_until"])
        pool.refresh_marks()
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.replace(path, path.with_name(path.name + ".migrated"))


def open_key_ledger(what: str = "", readonly: bool = False, backend_url: str | None = None) -> KeyLedger:
    """The key ledger every run shares: the team's Postgres when AGENTOS_BACKEND_URL (or the
    workspace's `[backend] url`) names one, else this home's SQLite file. Opened and checked
    now: a ledger that cannot be used is exit 2, before anything starts."""
    url = environment.BACKEND_URL.get_stripped() or (backend_url or "")
    ledger: KeyLedger
    if url:
        from agentos.backend.postgres.key_ledger import PostgresKeyLedger

        ledger = PostgresKeyLedger(url, what=what)
    else:
        ledger = SqliteKeyLedger(key_ledger_file(), what=what, readonly=readonly)
    ledger.open()
    return ledger
