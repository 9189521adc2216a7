"""How much of a run reaches the console: -q (quiet), normal, -v (verbose).

Normal shows each item's start, end and failure; -v adds PIDs, checkpoint paths, each
node and each LLM call; -q keeps coordinator lines and failures.

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


LineView = Callable[[str], str | None]  # the console's text for a line, or None to drop it

# Progress detail: each node, each LLM call and permit, each review round. The item log
# keeps them; the default console shows what an operator acts on.
_CHATTER = (">>> Executing:", "    LLM call:", "    permit:", "    Review round")
_STARTED = re.compile(r"^>>> Worker process \d+ started; checkpoint DB .*$", re.DOTALL)
_RESUMING = re.compile(r"^>>> Resuming from checkpoint .* at (?P<node>[^\s]+)$", re.DOTALL)
_COORDINATOR_DETAIL = ("[COORDINATOR] Worker processes ready in",)


def brief(text: str) -> str | None:
    """An item's line in the default view: start, resume, outcome and warnings; no PIDs,
    checkpoint paths or per-call lines (those are -v, and always in the item's log)."""
    if text.startswith(_CHATTER):
        return None
    if _STARTED.match(text):
        return "started"
    resuming = _RESUMING.match(text)
    if resuming:
        return f"resuming from its checkpoint at {resuming['node']}"
    return text


def normal_batch_view(line: str) -> str | None:
    if line.startswith(_COORDINATOR_DETAIL):
        return None
    match = ITEM_LINE.match(line)
    if match is None or match["id"] == "COORDINATOR":
        return line
    text = brief(match["text"])
    return None if text is None else f"[{match['id']}] {text}"


def quiet_batch_view(line: str) -> str | None:
    """Quiet batch console: coordinator lines and failures. The summary table is written
    straight to the terminal, and progress lines are dropped with the item chatter."""
    if line.startswith("[COORDINATOR]"):
        return line
    match = ITEM_LINE.match(line)
    return line if match and match["text"].startswith("FAILED") else None


def single_view(verbosity: Verbosity) -> LineView | None:
    """A single-item run's item lines (unprefixed); None shows every line."""
    if verbosity is Verbosity.VERBOSE:
        return None
    if verbosity is Verbosity.QUIET:
        return lambda line: line if line.startswith(("[COORDINATOR]", *OUTCOME_WORDS)) else None
    return brief


def console_filter(verbosity: Verbosity) -> LineView | None:
    """The batch console's view of a line; None shows every line as it is."""
    if verbosity is Verbosity.VERBOSE:
        return None
    return quiet_batch_view if verbosity is Verbosity.QUIET else normal_batch_view
