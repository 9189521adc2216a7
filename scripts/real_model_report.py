"""Write docs/real-model.md from the run folders of scripts/real-model-check.sh.

Every figure comes from the runs' own records: `summary.json` and the
`workflow-audit-*.jsonl` files (each LLM call's duration and tokens, each verdict's
format and parse result). Nothing is typed in by hand; run the script again to refresh.

    python scripts/real_model_report.py --out docs/real-model.md --meta meta.json \
        --run structured lld-workflow RUN_DIR --run text lld-workflow RUN_DIR ...
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line
    return records


class Run:
    def __init__(self, mode: str, workflow: str, run_dir: Path) -> None:
        self.mode = mode
        self.workflow = workflow
        self.summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        self.events: list[dict[str, Any]] = []
        for audit in sorted(run_dir.glob("workflow-audit-*.jsonl")):
            self.events += read_jsonl(audit)
        self.events.sort(key=lambda e: e.get("epoch_s", 0))

    @property
    def label(self) -> str:
        return f"{self.workflow}, structured output {'on' if self.mode == 'structured' else 'off'}"

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


def cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def runs_section(runs: list[Run]) -> list[str]:
    rows = []
    for run in runs:
        totals = run.summary["totals"]
        calls = [c for c in run.of("llm_call") if c.get("outcome") == "ok"]
        mark = "~" if any(c.get("tokens_estimated") for c in calls) else ""  # the mock's estimates
        rows.append(
            [
                run.workflow,
                "on" if run.mode == "structured" else "off (`--no-structured-output`)",
                totals["total"],
                totals["approved"],
                totals["needs_revision"],
                totals["failed"] + totals["interrupted"],
                seconds(run.summary["duration_s"]),
                len(calls),
                mark + f"{sum(c.get('input_tokens', 0) for c in calls):,}",
                mark + f"{sum(c.get('output_tokens', 0) for c in calls):,}",
                run.summary["exit_code"],
            ]
        )
    header = ["Workflow", "Structured output", "Items", "Approved", "Need revision", "Failed",
              "Wall time", "LLM calls", "Input tokens", "Output tokens", "Exit code"]  # fmt: skip
    return ["## Runs", "", *table(header, rows)]


def compliance_section(runs: list[Run]) -> list[str]:
    rows = []
    for mode in ("structured", "text"):
        verdicts = [v for r in runs if r.mode == mode for v in r.of("verdict")]
        fallbacks = sum(len(r.of("structured_output_fallback")) for r in runs if r.mode == mode)
        if mode == "structured":
            asked = [v for v in verdicts if v.get("format") == "structured"]
            ok = sum(1 for v in asked if v.get("schema_valid") is True)
            what = "answers that matched the verdict schema"
        else:
            asked = [v for v in verdicts if v.get("format") == "text"]
            ok = sum(1 for v in asked if not v.get("parse_error"))
            what = "answers in the text verdict format (`VERDICT:` ...)"
        share = f"{ok} of {len(asked)} ({100 * ok / len(asked):.0f}%)" if asked else "no answers"
        notes = sum(1 for v in verdicts if v.get("note"))
        rows.append(["on" if mode == "structured" else "off", what, share, fallbacks, notes])
    header = ["Structured output", "Compliance measured as", "Compliant", "Fallbacks to text",
              "APPROVED with blocking points (treated as REVISE)"]  # fmt: skip
    return ["## Schema compliance", "", *table(header, rows)]


def verdicts_section(runs: list[Run]) -> list[str]:
    rows = []
    for run in runs:
        for v in run.of("verdict"):
            why = v.get("parse_error") or v.get("note") or ""
            rows.append(
                [run.label, v.get("item"), v.get("round"), v.get("verdict"), len(v.get("blocking") or []),
                 v.get("format", "text"), why[:160]]
            )  # fmt: skip
    header = ["Run", "Item", "Round", "Verdict", "Blocking points", "Answer format", "Parse error or note"]
    items = []
    for run in runs:
        for item in run.summary["items"]:
            items.append(
                [run.label, item["item"], item["status"], item["rounds"], seconds(item["duration_s"]),
                 f"{item.get('input_tokens', 0):,}", f"{item.get('output_tokens', 0):,}",
                 (item.get("error") or "")[:160]]
            )  # fmt: skip
    item_header = [
        "Run",
        "Item",
        "Outcome",
        "Review rounds",
        "Duration",
        "Input tokens",
        "Output tokens",
        "Error",
    ]
    return ["## Items", "", *table(item_header, items), "## Verdicts", "", *table(header, rows)]


def calls_section(runs: list[Run]) -> list[str]:
    rows = []
    durations: list[float] = []
    rates: list[float] = []
    for run in runs:
        for c in run.of("llm_call"):
            duration = float(c.get("duration_s", 0.0))
            out = int(c.get("output_tokens", 0))
            rate = out / duration if duration > 0 and out else None
            if c.get("outcome") == "ok":
                durations.append(duration)
                if rate is not None:
                    rates.append(rate)
            rows.append(
                [run.label, c.get("item"), c.get("role"), c.get("round"),
                 "yes" if c.get("structured_output") else "no", seconds(duration),
                 c.get("input_tokens", "-"), c.get("output_tokens", "-"),
                 f"{rate:.1f}" if rate is not None else "-", c.get("outcome"), (c.get("error") or "")[:120]]
            )  # fmt: skip
    header = ["Run", "Item", "Role", "Round", "Schema asked", "Duration", "Input tokens", "Output tokens",
              "Output tokens/s of call time", "Outcome", "Error"]  # fmt: skip
    stats = []
    if durations:
        stats = [
            f"{len(durations)} successful calls: median duration {statistics.median(durations):.1f} s, "
            f"longest {max(durations):.1f} s. Output tokens per second of call time (prompt processing "
            f"included): median {statistics.median(rates):.1f}."
            if rates
            else "",
            "",
        ]
    return ["## LLM calls", "", *stats, *table(header, rows)]


def header(meta: dict[str, Any]) -> list[str]:
    lines = [
        "# Real local model check",
        "",
        "<!-- Generated by scripts/real-model-check.sh through scripts/real_model_report.py, from the",
        "     runs' summary.json and audit files. Do not edit by hand: run the script again. -->",
        "",
        f"Generated {meta.get('generated', '?')} by `scripts/real-model-check.sh` (opt-in, not part of CI).",
        "Every figure below is read from the run folders: `summary.json` and `workflow-audit-*.jsonl`.",
        "",
        f"- **Model:** {meta.get('model', '?')}",
        f"- **Server:** {meta.get('server', '?')}",
        f"- **Server command:** `{meta.get('server_command', '?')}`",
        f"- **Machine:** {meta.get('machine', '?')}",
        f"- **Workload:** {meta.get('workload', '?')}",
        "",
    ]
    return lines


def build(meta: dict[str, Any], runs: list[Run]) -> str:
    lines = header(meta)
    lines += runs_section(runs) + compliance_section(runs) + verdicts_section(runs) + calls_section(runs)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--meta", type=Path, required=True, help="JSON: model, server, machine, workload")
    parser.add_argument(
        "--run", nargs=3, action="append", metavar=("MODE", "WORKFLOW", "RUN_DIR"), default=[]
    )
    args = parser.parse_args()
    meta = json.loads(args.meta.read_text(encoding="utf-8"))
    runs = [Run(mode, workflow, Path(run_dir)) for mode, workflow, run_dir in args.run]
    args.out.write_text(build(meta, runs), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
