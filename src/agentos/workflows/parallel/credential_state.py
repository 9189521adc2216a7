"""Cool-down and quota marks that outlive a run, safe when two runs write at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class CredentialState:
    """`{"<provider>/<key name>": {"cooldown_until": t, "quota_until": t}}` in one JSON file.

    Writers take an exclusive `flock` on a side lock file, merge, and replace atomically.
    Only key names are stored, never keys.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, float]]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> dict[str, dict[str, float]]:
        with self._locked():
            return self._read()

    def update(self, marks: dict[str, dict[str, float]], now: float) -> None:
        with self._locked():
            data = self._read()
            for name, mark in marks.items():
                old = data.get(name, {})
                merged = {
                    f: max(float(old.get(f, 0.0)), float(mark.get(f, 0.0)))
                    for f in ("cooldown_until", "quota_until")
                }
                data[name] = merged
            data = {n: m for n, m in data.items() if max(m.values(), default=0.0) > now}
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
