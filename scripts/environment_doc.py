"""Write docs/wiki/environment.md from `agentos.core.environment.VARIABLES` (`--check`: fail if stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from generated_doc import write_or_check

from agentos.core.environment import PER_PROVIDER, VARIABLES

TARGET = Path(__file__).resolve().parents[1] / "docs" / "wiki" / "environment.md"
TITLES = {
    "user": "Set by you",
    "test": "For tests, benchmarks and the demo",
    "internal": "Set by agentos for its workers",
}


def render() -> str:
    lines = [
        "# Environment variables",
        "",
        "Every `AGENTOS_*` variable agentos reads. Generated from `src/agentos/core/environment.py` by",
        "`python scripts/environment_doc.py`; the test suite fails when this page is stale.",
        "Provider keys also come from `GEMINI_API_KEY`/`GOOGLE_API_KEY`, `ANTHROPIC_API_KEY` and",
        "`OPENAI_API_KEY` (see [credentials](credentials.md)); GitHub from `GH_TOKEN`/`GITHUB_TOKEN`.",
    ]
    for audience, title in TITLES.items():
        lines += ["", f"## {title}", "", "| Variable | What it does |", "| --- | --- |"]
        lines += [f"| `{v.name}` | {v.purpose} |" for v in VARIABLES if v.audience == audience]
        if audience == "internal":
            lines += [f"| `{name}` | {purpose} |" for name, purpose in PER_PROVIDER]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(TARGET, render(), argv, "environment_doc.py")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
