"""The local tracker: `issues/<number>.md` in the workspace."""

from __future__ import annotations

import os
import re

from agentos.errors import ItemNotFound
from agentos.paths import Workspace
from agentos.tracker.base import IssueSpec, parse_issue_markdown

_ISSUE_FILE = re.compile(r"^(\d+)\.md$")


class LocalTracker:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def describe(self) -> str:
        return f"local folder {self.workspace.issues_dir}"

    def open_issue_numbers(self) -> list[int]:
        folder = self.workspace.issues_dir
        if not folder.is_dir():
            return []
        numbers = []
        for entry in folder.iterdir():
            match = _ISSUE_FILE.match(entry.name)
            if match and entry.is_file():
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def get_issue(self, number: int) -> IssueSpec:
        path = self.workspace.issue_file(number)
        if not path.is_file():
            raise ItemNotFound("issue", str(number), str(self.workspace.issues_dir))
        return parse_issue_markdown(number, path.read_text(encoding="utf-8", errors="replace"))

    def find_filed(self, marker: str) -> int | None:
        for number in self.open_issue_numbers():
            path = self.workspace.issue_file(number)
            if marker in path.read_text(encoding="utf-8", errors="replace"):
                return number
        return None

    def create_issue(self, title: str, body: str, labels: list[str]) -> int:
        """Take the next free number with O_EXCL, so parallel workers never collide."""
        folder = self.workspace.issues_dir
        folder.mkdir(parents=True, exist_ok=True)
        number = max(self.open_issue_numbers(), default=0) + 1
        text = f"# {title}\n\n{body.strip()}\n"
        if labels:
            text += f"\nLabels: {', '.join(labels)}\n"
        tmp = folder / f".filing-{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        try:
            while True:
                try:
                    os.link(tmp, folder / f"{number}.md")  # atomic: complete file or nothing
                except FileExistsError:
                    number += 1
                    continue
                return number
        finally:
            tmp.unlink(missing_ok=True)
