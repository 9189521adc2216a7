"""What the live panel costs a run: the demo batch in a real terminal (tmux), with the panel and
with `--no-panel`, alternating.

Each run is `lld-workflow --repo <copy of the demo> --all --parallel 3 --provider mock` (the
OFFLINE MOCK provider: no network), in its own tmux server (a private socket, killed after).
Reported per mode: the run's own `duration_s` (summary.json), the wall time of the command,
and the CPU time of the coordinator and the processes it waited for.

    python benchmarks/panel_overhead.py --runs 8 [--latency 0.05] [--width 160]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
TIMER = (
    "import resource, subprocess, sys, time\n"
    "t = time.monotonic(); subprocess.run(sys.argv[2:])\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{time.monotonic() - t:.3f} {r.ru_utime + r.ru_stime:.3f}')\n"
)


def one_run(panel: bool, latency: float, width: int) -> tuple[float, float, float]:
    """(run duration_s, wall s, CPU s) of one batch in a fresh tmux server."""
    tmp = Path(tempfile.mkdtemp(prefix="panel-bench-"))
    socket = f"agentos-bench-{uuid.uuid4().hex[:8]}"
    try:
        demo = tmp / "demo"
        shutil.copytree(DEMO, demo)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_") and k not in ("CI", "TERM")
        }
        env.update({"AGENTOS_HOME": str(tmp / "home"), "AGENTOS_MOCK_LATENCY": str(latency)})
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        command = [sys.executable, "-m", "agentos.cli.lld", "--repo", str(demo), "--all", "--parallel", "3"]
        command += ["--provider", "mock"] + ([] if panel else ["--no-panel"])
        timing = tmp / "timing.txt"
        script = tmp / "run.sh"
        script.write_text(
            f"unset CI\n{exports}{shlex.join([sys.executable, '-c', TIMER, str(timing), *command])}\nsleep 600\n"
        )
        tmux = ["tmux", "-L", socket, "new-session", "-d", "-s", "bench", "-x", str(width), "-y", "30"]
        subprocess.run([*tmux, f"sh {shlex.quote(str(script))}"], check=True, timeout=15)
        deadline = time.monotonic() + 300
        while not (timing.exists() and timing.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError("the run did not end within 300 s")
            time.sleep(0.1)
        wall, cpu = map(float, timing.read_text().split())
        (summary,) = (tmp / "home" / "logs" / "parallel").glob("*/summary.json")
        return float(json.loads(summary.read_text())["duration_s"]), wall, cpu
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=15, check=False)
        (Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket).unlink(
            missing_ok=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs of each mode (alternating)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per OFFLINE MOCK call")
    parser.add_argument("--width", type=int, default=160, help="the terminal's columns")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed: the panel is only drawn on a terminal")
    results: dict[str, list[tuple[float, float, float]]] = {"panel": [], "no-panel": []}
    for _ in range(args.runs):
        for mode in results:
            results[mode].append(one_run(mode == "panel", args.latency, args.width))
            print(mode, *results[mode][-1], flush=True)
    for mode, rows in results.items():
        run_s, wall, cpu = ([row[i] for row in rows] for i in range(3))
        print(
            f"{mode}: run duration_s median {statistics.median(run_s):.2f}s "
            f"(min {min(run_s):.2f}, max {max(run_s):.2f}); wall median {statistics.median(wall):.2f}s; "
            f"CPU median {statistics.median(cpu):.2f}s"
        )


if __name__ == "__main__":
    main()
