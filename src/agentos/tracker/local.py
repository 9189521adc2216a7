"""The local tracker: `issues/<number>.md` in the workspace."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from agentos.core.atomic_file import with_filename
from agentos.core.errors import AgentosError, FileRefused, ItemNotFound
from agentos.core.file_lock import workspace_lock
from agentos.core.item_identity import MAX_ISSUE_NUMBER, FolderScan, scan_issues, the_one_file
from agentos.core.paths import Workspace
from agentos.core.workspace_files import read_input
from agentos.tracker.base import IssueSpec, parse_issue_markdown

_FILING_MARKER = re.compile(r"<!-- agentos-filing: [^>]*-->")


class LocalTracker:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def describe(self) -> str:
        return f"local folder {self.workspace.issues_dir}"

    def scan(self) -> FolderScan[int]:
        """Every issue key with its file name(s), and the `.md` names that are not issues."""
        return scan_issues(self.workspace.issues_dir)

    def open_issue_numbers(self) -> list[int]:
        """Each issue once, whatever its files are: an unsafe or duplicated one is refused,
        by name, when it is read (the item fails), never silently dropped."""
        return self.scan().item_keys()

    def get_issue(self, number: int) -> IssueSpec:
        path = the_one_file(self.scan(), int(number), "issue", self.workspace.root)
        if path is None:
            raise ItemNotFound("issue", str(number), str(self.workspace.issues_dir))
        try:
            text = read_input(self.workspace, path, what="issue")
        except FileNotFoundError:
            raise ItemNotFound("issue", str(number), str(self.workspace.issues_dir)) from None
        return parse_issue_markdown(int(number), text)

    def find_filed(self, marker: str, *, maybe_sent: bool = False) -> int | None:
        """The issue whose file holds `marker`. Refused files are not read, so never match."""
        scan = self.scan()
        for number in scan.item_keys():
            for name in scan.files[number]:
                try:
                    text = read_input(self.workspace, scan.folder / name, what="issue")
                except (FileRefused, FileNotFoundError):
                    continue
                if marker in text:
                    return number
        return None

    def create_issue(self, title: str, body: str, labels: list[str]) -> int:
        """File once per filing marker: under the workspace's filing lock, find the marker,
        else take the next free number. Two runs, whatever their AGENTOS_HOME, never file
        the same brief twice; O_EXCL links keep numbers apart even without the lock."""
        with workspace_lock(self.workspace.root, "filing"):
            marker = _FILING_MARKER.search(body)
            existing = self.find_filed(marker.group(0)) if marker else None
            return existing if existing is not None else self._write_next(title, body, labels)

    def _write_next(self, title: str, body: str, labels: list[str]) -> int:
        folder = self.workspace.issues_dir
        folder.mkdir(parents=True, exist_ok=True)
        number = max(self.open_issue_numbers(), default=0) + 1
        text = f"# {title}\n\n{body.strip()}\n"
        if labels:
            text += f"\nLabels: {', '.join(labels)}\n"
        # A fresh name (O_EXCL): a file planted at a guessable name, a symlink or a hard link
        # to something outside the workspace, is never written through.
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".filing-", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise with_filename(exc, folder / f"{number}.md") from None
        tmp = Path(tmp_name)
        try:
            try:
                os.fchmod(fd, 0o644)  # an issue file is for everyone to read, as before
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:  # a full disk: name the workspace file, not a checkpoint
                raise with_filename(exc, folder / f"{number}.md") from None
            while True:
                _check_bound(number, folder)
                try:
                    os.link(tmp, folder / f"{number}.md")  # atomic: complete file or nothing
                except FileExistsError:
                    number += 1
                    continue
                return number
        finally:
            tmp.unlink(missing_ok=True)


def _check_bound(number: int, folder: os.PathLike[str]) -> None:
    """Never create an issue number that agentos itself would refuse to read back."""
    if number > MAX_ISSUE_NUMBER:
        raise AgentosError(
            f"cannot file a new issue in {folder}: the next number, {number}, is above "
            f"{MAX_ISSUE_NUMBER}, the highest issue number agentos accepts"
        )
