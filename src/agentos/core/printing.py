"""One line to the console from library code, as one write."""

from __future__ import annotations


def say(message: str) -> None:
    """Print a library message through the built-in `print` (callers capture it there),
    as one write, so lines from different threads never split."""
    print(message + "\n", end="", flush=True)
