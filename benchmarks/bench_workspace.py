"""The workspace every benchmark runs on: N issues of the same size, so items take the same time."""

from __future__ import annotations

from pathlib import Path


def make_workspace(root: Path, items: int) -> Path:
    ws = root / "ws"
    (ws / "issues").mkdir(parents=True)
    for n in range(1, items + 1):
        (ws / "issues" / f"{n}.md").write_text(
            f"# Benchmark issue {n}\n\nDesign component {n}: store, validate and serve record type {n}.\n"
        )
    return ws
