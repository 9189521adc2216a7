"""`--parallel auto`: as many workers as the key pool can feed, within the machine.

Little's law: to keep a pool busy that serves R calls a second, when a call takes L seconds,
R x L calls must be in flight, and an item's worker has one call in flight at a time. R and L
come from the key ledger (limits learned by earlier runs, latencies of their answers); while
they are unknown, the pool's concurrency (keys x --per-key-concurrency) bounds it instead. The
machine bounds it too: a worker per core and a half, and the memory a worker needs. An explicit
`--parallel N` keeps its meaning and its cap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentos.backend.key_ledger import Capacity
from agentos.engine.coordinator import MAX_PARALLELISM

WORKER_BYTES = 160 * 1024 * 1024  # a forked worker's own memory during a call, generously
WORKERS_PER_CPU = 1.5  # workers mostly wait on the network; the fork server shares the stack


@dataclass(frozen=True)
class Machine:
    cpus: int
    available_bytes: int | None  # None: unknown (no /proc/meminfo)

    @classmethod
    def here(cls, meminfo: Path = Path("/proc/meminfo")) -> Machine:
        available = None
        try:
            for line in meminfo.read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            available = None
        return cls(os.cpu_count() or 1, available)


@dataclass(frozen=True)
class PoolShape:
    """One provider's keys, as this run sees them."""

    provider: str
    keys: int
    per_key_concurrency: int
    capacity: Capacity


def choose(pools: Sequence[PoolShape], items: int, machine: Machine) -> tuple[int, str]:
    """The number of workers, and why, in words for the `[COORDINATOR]` line."""
    bounds: list[tuple[int, str]] = [(max(1, items), f"{items} pending item(s)")]
    for pool in pools:
        concurrency = pool.keys * pool.per_key_concurrency
        bounds.append(
            (concurrency, f"{pool.provider}: {pool.keys} key(s) x {pool.per_key_concurrency} at once")
        )
        rate, latency = pool.capacity.calls_per_s, pool.capacity.latency_s
        if rate is not None and latency is not None and pool.provider != "mock":
            needed = max(1, math.ceil(rate * latency))
            bounds.append(
                (needed, f"{pool.provider}: {rate * 60:.0f} calls/min x {latency:.1f}s a call (Little's law)")
            )
    cpu_cap = max(1, math.floor(machine.cpus * WORKERS_PER_CPU))
    bounds.append((cpu_cap, f"{machine.cpus} CPU(s)"))
    if machine.available_bytes is not None:
        memory_cap = max(1, machine.available_bytes // WORKER_BYTES)
        bounds.append((int(memory_cap), f"{machine.available_bytes / 2**30:.1f} GiB free"))
    bounds.append((MAX_PARALLELISM, f"the cap of {MAX_PARALLELISM}"))
    number, why = min(bounds, key=lambda bound: bound[0])
    return number, why
