"""The fork server: worker processes start as a fork of a process with the stack preloaded.

Each item then costs a fork, not a 1-second interpreter start. The caller names what to
preload (the item runner's module, the SDKs, the entry point multiprocessing re-imports as
`__mp_main__`); every start and the warm-up have a deadline (AGENTOS_STARTUP_TIMEOUT), and
a Ctrl+C ends the wait.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from agentos.core import environment, stop_signals
from agentos.core.errors import StartupStalled
from agentos.engine.children import pid_running


def start_method() -> str:
    """`forkserver` (fast, safe with threads); AGENTOS_START_METHOD=spawn for comparison."""
    method = environment.START_METHOD.get() or "forkserver"
    return method if method in multiprocessing.get_all_start_methods() else "spawn"


WorkerContext = ForkServerContext | SpawnContext  # the two ways agentos starts workers


def make_context(preload: Iterable[str]) -> WorkerContext:
    if start_method() != "forkserver":
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "agentos.engine.forkserver_begin",
            "agentos.engine.worker",
            *preload,
            "agentos.engine.forkserver_setup",
        ]
    )
    from multiprocessing import forkserver, resource_tracker

    resource_tracker.ensure_running()  # it blocks, then unblocks, the signals itself
    # Start preloading now, while the coordinator sets up. The server shares the
    # terminal's process group: it is born with SIGINT/SIGTERM blocked, so a Ctrl+C
    # during its preload never prints a KeyboardInterrupt; the coordinator owns it.
    with stop_signals.blocked_during_spawn():
        forkserver.ensure_running()
    return ctx


def _ready() -> None:
    """Target of the warm-up process: returns at once."""


DEFAULT_STARTUP_TIMEOUT_S = 120.0


def startup_timeout() -> float:
    """AGENTOS_STARTUP_TIMEOUT in seconds (default 120): how long a start may take."""
    raw = environment.STARTUP_TIMEOUT.get_stripped()
    try:
        value = float(raw) if raw else DEFAULT_STARTUP_TIMEOUT_S
    except ValueError:
        return DEFAULT_STARTUP_TIMEOUT_S
    return value if 0 < value < 86400 else DEFAULT_STARTUP_TIMEOUT_S


STOP_GRACE_S = 0.5  # a start under way when a stop comes may finish; then it is tracked


def start_within(process: BaseProcess, what: str, stop: threading.Event | None = None) -> bool:
    """`process.start()` with a deadline: it blocks on the fork server, which may be
    stopped (SIGSTOP) or stuck. On the deadline the fork server is killed (the blocked
    `start()` then fails) and StartupStalled names it. On a stop (Ctrl+C), a start that
    does not finish within STOP_GRACE_S is ended the same way, and False says it never ran."""
    started = time.monotonic()
    limit = startup_timeout()
    failure: list[BaseException] = []

    def start() -> None:
        try:
            process.start()
        except BaseException as exc:
            failure.append(exc)

    starter = threading.Thread(target=start, name=f"start-{what}", daemon=True)
    starter.start()
    stopping_since: float | None = None
    while starter.is_alive():
        now = time.monotonic()
        if stopping_since is None and (stop_signals.requested() or (stop is not None and stop.is_set())):
            stopping_since = now
        if stopping_since is not None and now - stopping_since > STOP_GRACE_S:
            stop_helpers()
            starter.join(5)
            return False
        if now - started > limit:
            stop_helpers()
            starter.join(5)
            raise StartupStalled(f"the fork server ({what})", limit)
        starter.join(0.05)
    if failure:
        if stopping_since is not None:
            return False
        raise failure[0]
    return True


def warm_up(ctx: WorkerContext, stop: threading.Event | None = None) -> float:
    """Wait until the fork server has imported the stack, so no item pays for it. Seconds taken.

    `Process.start()` blocks until the server has finished its preload, so it runs on a
    helper thread: a Ctrl+C (`stop`, or a request seen by `stop_signals`) ends the wait, and
    so does AGENTOS_STARTUP_TIMEOUT (StartupStalled)."""
    started = time.monotonic()
    process = ctx.Process(target=_ready, name="warm-up")
    if start_within(process, "preloading the stack", stop):
        wait_for_exit(process)
    return time.monotonic() - started


def stop_helpers() -> None:
    """End the fork server and the resource tracker now (SIGKILL, then reap): a stopped
    one would never notice the coordinator is gone, and both hold the coordinator's
    stdout, so `agentos ... | cat` would not end. They start again when next needed."""
    from multiprocessing import forkserver, resource_tracker

    helpers: tuple[tuple[Any, str], ...] = (
        (forkserver._forkserver, "_forkserver_pid"),
        (resource_tracker._resource_tracker, "_pid"),
    )
    for owner, attribute in helpers:
        pid = getattr(owner, attribute, None)
        if not isinstance(pid, int) or pid <= 0:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):  # closes its pipe and reaps it: dead, so at once
            owner._stop()


STATUS_WAIT_S = 1.0  # how long an ended worker's exit status may take to arrive


def wait_for_exit(process: BaseProcess) -> None:
    """`process.join()`, except that the exit status of a fork-server worker is sent by the
    server: a stopped (SIGSTOP) server never sends it, and a plain join waited forever after
    the item had ended. Once the pid has ended, the status gets STATUS_WAIT_S; the outcome
    itself comes on the item's own pipe, so nothing is lost without it."""
    ended_at: float | None = None
    while process.exitcode is None:
        process.join(0.05)
        if process.exitcode is not None or running(process):
            ended_at = None
            continue
        ended_at = ended_at or time.monotonic()
        if time.monotonic() - ended_at > STATUS_WAIT_S:
            return


def running(process: BaseProcess) -> bool:
    """Whether the worker still runs. Its pid decides: a killed fork server reads as "exited"
    for every worker, and a stopped one reports none (pid_running)."""
    return pid_running(process.pid)
