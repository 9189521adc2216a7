"""Benchmark (not a test): throughput under per-key rate limits, paced against reactive.

The real CLI (`lld-workflow --all --parallel P --provider openai`) runs N generated issues
against `rate_limited_server.RateLimitedServer`, a loopback OpenAI-compatible server that
allows each key LIMIT requests per WINDOW-second sliding window. Each issue is approved at
once, so it makes two calls (draft, review). Every configuration runs twice, back to back,
each against a fresh server: with `AGENTOS_RATE_STRATEGY=reactive` (the old strategy: use a
key until a 429, cool it down for the hint, restart the item) and with the default `paced`
strategy (each call waits for a permit from the coordinator's budgets).

Columns (every figure comes from the server's own log or the wall clock):
- **T_min:** the pool's theoretical minimum wall time: the makespan of an ideal scheduler
  that knows every key's window, has no overhead at all, starts an item the instant a slot
  frees and sends each call the instant its item is ready and a key has room (drafts first).
  It is never below the closed-form bound also shown (**bound**): call i (0-based) can not be
  admitted before floor(i / (K*LIMIT)) * WINDOW, the last needs LATENCY more, and at least
  ceil(N/P) items of 2 calls run in sequence.
- **start-up:** launch until the server admits the first call (interpreter, imports, the
  fork server's preload, the first workers' set-up): the pool is not in use before that.
- **goodput:** T_min / (wall - start-up).
- **waste:** 429s per served call. **max/key/window:** the most 429s one key got within
  any WINDOW seconds.

    python benchmarks/rate_limited.py [--keys 1,2,3,4] [--parallel 3,10] [--modes headers,no-headers]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

from benchmarks.bench_workspace import make_workspace
from benchmarks.rate_limited_server import RateLimitedServer

CALLS_PER_ITEM = 2


@dataclass
class Row:
    mode: str
    strategy: str
    parallel: int
    keys: int
    wall: float
    startup: float
    served: int
    refused: int
    worst_window: int
    t_min: float
    bound: float
    exit_code: int
    approved: int

    @property
    def goodput(self) -> float:
        return self.t_min / max(self.wall - self.startup, 1e-9)

    @property
    def waste(self) -> float:
        return self.refused / max(self.served, 1)


def write_keys(home: Path, keys: int) -> None:
    home.mkdir(parents=True)
    entries = [
        {"name": f"bench-{i}", "type": "api_key", "key": f"sk-bench-{i}-0123456789abcdef"}
        for i in range(1, keys + 1)
    ]
    path = home / "openai-credentials.json"
    path.write_text(json.dumps({"credentials": entries}))
    path.chmod(0o600)


def lower_bound(items: int, parallel: int, keys: int, limit: int, window: float, latency: float) -> float:
    calls = items * CALLS_PER_ITEM
    rate_bound = math.floor((calls - 1) / (keys * limit)) * window + latency
    parallel_bound = math.ceil(items / parallel) * CALLS_PER_ITEM * latency
    return max(rate_bound, parallel_bound)


def ideal_makespan(items: int, parallel: int, keys: int, limit: int, window: float, latency: float) -> float:
    """The makespan of an ideal scheduler (see the module docstring): an exact simulation."""
    admitted: list[list[float]] = [[] for _ in range(keys)]
    pending = [(0.0, 0, item) for item in range(min(parallel, items))]  # (ready at, call, item)
    next_item, end, now = len(pending), 0.0, 0.0
    while pending:
        now = max(now, min(ready for ready, _, _ in pending))
        room = [k for k in range(keys) if sum(1 for a in admitted[k] if a > now - window) < limit]
        if not room:
            now = min(min(a for a in admitted[k] if a > now - window) + window for k in range(keys))
            continue
        ready = [p for p in pending if p[0] <= now]
        call = min(ready, key=lambda p: (p[1], p[0], p[2]))  # drafts first, then the longest waiting
        pending.remove(call)
        admitted[room[0]].append(now)
        _, index, item = call
        if index + 1 < CALLS_PER_ITEM:
            pending.append((now + latency, index + 1, item))
            continue
        end = max(end, now + latency)
        if next_item < items:
            pending.append((now + latency, 0, next_item))
            next_item += 1
    return end


def run_one(strategy: str, mode: str, parallel: int, keys: int, args: argparse.Namespace) -> Row:
    with (
        tempfile.TemporaryDirectory() as tmp,
        RateLimitedServer(args.limit, args.window, args.latency, headers=mode == "headers") as server,
    ):
        root = Path(tmp)
        ws, home = make_workspace(root, args.items), root / "home"
        write_keys(home, keys)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "OPENAI_"))}
        env.update(
            {
                "AGENTOS_HOME": str(home),
                "AGENTOS_OPENAI_BASE_URL": server.url + "/v1",
                "AGENTOS_RATE_STRATEGY": strategy,
            }
        )
        command = [
            sys.executable,
            "-m",
            "agentos.cli.lld",
            "--repo",
            str(ws),
            "--all",
            "--parallel",
            str(parallel),
            "--provider",
            "openai:gpt-bench",
            "--per-key-concurrency",
            str(args.per_key_concurrency),
        ]
        started = time.monotonic()  # the server's clock
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        log = root / f"run-{strategy}-{mode}-{parallel}-{keys}.log"
        log.write_text(result.stdout + result.stderr)
        if args.keep_logs:
            keep = Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            (keep / log.name).write_text(result.stdout + result.stderr)
        run_dirs = sorted((home / "logs" / "parallel").iterdir())
        summary = json.loads((run_dirs[-1] / "summary.json").read_text())
        first_call = min((a.at for a in server.admissions()), default=started)
        shape = (args.items, parallel, keys, args.limit, args.window, args.latency)
        return Row(
            mode=mode,
            strategy=strategy,
            parallel=parallel,
            keys=keys,
            wall=wall,
            startup=first_call - started,
            served=server.served(),
            refused=server.refused(),
            worst_window=server.max_refused_per_window(),
            t_min=ideal_makespan(*shape),
            bound=lower_bound(*shape),
            exit_code=result.returncode,
            approved=summary["totals"]["approved"],
        )


HEADER = (
    f"{'mode':<10} {'P':>3} {'keys':>4} {'strategy':<9} {'wall s':>7} {'start-up s':>10} {'bound s':>7} {'T_min s':>7} "
    f"{'goodput':>7} {'served':>6} {'429s':>5} {'waste':>6} {'max/key/window':>14} {'approved':>8}"
)


def line(r: Row) -> str:
    return (
        f"{r.mode:<10} {r.parallel:>3} {r.keys:>4} {r.strategy:<9} {r.wall:>7.2f} {r.startup:>10.2f} "
        f"{r.bound:>7.2f} {r.t_min:>7.2f} {r.goodput:>7.1%} {r.served:>6} {r.refused:>5} {r.waste:>6.1%} "
        f"{r.worst_window:>14} {r.approved:>8}" + ("" if r.exit_code == 0 else f"  exit {r.exit_code}")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--keys", default="1,2,3,4")
    parser.add_argument("--parallel", default="3,10")
    parser.add_argument("--modes", default="headers,no-headers")
    parser.add_argument("--strategies", default="reactive,paced")
    parser.add_argument("--limit", type=int, default=4, help="requests per key per window")
    parser.add_argument("--window", type=float, default=10.0, help="sliding window, seconds")
    parser.add_argument("--latency", type=float, default=0.5, help="server latency per call, seconds")
    parser.add_argument("--per-key-concurrency", type=int, default=4)
    parser.add_argument("--keep-logs", default=None, help="copy each run's console output here")
    args = parser.parse_args()
    print(
        f"N={args.items} items x {CALLS_PER_ITEM} calls; each key {args.limit} req / {args.window:g}s "
        f"sliding window; latency {args.latency:g}s; --per-key-concurrency {args.per_key_concurrency}; "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    print(HEADER, flush=True)
    for mode in args.modes.split(","):
        for parallel in map(int, args.parallel.split(",")):
            for keys in map(int, args.keys.split(",")):
                for strategy in args.strategies.split(","):
                    print(line(run_one(strategy, mode, parallel, keys, args)), flush=True)


if __name__ == "__main__":
    main()
