"""Several runs on one key pool pace against one ledger, whatever a provider's `reset` means.

A deterministic simulation (`tests/helpers/rate_sim.simulate_runs`): each run has its own
budget book, as each run's coordinator does, and they share a real SQLite key ledger; the
server allows 4 calls per key per sliding 10 s window (or per fixed window), answers in
0.3 s, and tells `reset` one of three ways, or sends no headers at all. 3 keys, 24 items of
2 calls per run, 10 at a time. The ideal is the benchmark's exact simulation of a perfect
scheduler for all runs' calls together.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from benchmarks.rate_limited import ideal_makespan

from tests.helpers.rate_sim import simulate_runs

SHAPE = {"items": 24, "parallel": 10, "keys": 3, "limit": 4, "window": 10.0, "latency": 0.3}


def ideal(runs: int) -> float:
    s = SHAPE
    return ideal_makespan(
        int(s["items"]) * runs,
        int(s["parallel"]) * runs,
        int(s["keys"]),
        int(s["limit"]),
        s["window"],
        s["latency"],
    )


@pytest.mark.parametrize("reset", ["whole", "next-slot", "fixed"])
@pytest.mark.parametrize("runs", [1, 2, 3])
def test_with_headers_at_most_one_surprise_per_key_per_run(tmp_path: Path, runs: int, reset: str) -> None:
    result = simulate_runs(tmp_path / "keys.db", runs=runs, reset=reset)
    assert result.served == 48 * runs
    assert max(result.refused_per_run_key.values(), default=0) <= 1, result.refused_per_run_key
    assert result.refused / result.served <= 0.05
    assert ideal(runs) / result.makespan >= 0.9, (result.makespan, ideal(runs))


@pytest.mark.parametrize("runs", [1, 2, 3])
def test_without_headers_a_key_is_refused_at_most_once_per_window(tmp_path: Path, runs: int) -> None:
    """Without headers the limit is learned from a 429. Runs that start together probe the
    unknown limit one call at a time across runs (the ledger's admission), so even the first
    window sees one refusal per key at most, and from then on every run paces by the lesson."""
    result = simulate_runs(tmp_path / "keys.db", runs=runs, reset="none")
    assert result.served == 48 * runs
    window = SHAPE["window"]
    for key in {k for k, _ in result.refusals}:
        times = sorted(at for k, at in result.refusals if k == key)
        assert all(b - a >= window for a, b in itertools.pairwise(times)), (key, times)
    assert ideal(runs) / result.makespan >= 0.9, (result.makespan, ideal(runs))


def test_without_the_ledger_two_runs_learn_by_429_again(tmp_path: Path) -> None:
    """The old behaviour, side by side: each run paced alone."""
    alone = simulate_runs(tmp_path / "unused.db", runs=2, reset="whole", shared=False)
    together = simulate_runs(tmp_path / "keys.db", runs=2, reset="whole")
    assert alone.refused >= 20 and together.refused <= 3
