"""What a real run would need and does not have, found before anything runs.

`--dry-run` promises "this is what would happen": a run that would stop at once for a
missing key, or a workspace that is not one, must say so there, not in the real run.
Each check returns plain problem lines; the caller decides the exit code.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentos.cli.config import RunConfig
from agentos.core.errors import ConfigError
from agentos.core.file_lock import LOCKS_DIR
from agentos.keys.sources import load_credentials, no_key_message
from agentos.workflows.invalid_inputs import INVALID_DIR
from agentos.workflows.item import WorkflowKind


def check_workspace(config: RunConfig) -> None:
    """A workspace without its input folder is a wrong `--repo`, not "0 pending items".

    Only for the local tracker: a GitHub run reads no `issues/` folder. A missing
    `ideas/active/` matters to issue-workflow in every mode.
    """
    workspace = config.workspace
    check_output_folders(config)
    if config.kind is WorkflowKind.LLD:
        if config.tracker.kind != "local":
            return
        folder, reads = workspace.issues_dir, "issues/<n>.md"
    else:
        folder, reads = workspace.ideas_active, "ideas/active/<slug>.md"
    if not folder.is_dir():
        raise ConfigError(
            f"workspace {workspace.root} has no {folder.relative_to(workspace.root)}/ folder "
            f"({config.kind.value}-workflow reads {reads}); is --repo the right folder?"
        )


def output_folders(config: RunConfig) -> list[Path]:
    """Every folder of the workspace a run writes into."""
    ws = config.workspace
    lineage = ws.root / "docs" / "lineage"
    common = [
        lineage / "active",
        lineage / "archive",
        ws.root.joinpath(*LOCKS_DIR),
        ws.root.joinpath(*INVALID_DIR),
    ]
    if config.kind is WorkflowKind.LLD:
        return [ws.lld_active, ws.lld_status_dir, *common]
    return [ws.ideas_done, ws.issues_dir, *common]


def check_output_folders(config: RunConfig) -> None:
    """A folder we write into that is a symlink, or leads out of the workspace, is refused
    by name before anything runs: written through, results would land wherever it points
    (and an approved LLD's status record, written elsewhere, would never be seen again)."""
    root = config.workspace.root
    real_root = root.resolve()
    for folder in output_folders(config):
        path = root
        for part in folder.relative_to(root).parts:
            path = path / part
            if path.is_symlink():
                raise ConfigError(
                    f"{path.relative_to(root)}/ in workspace {root} is a symlink (to {os.readlink(path)}); "
                    "agentos writes there and refuses a folder that may lead out of the workspace: "
                    "make it a real folder"
                )
            if path.exists() and not path.resolve().is_relative_to(real_root):
                raise ConfigError(
                    f"{path.relative_to(root)}/ leads out of workspace {root}; make it a real folder"
                )


def setup_problems(config: RunConfig) -> list[str]:
    """One line per piece of set-up the real run would miss: today, a key per provider.

    Prices for `--max-cost` and the workspace are checked while the config is built, in
    every mode, so they never reach here.
    """
    problems = []
    for provider in config.providers:
        try:
            if not load_credentials(provider):
                problems.append(no_key_message(provider))
        except ConfigError as exc:  # a malformed credentials file: its own clear message
            problems.append(str(exc))
    return problems
