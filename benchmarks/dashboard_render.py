"""Benchmark (not a test): how long the dashboard takes to read and render a run of N items.

Writes a synthetic finished run (N items, each with a two-round audit of ~30 events and a
200-line log) in a temporary AGENTOS_HOME, then times, median of `--repeat`:
the runs list; a run's page (read every audit, build the timeline, draw the SVG); an item's
page. A live page re-renders at most twice a second while its run writes, so a run page
under ~250 ms keeps up on one core.

    python benchmarks/dashboard_render.py [--items 11,100,500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py` from anywhere

T0 = 1_800_000_000.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


def _event(event: str, item: str, at: float, **fields: object) -> str:
    return json.dumps({"ts": _iso(at), "epoch_s": at, "event": event, "item": item, **fields})


def make_run(home: Path, items: int) -> str:
    name = "20261204-101500"
    run_dir = home / "logs" / "parallel" / name
    run_dir.mkdir(parents=True)
    records = []
    for n in range(1, items + 1):
        item, start = f"LLD-{n}", T0 + (n % 20) * 3.0
        lines = [_event("workflow_start", item, start)]
        t = start
        for round_ in (1, 2):
            for node, purpose in (("N1_draft", "draft"), ("N2_review", "review")):
                lines.append(_event("node_start", item, t, node=node, round=round_))
                for _ in range(5):
                    t += 0.2
                    lines.append(
                        _event(
                            "llm_call",
                            item,
                            t,
                            key_name=f"key-{n % 4}",
                            outcome="ok",
                            purpose=purpose,
                            duration_s=0.2,
                            input_tokens=300,
                            output_tokens=200,
                        )
                    )
                t += 0.1
                lines.append(_event("node_end", item, t, node=node, duration_s=1.1))
            lines.append(
                _event("verdict", item, t, round=round_, verdict="REVISE" if round_ == 1 else "APPROVED")
            )
        lines.append(_event("workflow_complete", item, t + 0.1, status="approved"))
        (run_dir / f"workflow-audit-{n}.jsonl").write_text("\n".join(lines) + "\n")
        (run_dir / f"{item}.log").write_text("".join(f"[{item}] line {i} of the log\n" for i in range(200)))
        records.append(
            {
                "item": item,
                "status": "approved",
                "rounds": 2,
                "duration_s": t + 0.1 - start,
                "started": _iso(start),
                "ended": _iso(t + 0.1),
                "attempts": 1,
                "input_tokens": 6000,
                "output_tokens": 4000,
            }
        )
    summary = {
        "workflow": "lld",
        "run_dir": str(run_dir),
        "workspace": str(home / "ws"),
        "started": _iso(T0),
        "ended": _iso(T0 + 80),
        "duration_s": 80.0,
        "exit_code": 0,
        "totals": {"approved": items, "total": items},
        "items": records,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return name


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="11,100,500")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'items':>6} {'runs list':>10} {'run page':>10} {'item page':>10} {'run page bytes':>15}")
    for items in (int(n) for n in args.items.split(",")):
        with tempfile.TemporaryDirectory(prefix="agentos-dash-bench-") as tmp:
            os.environ["AGENTOS_HOME"] = tmp
            from agentos.dashboard import render
            from agentos.dashboard.local_records import LocalRunRecords

            name = make_run(Path(tmp), items)
            records = LocalRunRecords()
            runs = median_ms(lambda: render.runs_page(records.runs()), args.repeat)  # noqa: B023
            run = median_ms(lambda: render.run_page(records.run(name)), args.repeat)  # noqa: B023
            item = median_ms(lambda: render.item_page(records.item(name, "LLD-1")), args.repeat)  # noqa: B023
            size = len(render.run_page(records.run(name)))
            print(f"{items:>6} {runs:>8.1f}ms {run:>8.1f}ms {item:>8.1f}ms {size:>15,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
