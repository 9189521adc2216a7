"""Write docs/wiki/environment.md from `agentos.environment.VARIABLES` (`--check`: fail if stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from agentos.environment import PER_PROVIDER, VARIABLES

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
        "Every `AGENTOS_*` variable agentos reads. Generated from `src/agentos/environment.py` by",
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
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is stale: run `python scripts/environment_doc.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
