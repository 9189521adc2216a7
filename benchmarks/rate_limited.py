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

`--modes` takes `headers` (= `whole`), `no-headers` (= `none`) or any meaning of
`x-ratelimit-reset-requests` the server offers: `whole`, `next-slot`, `fixed`, `none` (see
`rate_limited_server`).

    python benchmarks/rate_limited.py [--keys 1,2,3,4] [--parallel 3,10] [--modes headers,no-headers]

**Several runs on one key pool** (issue 22), with `--runs`: for each count of runs and each
meaning of reset, that many runs of the CLI are started at once, with the same AGENTOS_HOME
(so the same keys: 3 by default, LIMIT 4 per 10 s, 0.3 s an answer), each on its own
generated workspace of N issues (24 by default), `--parallel 10 --per-key-concurrency 4`,
against one fresh server. Columns:
- **wall:** from the first launch to the last exit. **start-up:** from the first launch to
  the server's first admission.
- **T_min:** the ideal makespan of all runs' calls together: the same exact simulation, with
  runs x N items and runs x P items at a time on the one pool.
- **goodput:** T_min / (wall - start-up), for all runs together.
- **served**, **429s**, **429/call** and **max/key/win** from the server's log, for all runs
  together; **max/key/run:** the most 429s one key got in one run, from the runs' own
  summaries ("-" when a run wrote none).
- **approved:** items approved in each run (from its summary), **exit:** each run's exit code.

    python benchmarks/rate_limited.py --runs 1,2,3 --resets whole,next-slot,fixed,none [--items 12]
        [--strategies paced,reactive] [--python OTHER/.venv/bin/python --label OLD]

