"""Console wording shared by the commands: counts with the right grammatical number."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`1 pending issue`, `2 pending issues`, `0 pending briefs`."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
