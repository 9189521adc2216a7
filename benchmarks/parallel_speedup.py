"""Benchmark (not a test): the real CLI on a generated 12-issue workspace, mock provider.

For P = 1, 2, 3 and 10 it prints wall time, speedup over P=1, efficiency against the
ideal ceil(N/P) * t_item, and the median per-item overhead. t_item is the pure LLM time
of one item: one draft and one review call at a fixed mock latency. When GNU parallel is
installed it also runs `lld-workflow --issue N` for each item under `parallel -j P`, the
usual way to fan out a single-item command, and prints our wall time as a ratio of its.

    python benchmarks/parallel_speedup.py [--latency 1.0] [--items 12] [--no-gnu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

from benchmarks.bench_workspace import make_workspace

CALLS_PER_ITEM = 2  # one draft, one review: the generated issues are approved first time


@dataclass
class Row:
    parallel: int
    wall: float
    startup: float
    overhead_ms: float
    gnu_wall: float | None = None


def env_for(home: Path, latency: float, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env.update({"AGENTOS_HOME": str(home), "AGENTOS_MOCK_LATENCY": str(latency)})
    env.update(extra or {})
    return env


def cli() -> list[str]:
    return [sys.executable, "-m", "agentos.cli.lld"]


def run_ours(parallel: int, items: int, latency: float, extra: dict[str, str] | None = None) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws, home = make_workspace(root, items), root / "home"
        launched = time.time()
        started = time.perf_counter()
        result = subprocess.run(
            [
                *cli(),
                "--repo",
                str(ws),
                "--all",
                "--parallel",
                str(parallel),
                "--provider",
                "mock",
                "--per-key-concurrency",
                str(items),
            ],  # keys are not the bottleneck being measured
            env=env_for(home, latency, extra),
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"run failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
        (run_dir,) = list((home / "logs" / "parallel").iterdir())
        summary = json.loads((run_dir / "summary.json").read_text())
        t_item = CALLS_PER_ITEM * latency
        overheads = [item["duration_s"] - t_item for item in summary["items"]]
        first_start = min(
            json.loads(line)["epoch_s"]
            for audit in run_dir.glob("workflow-audit-*.jsonl")
            for line in audit.read_text().splitlines()[:1]
        )
        return Row(parallel, wall, first_start - launched, statistics.median(overheads) * 1000)


def run_gnu(parallel: int, items: int, latency: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws, home = make_workspace(root, items), root / "home"
        command = " ".join([*cli(), "--repo", str(ws), "--issue", "{}", "--provider", "mock"])
        started = time.perf_counter()
        subprocess.run(
            ["parallel", "-j", str(parallel), command, ":::", *map(str, range(1, items + 1))],
            env=env_for(home, latency),
            capture_output=True,
            text=True,
            check=True,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=1.0, help="mock latency per LLM call, seconds")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--parallel", default="1,2,3,10")
    parser.add_argument("--no-gnu", action="store_true", help="skip the GNU parallel comparison")
    parser.add_argument("--spawn", action="store_true", help="also run P=3 with spawn instead of forkserver")
    args = parser.parse_args()
    levels = [int(p) for p in args.parallel.split(",")]
    gnu = shutil.which("parallel") is not None and not args.no_gnu
    t_item = CALLS_PER_ITEM * args.latency
    rows = []
    for p in levels:
        row = run_ours(p, args.items, args.latency)
        if gnu:
            row.gnu_wall = run_gnu(p, args.items, args.latency)
        rows.append(row)
        print(f"  measured P={p}: {row.wall:.2f}s", file=sys.stderr)
    base = next((r.wall for r in rows if r.parallel == 1), rows[0].wall)
    print(
        f"N={args.items} items, t_item={t_item:.2f}s ({CALLS_PER_ITEM} mock calls x {args.latency}s), "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    header = (
        f"{'P':>3} {'wall s':>8} {'speedup':>8} {'ideal s':>8} {'efficiency':>10} "
        f"{'eff. excl. start-up':>19} {'start-up s':>10} {'median overhead ms':>18}"
    )
    if gnu:
        header += f" {'GNU parallel s':>14} {'ours/GNU':>8}"
    print(header)
    for r in rows:
        ideal = math.ceil(args.items / r.parallel) * t_item
        line = (
            f"{r.parallel:>3} {r.wall:>8.2f} {base / r.wall:>8.2f} {ideal:>8.2f} {ideal / r.wall:>10.1%} "
            f"{ideal / max(r.wall - r.startup, 1e-9):>19.1%} {r.startup:>10.2f} {r.overhead_ms:>18.0f}"
        )
        if gnu and r.gnu_wall:
            line += f" {r.gnu_wall:>14.2f} {r.wall / r.gnu_wall:>8.2f}"
        print(line)
    if args.spawn:
        spawn = run_ours(3, args.items, args.latency, {"AGENTOS_START_METHOD": "spawn"})
        print(
            f"P=3 with spawn instead of forkserver: wall {spawn.wall:.2f}s, "
            f"median per-item overhead {spawn.overhead_ms:.0f} ms"
        )


if __name__ == "__main__":
    main()
