"""How much of a batch reaches the console: -q (quiet), normal, -v (verbose).

Only the console is filtered. `coordinator.log` and every item log keep everything,
so a quiet run loses nothing: the detail is one `agentos show` or log file away.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

ITEM_LINE = re.compile(r"^\[(?P<id>[^\]]*)\] (?P<text>.*)$", re.DOTALL)
OUTCOME_WORDS = ("APPROVED", "NEEDS REVISION", "FAILED", "INTERRUPTED", "PAUSED")


class Verbosity(StrEnum):
    QUIET = "quiet"
    NORMAL = "normal"
    VERBOSE = "verbose"

    @classmethod
    def from_flags(cls, quiet: bool, verbose: bool) -> Verbosity:
        if quiet and verbose:
            raise ValueError("give -q/--quiet or -v/--verbose, not both")
        return cls.QUIET if quiet else cls.VERBOSE if verbose else cls.NORMAL


def quiet_batch_line(line: str) -> bool:
    """Quiet batch console: coordinator lines and failures. The summary table is written
    straight to the terminal, and progress lines are dropped with the item chatter."""
    if line.startswith("[COORDINATOR]"):
        return True
    match = ITEM_LINE.match(line)
    return bool(match and match["text"].startswith("FAILED"))


def quiet_single_line(line: str) -> bool:
    """Quiet single-item run (unprefixed output): only the outcome line and failures."""
    return line.startswith(("[COORDINATOR]", *OUTCOME_WORDS))


def console_filter(verbosity: Verbosity) -> Callable[[str], bool] | None:
    """The batch console's line filter; None shows every line."""
    return quiet_batch_line if verbosity is Verbosity.QUIET else None
