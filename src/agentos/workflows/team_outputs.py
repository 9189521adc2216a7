"""An item's output files, stored in the team backend and written into another clone (issue 23).

A machine that finished an item stores the files the item wrote into the workspace (the LLD
and its status record; the filed issue's file of a local tracker and the archived brief),
by path relative to the workspace. A machine that did not produce them writes them with
`agentos pull ITEM`: each path is checked like any workspace path (no `..`, no absolute path,
nothing through a symlink out of the workspace), an existing file with other content is never
overwritten, and an archived brief leaves `ideas/active/` only when its text is the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from agentos.backend.postgres.item_session import MAX_OUTPUT_FILE_BYTES
from agentos.core.atomic_file import write_text_atomic
from agentos.core.errors import ConfigError, FileRefused
from agentos.core.outcome import ItemOutcome
from agentos.core.paths import Workspace
from agentos.core.workspace_files import read_text
from agentos.workflows.item import ItemJob, WorkflowKind


def output_paths(job: ItemJob, workspace: Workspace, outcome: ItemOutcome) -> list[Path]:
    if job.kind is WorkflowKind.LLD:
        number = int(job.key)
        return [workspace.lld_file(number), workspace.lld_status_file(number)]
    paths = [workspace.ideas_done / f"{job.key}.md"]
    if outcome.filed_number is not None and job.tracker.kind == "local":
        paths.append(workspace.issue_file(outcome.filed_number))
    return paths


def collect(job: ItemJob, workspace: Workspace, outcome: ItemOutcome) -> dict[str, str]:
    """`{relative path: text}` of the item's outputs that exist and are safe to read."""
    files: dict[str, str] = {}
    for path in output_paths(job, workspace, outcome):
        with contextlib.suppress(OSError, FileRefused):
            text = read_text(path, workspace.root, what="output", max_bytes=MAX_OUTPUT_FILE_BYTES)
            files[path.relative_to(workspace.root).as_posix()] = text
    return files


@dataclass
class Pulled:
    written: list[str] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a different file was there: left as it is
    archived: list[str] = field(default_factory=list)  # briefs removed from ideas/active/


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or any(p in ("..", "") for p in rel.parts) or "\x00" in name:
        raise ConfigError(f"the backend holds an output path agentos will not write: {name!r}")
    return rel


def write_outputs(workspace: Workspace, files: Mapping[str, str]) -> Pulled:
    """Write `files` into the workspace, never replacing a file that differs."""
    pulled = Pulled()
    root = workspace.root.resolve()
    for name, text in sorted(files.items()):
        rel = _safe_relative(name)
        if len(text.encode("utf-8", "surrogatepass")) > MAX_OUTPUT_FILE_BYTES:
            raise ConfigError(
                f"output {name} in the backend is larger than {MAX_OUTPUT_FILE_BYTES} bytes; "
                "agentos stores none that large, so it will not write it"
            )
        target = root.joinpath(*rel.parts)
        parent = target.parent.resolve()
        if parent != root and root not in parent.parents:
            raise ConfigError(f"output {name} would be written outside the workspace ({parent})")
        if target.is_symlink():
            raise ConfigError(f"output {name}: a symlink is there; agentos does not write through it")
        if target.exists():
            try:
                current = read_text(target, root, what="output", max_bytes=MAX_OUTPUT_FILE_BYTES)
            except (OSError, FileRefused):
                current = None
            (pulled.same if current == text else pulled.kept).append(name)
            continue
        write_text_atomic(target, text, sweep=True)
        pulled.written.append(name)
        done = root / "ideas" / "done"
        if target.parent == done:  # the brief was filed elsewhere: leave ideas/active/ if it is this text
            active = workspace.ideas_active / target.name
            with contextlib.suppress(OSError, FileRefused):
                if read_text(active, root, what="brief", max_bytes=MAX_OUTPUT_FILE_BYTES) == text:
                    active.unlink()
                    pulled.archived.append(active.relative_to(root).as_posix())
    return pulled
