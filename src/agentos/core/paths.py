"""Every path rule in one place. Identifiers are sanitized before any path is built."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentos.core import environment
from agentos.core.workspace_files import DEFAULT_MAX_ITEM_BYTES

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]+\Z")  # \Z: "$" would accept a trailing newline
_DRIVE = re.compile(r"^[A-Za-z]:")


def sanitize_identifier(value: object) -> str:
    """Return `value` as a str if it is safe inside a file name, else raise ValueError.

    The message starts with ``Invalid identifier '<value>':`` and names the cause, so a
    user who typed a bad id sees what is wrong with it.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"Invalid identifier '{value}': invalid characters (not a string)")
    text = str(value)
    if _IDENTIFIER.match(text):
        return text
    if ".." in text:
        cause = "path traversal"
    elif text.startswith(("/", "\\")) or _DRIVE.match(text):
        cause = "absolute paths not allowed"
    elif "/" in text or "\\" in text:
        cause = "path separators not allowed"
    else:
        cause = "invalid characters"
    raise ValueError(f"Invalid identifier '{text}': {cause}")


def agentos_home() -> Path:
    """`$AGENTOS_HOME`, default `~/.agentos`. Read on every call so tests can redirect it."""
    configured = environment.HOME.get()
    return Path(configured).expanduser() if configured else Path.home() / ".agentos"


def checkpoints_dir() -> Path:
    return agentos_home() / "checkpoints"


def workspace_key(workspace_root: Path) -> str:
    """`<basename>-<12 hex of sha256(resolved path)>`: readable, and unique per workspace."""
    resolved = workspace_root.resolve()
    base = re.sub(r"[^A-Za-z0-9_-]", "_", resolved.name)[:32] or "root"
    digest = hashlib.sha256(os.fsencode(str(resolved))).hexdigest()[:12]
    return f"{base}-{digest}"


def checkpoint_db_path(workflow: str, identifier: str | int, workspace: Path | None = None) -> Path:
    """`$AGENTOS_HOME/checkpoints/<workspace_key>/<workflow>_<id>.db`, e.g. `demo-1a2b3c4d5e6f/lld_workflow_42.db`.

    Without `workspace`: the flat pre-0.2 layout, which agentos no longer resumes (ADR 0002).
    """
    folder = checkpoints_dir() if workspace is None else checkpoints_dir() / workspace_key(workspace)
    return folder / f"{sanitize_identifier(workflow)}_{sanitize_identifier(identifier)}.db"


def logs_dir() -> Path:
    return agentos_home() / "logs"


def new_run_dir(now: datetime | None = None) -> Path:
    """Create `$AGENTOS_HOME/logs/parallel/<timestamp>/`, unique even for two runs a second apart."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = logs_dir() / "parallel"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a unique run folder under {base}")


def credentials_file(provider: str) -> Path:
    return agentos_home() / f"{sanitize_identifier(provider)}-credentials.json"


def credential_state_file() -> Path:
    """Before the key ledger (issue 22): cool-downs by key name. Read once, then retired."""
    return agentos_home() / "credential-state.json"


def key_ledger_file() -> Path:
    return agentos_home() / "keys.db"


@dataclass(frozen=True)
class Workspace:
    """The user's repository: where items come from and where results go."""

    root: Path
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES  # largest input file read (agentos.toml)

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def ideas_active(self) -> Path:
        return self.root / "ideas" / "active"

    @property
    def ideas_done(self) -> Path:
        return self.root / "ideas" / "done"

    @property
    def lld_active(self) -> Path:
        return self.root / "docs" / "lld" / "active"

    @property
    def lld_status_dir(self) -> Path:
        return self.root / "docs" / "lld" / "status"

    @property
    def templates_override_dir(self) -> Path:
        return self.root / ".agentos" / "templates"

    @property
    def settings_file(self) -> Path:
        return self.root / "agentos.toml"

    def issue_file(self, number: int) -> Path:
        return self.issues_dir / f"{int(number)}.md"

    def brief_file(self, slug: str) -> Path:
        return self.ideas_active / f"{sanitize_identifier(slug)}.md"

    def lld_file(self, number: int) -> Path:
        return self.lld_active / f"LLD-{int(number):03d}.md"

    def lld_status_file(self, number: int) -> Path:
        return self.lld_status_dir / f"LLD-{int(number):03d}.json"

    def lineage_dir(self, item_id: str) -> Path:
        return self.root / "docs" / "lineage" / "active" / sanitize_identifier(item_id)

    def lineage_archive_dir(self, item_id: str) -> Path:
        return self.root / "docs" / "lineage" / "archive" / sanitize_identifier(item_id)
