"""Imported first by each command: Ctrl+C, SIGTERM, closed std fds and closed pipes, from the first instant.

A side effect on import, on purpose: it must run before click, the config and the fork
server are imported or started. It does nothing when a test imports the CLI modules.
"""

from agentos import stop_signals

if stop_signals.is_cli_process():
    stop_signals.install()
    from agentos import std_streams

    std_streams.reopen_closed_std_fds()
    std_streams.guard_std_streams()
