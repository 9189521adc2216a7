"""Run the real CLI as a separate process, and find what a run left behind.

Shared by many test modules; pytest advises against importing from conftest.py, so the
fixtures stay there and the helpers live here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `scripts/<name>` as the README and CI do, with a timeout."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "GH_", "GITHUB_"))}
    env.update({"AGENTOS_HOME": str(home), "AGENTOS_MOCK_LATENCY": "0.01", "PYTHONUNBUFFERED": "1"})
    env["AGENTOS_RETRY_BASE_S"] = "0.05"  # a transient failure's retries, without the real waits
    env.update(extra)
    return env


def issue_flags(*numbers: int | str) -> list[str]:
    """`--issue 3 --issue 8 ...` for the given issue numbers."""
    return [flag for number in numbers for flag in ("--issue", str(number))]


_OWN_CONSOLE = {"-q", "--quiet", "-v", "--verbose", "-h", "--help", "--version"}


def with_verbose(args: tuple[str, ...] | list[str], verbose: bool = True) -> list[str]:
    """`-v` added: most tests follow an item's progress lines (PIDs, nodes, LLM calls),
    which the default console leaves to -v. `verbose=False` tests the default console."""
    if not verbose or _OWN_CONSOLE & set(args):
        return list(args)
    return [*args, "-v"]


def run_cli(
    command: str, *args: str, home: Path, timeout: float = 90, verbose: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `lld-workflow` / `issue-workflow` as a real process, with a watchdog timeout."""
    module = {"lld-workflow": "agentos.cli.lld", "issue-workflow": "agentos.cli.issue"}[command]
    return subprocess.run(
        [sys.executable, "-m", module, *with_verbose(args, verbose)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(home, **env),
        check=False,
    )


def run_dirs(home: Path) -> list[Path]:
    base = home / "logs" / "parallel"
    return sorted(base.iterdir()) if base.exists() else []


def kept_db(home: Path, workspace: Path, key: int | str, workflow: str = "lld_workflow") -> Path:
    """Where a run keeps an item's checkpoint: one folder per workspace under `checkpoints/`."""
    from agentos.core.paths import workspace_key

    return home / "checkpoints" / workspace_key(workspace) / f"{workflow}_{key}.db"
