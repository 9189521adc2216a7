"""One canonical key per item: an issue number in 1..10^9, or a brief slug.

Every place that turns a name into an item (a file in `issues/` or `ideas/active/`, an
`--issue` flag, a number a tracker returns) goes through here, so two spellings of one
item (`7.md` and `07.md`) can never run as two items, and a name that is not an item
(`٨.md`, `18446744073709551615.md`) is skipped visibly, never silently.

Only ASCII digits make a number: Python's `str.isdigit()`, `int()` and `\\d` accept
Arabic-Indic and other digits, so the patterns here spell out `[0-9]` and use fullmatch
(`$` would also match before a trailing newline).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from agentos.core.errors import ConfigError, FileRefused
from agentos.core.workspace_files import shown_path

MAX_ISSUE_NUMBER = 1_000_000_000
ISSUE_NUMBER_RULE = f"ASCII digits, 1 to {MAX_ISSUE_NUMBER}"
BRIEF_NAME_RULE = "letters, digits, - or _, then .md"
_NUMBER = re.compile(r"[0-9]{1,20}")
_ISSUE_NAME = re.compile(r"([0-9]{1,20})\.md")
_SLUG_NAME = re.compile(r"([A-Za-z0-9_-]+)\.md")

K = TypeVar("K", int, str)


def parse_issue_number(text: str) -> int | None:
    """The issue number `text` spells in ASCII digits, if it is within 1..MAX_ISSUE_NUMBER."""
    if not _NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ISSUE_NUMBER else None


def valid_issue_number(value: object) -> int | None:
    """A tracker's number (e.g. GitHub JSON) if it is a real int within range, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_ISSUE_NUMBER else None


def issue_key_of(filename: str) -> int | None:
    """`7.md` and `07.md` -> 7; anything else (`٨.md`, `0.md`, `notes.md`) -> None."""
    match = _ISSUE_NAME.fullmatch(filename)
    return parse_issue_number(match.group(1)) if match else None


def brief_key_of(filename: str) -> str | None:
    """`offline-mode.md` -> "offline-mode"; a name that is not a safe slug -> None."""
    match = _SLUG_NAME.fullmatch(filename)
    return match.group(1) if match else None


@dataclass
class FolderScan(Generic[K]):
    """What a folder of items holds: each key with the file name(s) that map to it,
    and the `.md` files whose names are not items."""

    folder: Path
    files: dict[K, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def item_keys(self) -> list[K]:
        return sorted(self.files)

    def duplicates(self) -> dict[K, list[str]]:
        return {k: names for k, names in sorted(self.files.items()) if len(names) > 1}


def scan_folder(folder: Path, key_of: Callable[[str], K | None]) -> FolderScan[K]:
    """Map every entry of `folder` to its key, whatever its type: a directory or FIFO with
    an item's name is still that item, and is refused by name when it is read."""
    scan: FolderScan[K] = FolderScan(folder)
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return scan
    except OSError as exc:
        raise ConfigError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for name in names:
        key = key_of(name)
        if key is not None:
            scan.files.setdefault(key, []).append(name)
        elif name.endswith(".md"):
            scan.skipped.append(name)
    return scan


def scan_issues(folder: Path) -> FolderScan[int]:
    return scan_folder(folder, issue_key_of)


def scan_briefs(folder: Path) -> FolderScan[str]:
    return scan_folder(folder, brief_key_of)


def the_one_file(scan: FolderScan[K], key: K, what: str, root: Path | None = None) -> Path | None:
    """The single file of `key` (None: no file). Two files for one key are refused, naming both."""
    names = scan.files.get(key, [])
    if len(names) > 1:
        shown = [shown_path(scan.folder / n, root) for n in names]
        raise FileRefused(
            what,
            scan.folder / names[0],
            f"{len(names)} files name the same {what}: {' and '.join(shown)}; keep one and remove the others",
            shown=str(key),
        )
    return scan.folder / names[0] if names else None


def skip_line(path: str, what: str, rule: str) -> str:
    """The one wording for a file that is not an item, for issues and briefs alike."""
    return f"[COORDINATOR] Warning: skipping {path}: not a valid {what} name (use {rule})"
