"""`credential-state.json`: cool-down and quota marks by key name, as runs kept them before the
key ledger (`backend.key_ledger`, issue 22). It is now read once, migrated and retired
(`keys.pools.migrate_state_file`).

The file is untrusted input: it may be corrupt, hold wrong types, be a directory, be
read-only or sit on a full disk. Bad entries are dropped (one warning naming the file)
and the file is rewritten; a file that cannot be read or written is reported once and
the pool carries on in memory. Nothing here ever raises into a supervisor thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentos.core import safe_json
from agentos.core.atomic_file import write_text_atomic
from agentos.core.errors import FileRefused
from agentos.core.printing import STDOUT, Console
from agentos.core.workspace_files import read_home_file

FIELDS = ("cooldown_until", "quota_until")
Marks = dict[str, dict[str, float]]


def _valid_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate(data: Any) -> tuple[Marks, list[str]]:
    """The well-formed entries of a decoded state file, and a note for each one dropped."""
    if not isinstance(data, dict):
        return {}, [f"expected a JSON object, found {type(data).__name__}"]
    good: Marks = {}
    dropped: list[str] = []
    for name, mark in data.items():
        if isinstance(mark, dict) and all(_valid_time(mark[f]) for f in FIELDS if f in mark):
            good[name] = {f: float(mark.get(f, 0.0)) for f in FIELDS}
        else:
            dropped.append(repr(name)[:80])
    return good, dropped


MAX_STATE_BYTES = 1_048_576  # a few hundred bytes per key: a larger file is not ours


class CredentialState:
    """`{"<provider>/<key name>": {"cooldown_until": t, "quota_until": t}}` in one JSON file.

    Writers take an exclusive `flock` on a side lock file, merge, and replace atomically.
    Only key names are stored, never keys.
    """

    def __init__(self, path: Path, console: Console = STDOUT) -> None:
        self.path = path
        self.console = console  # a run's console, once the run has one (PoolSet.use_console)
        self._warned: set[str] = set()
        self._memory_only = False  # the file is not a small regular file: never touch it again

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self.console.line(f"[COORDINATOR] Warning: {message}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = self.path.with_suffix(".lock")
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device: flock would not help
                raise OSError(f"{lock_file} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _read(self) -> tuple[Marks, bool]:
        """The valid marks, and whether the file needs rewriting (it held bad data).

        Read by the rules for workspace files: a regular file, not a symlink, opened without
        blocking (a FIFO), at most MAX_STATE_BYTES (a symlink to /dev/zero, a huge file).
        Anything else: one warning, and cool-downs live in memory for this run."""
        if self._memory_only:
            return {}, False
        try:
            text = read_home_file(
                self.path,
                what="credential state file",
                max_bytes=MAX_STATE_BYTES,
                limit_hint="it holds a few key names and times",
            )
        except FileNotFoundError:
            return {}, False
        except (FileRefused, OSError) as exc:
            if isinstance(exc, FileRefused) and not os.path.lexists(self.path):
                return {}, False
            self._memory_only = True
            self._warn_once("read", f"{exc}; its cool-downs were not carried over to the key ledger")
            return {}, False
        try:
            data: Any = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            data, dropped = {}, [f"not valid JSON ({exc})"]
        else:
            data, dropped = validate(data)
        if dropped:
            self._warn_once(
                "invalid",
                f"the credential state file {self.path} held invalid entries; dropped "
                f"{', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''} and rewrote it",
            )
        return data, bool(dropped)

    def _write(self, data: Marks) -> None:
        if self._memory_only:
            return
        try:
            write_text_atomic(self.path, safe_json.dumps(data, indent=2, sort_keys=True))
        except OSError as exc:
            self._warn_once(
                "write",
                f"cannot write the credential state file {self.path} ({exc}); "
                "its cool-downs were not carried over to the key ledger",
            )

    def load(self) -> Marks:
        try:
            with self._locked():
                data, dirty = self._read()
                if dirty:
                    self._write(data)
                return data
        except OSError as exc:
            self._warn_once("lock", f"cannot use the credential state file {self.path} ({exc})")
            return {}

    def update(self, marks: Marks, now: float) -> None:
        try:
            with self._locked():
                data, _ = self._read()
                for name, mark in marks.items():
                    old = data.get(name, {})
                    data[name] = {f: max(old.get(f, 0.0), _finite(mark.get(f, 0.0))) for f in FIELDS}
                data = {n: m for n, m in data.items() if max(m.values(), default=0.0) > now}
                self._write(data)
        except OSError as exc:
            self._warn_once("lock", f"cannot use the credential state file {self.path} ({exc})")


def _finite(value: Any) -> float:
    """A mark to store: a non-finite or non-numeric value is never written (0: no mark)."""
    return float(value) if _valid_time(value) else 0.0
