"""AGENTOS_HOME must be writable before anything starts: one line that names the path.

A read-only, full or misplaced home (a file where the directory should be) would
otherwise surface as a traceback from whichever write came first.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentos.core.errors import ConfigError
from agentos.core.paths import agentos_home, checkpoints_dir, logs_dir

PROBE = ".agentos-write-probe"


def check_home_writable() -> None:
    """Create the home's folders and write one byte in each; raise ConfigError (exit 2)."""
    home = agentos_home()
    for folder in (home, checkpoints_dir(), logs_dir()):
        probe = folder / f"{PROBE}-{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_probe(probe)
        except OSError as exc:
            raise ConfigError(
                f"AGENTOS_HOME {home} is not usable: cannot write to {folder} "
                f"({exc.strerror or exc}); make it a writable directory with free space, "
                "or point AGENTOS_HOME elsewhere"
            ) from None


def _write_probe(probe: Path) -> None:
    """A new file (O_EXCL, O_NOFOLLOW): a symlink or hard link left at the probe's name is
    removed, never written through (it would truncate the file it names)."""
    probe.unlink(missing_ok=True)
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, b"x")
        os.fsync(fd)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
