"""The worker process: runs one item and reports its outcome. Child side of the engine.

Modelled on huey's consumer: `initialize` (own process group, output, signals, watchdog),
`run` (run the item), `shutdown` (report, exit with the outcome's code). Signal
handlers only set the stop flag; the workflow stops at its next safe point.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from types import FrameType

from agentos import stop_signals
from agentos.core import environment
from agentos.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_POOL_EXHAUSTED
from agentos.core.redaction import register_secret
from agentos.keys.sources import Credential
from agentos.workflows.context import StopFlag
from agentos.workflows.item import ItemJob, ItemOutcome, ItemStatus

WATCHDOG_S = 0.2
# Set by the coordinator from its TermSequence (children.py), where every stop timing lives.
EXIT_AFTER_STOP_ENV = environment.WORKER_EXIT_AFTER_STOP_S.name
DEFAULT_EXIT_AFTER_STOP_S = 4.0
EXIT_CODES = {
    ItemStatus.APPROVED: EXIT_OK,
    ItemStatus.NEEDS_REVISION: EXIT_OK,
    ItemStatus.FAILED: EXIT_FAILED,
    ItemStatus.INTERRUPTED: EXIT_INTERRUPTED,
    ItemStatus.CREDENTIAL: EXIT_POOL_EXHAUSTED,
    ItemStatus.SKIPPED: EXIT_OK,
}


def credential_env(credentials: dict[str, Credential]) -> dict[str, str]:
    """The environment entries that carry reserved keys to a worker (never argv)."""
    env: dict[str, str] = {}
    for provider, cred in credentials.items():
        env[environment.key_env(provider)] = cred.secret
        env[environment.key_name_env(provider)] = cred.name
    return env


def credentials_from_env(providers: set[str]) -> dict[str, Credential]:
    found: dict[str, Credential] = {}
    for provider in providers:
        secret = os.environ.get(environment.key_env(provider))
        name = os.environ.get(environment.key_name_env(provider)) or f"{provider}-key"
        if secret:
            register_secret(secret, name)
            found[provider] = Credential(name, secret, provider)
    return found


class Worker:
    def __init__(self, job: ItemJob, output: Connection, result: Connection, env: dict[str, str]) -> None:
        self.job = job
        self.output = output
        self.result = result
        self.env = env
        self.stop = StopFlag()
        self.parent = os.getppid()

    def initialize(self) -> None:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # out of the terminal's group: the coordinator decides when we stop
        fd = self.output.fileno()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
        os.environ.update(self.env)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        stop_signals.unblock_in_child()  # the fork server holds them blocked; pending ones arrive now
        threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set(f"signal {signum}")

    def _watchdog(self) -> None:
        """Stop when the coordinator (our parent's side) is gone; never outlive it."""
        coordinator = int(environment.COORDINATOR_PID.get(self.env) or 0)
        while not self.stop.is_set():
            time.sleep(WATCHDOG_S)
            gone = os.getppid() != self.parent
            if coordinator and not gone:
                try:
                    os.kill(coordinator, 0)
                except ProcessLookupError:
                    gone = True
                except PermissionError:
                    pass
            if gone:
                self.stop.set("coordinator exited")
        time.sleep(self._exit_after_stop())  # a stop that is not honoured in time: leave anyway
        os._exit(EXIT_INTERRUPTED)

    def _exit_after_stop(self) -> float:
        try:
            value = float(self.env.get(EXIT_AFTER_STOP_ENV, DEFAULT_EXIT_AFTER_STOP_S))
        except ValueError:
            value = DEFAULT_EXIT_AFTER_STOP_S
        return min(max(value, 0.1), 60.0) if value == value else DEFAULT_EXIT_AFTER_STOP_S

    def run(self) -> ItemOutcome:
        from agentos.llm.registry import ProviderSpec
        from agentos.workflows.item_execution import run_item

        providers = {
            ProviderSpec.parse(self.job.drafter).provider,
            ProviderSpec.parse(self.job.reviewer).provider,
        }
        credentials = credentials_from_env(providers)
        self._say(f">>> Worker process {os.getpid()} started; checkpoint DB {self.job.db_path}")
        from agentos.file_lock import FileLock
        from agentos.workflows.item_lock import skipped_message, worker_lock_path

        mine = FileLock(worker_lock_path(self.job))  # freed when this process exits, however it exits
        if not mine.try_acquire():
            self._say(f"skipped: {skipped_message(mine.holder)}")
            return ItemOutcome(ItemStatus.SKIPPED, error=skipped_message(mine.holder))
        try:
            return run_item(self.job, stop=self.stop, credentials=credentials, say=self._say)
        finally:
            mine.release()  # its file goes too; a killed worker's lock dies with it, file left

    @staticmethod
    def _say(line: str) -> None:
        sys.stdout.write(line + "\n")

    def shutdown(self, outcome: ItemOutcome) -> int:
        with contextlib.suppress(OSError, ValueError):
            self.result.send(outcome.to_dict())
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        return EXIT_CODES[outcome.status]


def worker_main(job: ItemJob, output: Connection, result: Connection, env: dict[str, str]) -> None:
    """Process target. Exits with os._exit so abandoned LLM threads cannot delay the exit."""
    worker = Worker(job, output, result, env)
    worker.initialize()
    try:
        outcome = worker.run()
    except BaseException as exc:
        outcome = ItemOutcome(ItemStatus.FAILED, error=f"worker crashed: {type(exc).__name__}: {exc}")
    os._exit(worker.shutdown(outcome))
