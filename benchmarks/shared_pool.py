"""Benchmark (not a test): several runs on one key pool, old pacing against new, in one run.

A deterministic simulation of the budget books of 1, 2 and 3 runs started at once on the same
3 keys (4 requests per key per 10 s, 0.3 s an answer, 24 items of 2 calls per run, 10 at a
time), against a server whose `x-ratelimit-reset` means one of: `whole` (until the window is
whole again: OpenAI's documented meaning), `next-slot` (until the oldest counted call leaves,
as some gateways send), `fixed` (the end of a fixed window), or `none` (no headers, as
Gemini). The books are agentos's own (`keys.budget_book`, `keys.key_budget`); the ledger is a
real SQLite key ledger in a temporary folder.

- **alone:** every run paces by itself, as before issue 22 (no shared ledger), with this
  version's per-key model (a slot held a whole window, `remaining` as the truth).
- **shared:** every run reads and writes the home's key ledger.

Columns: **goodput** = the ideal makespan of all runs' calls together (an exact simulation of
a perfect scheduler, `rate_limited.ideal_makespan`) over the simulated makespan; **429/call**
= refusals per served call; **max/key/window** = the most refusals one key got within any
10 s; **max/key/run** = the most refusals of one key in one run.

    python benchmarks/shared_pool.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

from tests.helpers.rate_sim import simulate_runs

from benchmarks.rate_limited import ideal_makespan

ITEMS, PARALLEL, KEYS, LIMIT, WINDOW, LATENCY = 24, 10, 3, 4, 10.0, 0.3


def main() -> None:
    print(
        f"{'runs':>4} {'reset':<9} | {'alone':>11} {'429/call':>8} {'max/key/win':>11} {'max/key/run':>11}"
        f" | {'shared':>11} {'429/call':>8} {'max/key/win':>11} {'max/key/run':>11}"
    )
    for runs in (1, 2, 3):
        ideal = ideal_makespan(ITEMS * runs, PARALLEL * runs, KEYS, LIMIT, WINDOW, LATENCY)
        for reset in ("whole", "next-slot", "fixed", "none"):
            cells = []
            for shared in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    r = simulate_runs(
                        Path(tmp) / "keys.db",
                        runs=runs,
                        reset=reset,
                        shared=shared,
                        items=ITEMS,
                        parallel=PARALLEL,
                        keys=KEYS,
                        limit=LIMIT,
                        window=WINDOW,
                        latency=LATENCY,
                    )
                per_run = max(r.refused_per_run_key.values(), default=0)
                cells.append(
                    f"{ideal / r.makespan:>11.1%} {r.refused / r.served:>8.1%} {r.worst_window:>11} {per_run:>11}"
                )
            print(f"{runs:>4} {reset:<9} | {cells[0]} | {cells[1]}")


if __name__ == "__main__":
    main()