`--python` runs the CLI with another interpreter (another checkout's venv), so two versions
of agentos can be measured with the same benchmark; `--label` names it in the output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

from benchmarks.bench_workspace import make_workspace
from benchmarks.rate_limited_server import RESETS, RateLimitedServer

CALLS_PER_ITEM = 2
MODES = {"headers": "whole", "no-headers": "none", **{r: r for r in RESETS}}


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
    bound: float | None  # None: no closed form (fixed windows)
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


def wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> list[float | None]:
    """When each process ended (monotonic), or None for one still going at `deadline`:
    its process group is then killed."""
    ended: list[float | None] = [None] * len(procs)
    while any(e is None for e in ended) and time.monotonic() < deadline:
        for i, proc in enumerate(procs):
            if ended[i] is None and proc.poll() is not None:
                ended[i] = time.monotonic()
        time.sleep(0.02)
    for i, proc in enumerate(procs):
        if ended[i] is None:  # past the row's timeout: stop this run's process group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return ended


def ideal_makespan(
    items: int,
    parallel: int,
    keys: int,
    limit: int,
    window: float,
    latency: float,
    fixed_phase: float | None = None,
) -> float:
    """The makespan of an ideal scheduler (see the module docstring): an exact simulation.

    With `fixed_phase`, each key counts its calls per fixed window instead of a sliding one,
    and a window begins wherever `t + fixed_phase` is a multiple of `window` (t = 0 is the
    first call): a fixed window lets up to 2 x limit calls through around its boundary, so the
    sliding makespan is no lower bound there.
    """

    def window_of(t: float) -> int:
        assert fixed_phase is not None
        return math.floor((t + fixed_phase) / window + 1e-9)

    def counted(k: int, now: float) -> int:
        if fixed_phase is None:
            # 1e-9: `a + window - window` may round below `a`, and the call would count forever
            return sum(1 for a in admitted[k] if a > now - window + 1e-9)
        return sum(1 for a in admitted[k] if window_of(a) == window_of(now))

    def next_room(now: float) -> float:
        if fixed_phase is None:
            return min(min(a for a in admitted[k] if a > now - window) + window for k in range(keys))
        return (window_of(now) + 1) * window - fixed_phase

    admitted: list[list[float]] = [[] for _ in range(keys)]
    pending = [(0.0, 0, item) for item in range(min(parallel, items))]  # (ready at, call, item)
    next_item, end, now = len(pending), 0.0, 0.0
    while pending:
        now = max(now, min(ready for ready, _, _ in pending))
        room = [k for k in range(keys) if counted(k, now) < limit]
        if not room:
            now = next_room(now)
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


def fixed_phase(server: RateLimitedServer, first_call: float) -> float | None:
    """Where the pool's first call fell in the server's fixed window (None: a sliding one)."""
    return first_call % server.window if server.reset == "fixed" else None


def write_admissions(path: Path, server: RateLimitedServer, started: float) -> None:
    """The server's log: seconds since the first launch, key (by its order of use), admitted."""
    names: dict[str, int] = {}
    lines = ["t_s,key,admitted"]
    for a in server.admissions():
        lines.append(f"{a.at - started:.3f},{names.setdefault(a.key, len(names) + 1)},{int(a.accepted)}")
    path.write_text("\n".join(lines) + "\n")


def run_one(strategy: str, mode: str, parallel: int, keys: int, args: argparse.Namespace) -> Row:
    with (
        tempfile.TemporaryDirectory() as tmp,
        RateLimitedServer(
            args.limit, args.window, args.latency, reset=MODES[mode], numbers_at=args.numbers_at
        ) as server,
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
            args.python,
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
            t_min=ideal_makespan(*shape, fixed_phase=fixed_phase(server, first_call)),
            bound=None if server.reset == "fixed" else lower_bound(*shape),
            exit_code=result.returncode,
            approved=summary["totals"]["approved"],
        )


# -- several runs on one key pool (issue 22) ---------------------------------------------------
@dataclass
class SharedRow:
    runs: int
    reset: str
    strategy: str
    items: int
    wall: float
    startup: float
    served: int
    refused: int
    worst_window: int
    worst_key_run: int | None  # None: a run wrote no summary
    t_min: float
    approved: list[int | None]
    exit_codes: list[int | None]  # None: killed at the row's timeout

    @property
    def goodput(self) -> float:
        return self.t_min / max(self.wall - self.startup, 1e-9)

    @property
    def waste(self) -> float:
        return self.refused / max(self.served, 1)


def read_summaries(home: Path) -> dict[str, dict[str, Any]]:
    """Every run's summary in the home, by the workspace it ran on."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((home / "logs" / "parallel").glob("*/summary.json")):
        summary = json.loads(path.read_text())
        found[str(summary.get("workspace"))] = summary
    return found


def key_refusals(summary: dict[str, Any]) -> list[int]:
    """The 429s of each key in one run, as the run's summary counts them."""
    keys = ((summary.get("rate_limits") or {}).get("keys") or {}).get("openai") or {}
    return [int(entry.get("429s", 0)) for entry in keys.values()]


def run_shared(runs: int, reset: str, strategy: str, args: argparse.Namespace) -> SharedRow:
    """`runs` runs of the CLI started at once on one home, one key pool and one server."""
    with (
        tempfile.TemporaryDirectory(dir=args.scratch) as tmp,
        RateLimitedServer(
            args.limit, args.window, args.latency, reset=reset, numbers_at=args.numbers_at
        ) as server,
    ):
        root, keys, parallel = Path(tmp), int(args.keys), int(args.parallel)
        home = root / "home"
        write_keys(home, keys)
        spaces = [make_workspace(root / f"run{i}", args.items) for i in range(1, runs + 1)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "OPENAI_"))}
        env.update(
            {
                "AGENTOS_HOME": str(home),
                "AGENTOS_OPENAI_BASE_URL": server.url + "/v1",
                "AGENTOS_RATE_STRATEGY": strategy,
                "PYTHONUNBUFFERED": "1",
            }
        )
        logs = [root / f"run{i}.log" for i in range(1, runs + 1)]
        procs: list[subprocess.Popen[bytes]] = []
        started = time.monotonic()  # the server's clock
        for ws, log in zip(spaces, logs, strict=True):
            with log.open("wb") as out:
                command = [
                    args.python, "-m", "agentos.cli.lld", "--repo", str(ws), "--all",
                    "--parallel", str(parallel), "--provider", "openai:gpt-bench",
                    "--per-key-concurrency", str(args.per_key_concurrency),
                ]  # fmt: skip
                procs.append(
                    subprocess.Popen(
                        command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        ended = wait_all(procs, started + args.timeout)
        wall = max((e for e in ended if e is not None), default=time.monotonic()) - started
        if args.keep_logs:
            keep = Path(args.keep_logs)
            keep.mkdir(parents=True, exist_ok=True)
            label = re.sub(r"[^A-Za-z0-9._+-]+", "_", args.label)
            for i, log in enumerate(logs, start=1):
                name = f"shared-{label}-{strategy}-{reset}-{runs}runs-run{i}.log"
                (keep / name).write_bytes(log.read_bytes())
            write_admissions(
                keep / f"shared-{label}-{strategy}-{reset}-{runs}runs-server.csv", server, started
            )
        summaries = read_summaries(home)
        mine = [summaries.get(str(ws)) for ws in spaces]
        first_call = min((a.at for a in server.admissions()), default=started)
        refusals = [key_refusals(s) if s is not None else None for s in mine]
        return SharedRow(
            runs=runs,
            reset=reset,
            strategy=strategy,
            items=args.items,
            wall=wall,
            startup=first_call - started,
            served=server.served(),
            refused=server.refused(),
            worst_window=server.max_refused_per_window(),
            worst_key_run=None
            if None in refusals
            else max((max(r, default=0) for r in refusals if r), default=0),
            t_min=ideal_makespan(
                args.items * runs,
                parallel * runs,
                keys,
                args.limit,
                args.window,
                args.latency,
                fixed_phase=fixed_phase(server, first_call),
            ),
            approved=[s["totals"]["approved"] if s is not None else None for s in mine],
            exit_codes=[proc.returncode if ended[i] is not None else None for i, proc in enumerate(procs)],
        )


SHARED_HEADER = (
    f"{'runs':>4} {'reset':<9} {'strategy':<8} {'wall s':>7} {'start-up s':>10} {'T_min s':>7} {'goodput':>7} "
    f"{'served':>6} {'429s':>5} {'429/call':>8} {'max/key/win':>11} {'max/key/run':>11} {'approved':<14} exit"
)


def shared_line(r: SharedRow) -> str:
    approved = "/".join("-" if a is None else str(a) for a in r.approved)
    codes = ",".join("timeout" if c is None else str(c) for c in r.exit_codes)
    per_run = "-" if r.worst_key_run is None else str(r.worst_key_run)
    return (
        f"{r.runs:>4} {r.reset:<9} {r.strategy:<8} {r.wall:>7.2f} {r.startup:>10.2f} {r.t_min:>7.2f} "
        f"{r.goodput:>7.1%} {r.served:>6} {r.refused:>5} {r.waste:>8.1%} {r.worst_window:>11} {per_run:>11} "
        f"{approved:<14} {codes}"
    )


def main_shared(args: argparse.Namespace) -> None:
    print(
        f"{args.label}: runs at once on one home and one pool of {args.keys} keys, each {args.items} items x "
        f"{CALLS_PER_ITEM} calls, --parallel {args.parallel} --per-key-concurrency {args.per_key_concurrency}; "
        f"each key {args.limit} req / {args.window:g}s; latency {args.latency:g}s; "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}; "
        f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(SHARED_HEADER, flush=True)
    began = time.monotonic()
    for runs in map(int, args.runs.split(",")):
        for reset in args.resets.split(","):
            for strategy in args.strategies.split(","):
                print(shared_line(run_shared(runs, reset, strategy, args)), flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"matrix took {time.monotonic() - began:.0f} s; load average at the end {load}", flush=True)


HEADER = (
    f"{'mode':<10} {'P':>3} {'keys':>4} {'strategy':<9} {'wall s':>7} {'start-up s':>10} {'bound s':>7} {'T_min s':>7} "
    f"{'goodput':>7} {'served':>6} {'429s':>5} {'waste':>6} {'max/key/window':>14} {'approved':>8}"
)


def line(r: Row) -> str:
    return (
        f"{r.mode:<10} {r.parallel:>3} {r.keys:>4} {r.strategy:<9} {r.wall:>7.2f} {r.startup:>10.2f} "
        f"{'-' if r.bound is None else f'{r.bound:.2f}':>7} {r.t_min:>7.2f} {r.goodput:>7.1%} {r.served:>6} {r.refused:>5} {r.waste:>6.1%} "
        f"{r.worst_window:>14} {r.approved:>8}" + ("" if r.exit_code == 0 else f"  exit {r.exit_code}")
    )


def label_of_this_tree() -> str:
    """The commit of the checkout the benchmark runs from, with `+changes` if it has any."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "agentos"
    return f"agentos {head}" + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=24, help="issues per run")
    parser.add_argument("--keys", default=None, help="default 1,2,3,4 (3 with --runs: one number)")
    parser.add_argument("--parallel", default=None, help="default 3,10 (10 with --runs: one number)")
    parser.add_argument("--modes", default="headers,no-headers", help=f"any of {', '.join(MODES)}")
    parser.add_argument("--strategies", default=None, help="default reactive,paced (paced with --runs)")
    parser.add_argument("--limit", type=int, default=4, help="requests per key per window")
    parser.add_argument("--window", type=float, default=10.0, help="window, seconds")
    parser.add_argument(
        "--latency", type=float, default=None, help="server latency per call, s (0.5; 0.3 with --runs)"
    )
    parser.add_argument("--per-key-concurrency", type=int, default=4)
    parser.add_argument("--keep-logs", default=None, help="copy each run's console output here")
    parser.add_argument(
        "--runs", default=None, help="several runs at once on one pool: counts of runs, e.g. 1,2,3"
    )
    parser.add_argument("--resets", default=",".join(RESETS), help="with --runs: meanings of reset to serve")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="with --runs: seconds before a row's runs are killed"
    )
    parser.add_argument(
        "--numbers-at",
        choices=("admission", "answer"),
        default="admission",
        help="when the server computes a served call's x-ratelimit-* numbers (see rate_limited_server)",
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the CLI")
    parser.add_argument(
        "--label", default=None, help="the name of the code measured (default: this checkout's commit)"
    )
    parser.add_argument(
        "--scratch", default=None, help="where the runs' homes and workspaces go (default: the temp dir)"
    )
    args = parser.parse_args()
    shared = args.runs is not None
    args.keys = args.keys or ("3" if shared else "1,2,3,4")
    args.parallel = args.parallel or ("10" if shared else "3,10")
    args.strategies = args.strategies or ("paced" if shared else "reactive,paced")
    args.latency = args.latency if args.latency is not None else (0.3 if shared else 0.5)
    args.label = args.label or (label_of_this_tree() if args.python == sys.executable else args.python)
    for mode in args.modes.split(",") if not shared else args.resets.split(","):
        if mode not in MODES or (shared and mode not in RESETS):
            parser.error(f"unknown mode or reset {mode!r}")
    if shared:
        if "," in args.keys or "," in args.parallel:
            parser.error("with --runs, --keys and --parallel take one number each")
        return main_shared(args)
    print(
        f"N={args.items} items x {CALLS_PER_ITEM} calls; each key {args.limit} req / {args.window:g}s "
        f"window (sliding, fixed in mode fixed); latency {args.latency:g}s; --per-key-concurrency {args.per_key_concurrency}; "
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
