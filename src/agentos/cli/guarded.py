"""How every command ends: our errors as one clear line and the documented exit code.

A Ctrl+C or SIGTERM at any moment means 130; a fork server left behind is ended, so it
never holds the terminal's stdout after we are gone.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from agentos.core import stop_signals
from agentos.core.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    AgentosError,
    ConfigError,
    Interrupted,
)
from agentos.core.redaction import redact


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn our errors into a clear message and the documented exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            code = fn(*args, **kwargs)
        except Interrupted:
            click.echo("[COORDINATOR] Interrupted before any item started. Nothing to resume.")
            code = EXIT_INTERRUPTED
        except ConfigError as exc:
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_USAGE
        except ValueError as exc:  # sanitize_identifier and friends
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_USAGE
        except AgentosError as exc:
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = exc.exit_code
        except OSError as exc:  # a disk error outside any item: say what, no traceback
            click.echo(f"Error: {redact(str(exc))}", err=True)
            code = EXIT_FAILED
        if "agentos.engine.fork_server" in sys.modules:  # prestarted, maybe unused
            from agentos.engine.fork_server import stop_helpers

            stop_helpers()  # a fork server left behind (stopped, even) would hold our stdout
        stop_signals.ignore_from_now()  # no death by signal during the interpreter's exit
        if stop_signals.requested() and code in (EXIT_OK, EXIT_FAILED):
            code = EXIT_INTERRUPTED  # Ctrl+C or SIGTERM at any moment means 130
        sys.exit(code)

    return run
