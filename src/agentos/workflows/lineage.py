"""Numbered lineage files: every input, draft, verdict and the final document of a run."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agentos.core.atomic_file import sweep_temp_files, write_text_atomic
from agentos.core.redaction import redact


def write_lineage(directory: Path, seq: int, kind: str, text: str) -> Path:
    """Write `NNN-<kind>.md` atomically. Re-running a node rewrites the same file."""
    path = directory / f"{seq:03d}-{kind}.md"
    write_text_atomic(path, redact(text), sweep=True)  # a provider's answer may echo a key
    return path


def archive_previous(directory: Path, archive_root: Path) -> Path | None:
    """Move an earlier run's lineage aside so a fresh run starts at 001 and nothing is lost.
    Unfinished writes of a killed run (our temp files) are not lineage: they are removed."""
    if directory.is_dir():
        sweep_temp_files(directory)
    if not directory.is_dir() or not any(directory.iterdir()):
        return None
    archive_root.mkdir(parents=True, exist_ok=True)
    target = archive_root / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while target.exists():
        target = archive_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        n += 1
    os.replace(directory, target)
    return target
