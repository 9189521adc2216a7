"""Imported first by each command: Ctrl+C, SIGTERM, closed std fds and closed pipes, from the first instant.

A side effect on import, on purpose: it must run before click, the config and the fork
server are imported or started. It does nothing when a test imports the CLI modules.
"""

import os
import sys

from agentos.core import stop_signals

ENTRY_POINTS = ("lld-workflow", "issue-workflow", "agentos")
CLI_MODULES = ("agentos.cli.lld", "agentos.cli.issue", "agentos.cli.runs")


def is_cli_process() -> bool:
    """True in `lld-workflow`, `agentos` or `python -m agentos.cli.lld`; False when a test imports the CLI."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return getattr(spec, "name", None) in CLI_MODULES or program in ENTRY_POINTS


if is_cli_process():
    stop_signals.install()
    from agentos.core import std_streams

    std_streams.reopen_closed_std_fds()
    std_streams.guard_std_streams()
