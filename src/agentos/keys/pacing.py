"""A batch run's rate-limit pacing: the budget book and its permit server, and what the
summary says about each key (calls, 429s, the limit in use).

Paced (the default): every call of a real provider waits for a permit, so calls are sent
when a key has budget instead of learning by 429. Reactive (`AGENTOS_RATE_STRATEGY=reactive`),
or a run on the offline mock only: no permits, each item uses its reserved key until a 429.
Either way, the pool counts the 429s per key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agentos.core.printing import STDOUT, Console
from agentos.core.wording import counted
from agentos.keys.budget_book import BudgetBook
from agentos.keys.permit_server import PermitServer, RateStrategy, rate_strategy
from agentos.keys.pool import PoolStatus
from agentos.keys.pools import PoolSet


class Pacing:
    def __init__(self, pools: PoolSet, rpm: int | None = None, console: Console = STDOUT) -> None:
        self.pools = pools
        self.strategy = rate_strategy()  # a bad value is a ConfigError (exit 2), before anything starts
        paced = {p: pool for p, pool in pools.pools.items() if p != "mock"}
        self.book: BudgetBook | None = None
        self.server: PermitServer | None = None
        if self.strategy is RateStrategy.PACED and paced:
            self.book = BudgetBook(paced, rpm=rpm, console=console, ledger=pools.ledger)
            self.server = PermitServer(self.book)

    @property
    def active(self) -> bool:
        return self.server is not None

    def start(self) -> dict[str, str]:
        """The environment entries workers need (none when not pacing)."""
        return self.server.start() if self.server is not None else {}

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def status(self) -> PoolStatus | None:
        """The key pool at a glance, with the calls waiting for budget (the live panel)."""
        status = self.pools.status()
        if status is None:
            return None
        return replace(status, waiting=self.book.waiting if self.book is not None else 0)

    def banner(self) -> str:
        if self.active:
            return "Rate limits: paced (each call waits for budget on a key of its provider)"
        if self.strategy is RateStrategy.REACTIVE:
            return "Rate limits: reactive (AGENTOS_RATE_STRATEGY=reactive: keys are used until a 429)"
        return "Rate limits: none to pace (offline mock)"

    def summary(self) -> dict[str, Any]:
        """For summary.json: per provider and key, 429s, and (paced) calls and limits."""
        refused = self.pools.rate_limited_counts()
        stats = self.book.stats() if self.book is not None else {}
        keys: dict[str, dict[str, dict[str, Any]]] = {}
        for provider, counts in refused.items():
            for name, count in counts.items():
                entry: dict[str, Any] = {"429s": count}
                entry.update(stats.get(provider, {}).get(name, {}))
                entry.pop("refused", None)  # the pool's count is the one that covers every path
                keys.setdefault(provider, {})[name] = entry
        return {"strategy": self.strategy.value, "paced": self.active, "keys": keys}

    def summary_line(self) -> str | None:
        """`429s per key: openai: alpha 0 (16 calls), beta 1 (15 calls)` (calls sent, answered or
        not: paced runs).

        None for an offline-mock run without a 429: its keys are fake, the line only noise.
        """
        keys = self.summary()["keys"]
        if set(keys) <= {"mock"} and not any(e["429s"] for names in keys.values() for e in names.values()):
            return None
        parts = []
        for provider, names in keys.items():
            shown = []
            for name, entry in names.items():
                calls = f" ({counted(entry['sent'], 'call')})" if "sent" in entry else ""
                shown.append(f"{name} {entry['429s']}{calls}")
            parts.append(f"{provider}: {', '.join(shown)}")
        return "429s per key: " + "; ".join(parts)
