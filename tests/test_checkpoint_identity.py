"""Checkpoints know their owner: workspace, item and input. agentos touches only its own files."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from agentos.core.paths import checkpoint_db_path, workspace_key
from agentos.core.printing import STDOUT
from tests.helpers.cli import DEMO, run_cli, run_dirs
from tests.helpers.live_run import LiveRun, kill_all

pytestmark = pytest.mark.timeout(180)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots, with its size and mtime: any creation or change shows."""
    found: dict[str, tuple[int, int]] = {}
    for root in roots:
        for path in root.rglob("*"):
            st = path.lstat()
            found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


def interrupt(home: Path, *args: str, at: str, latency: str = "1") -> None:
    """Run, send SIGINT once `at` appears, and check the run stopped resumably."""
    run = LiveRun("lld-workflow", *args, "--provider", "mock", home=home, AGENTOS_MOCK_LATENCY=latency)
    try:
        run.wait_for(at)
        run.signal_group(signal.SIGINT)
        code = run.wait(timeout=30)
    finally:
        kill_all(run)
    assert code == 130, run.output


def make_foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('my precious data')")
    conn.commit()
    conn.close()


def test_paths_are_per_workspace(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "repo", tmp_path / "b" / "repo"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    assert checkpoint_db_path("lld_workflow", 42, a) != checkpoint_db_path("lld_workflow", 42, b)
    assert checkpoint_db_path("lld_workflow", 42, a).name == "lld_workflow_42.db"
    assert workspace_key(a).startswith("repo-") and workspace_key(a) == workspace_key(a / ".." / "repo")


@pytest.mark.parametrize("at", [r"Executing: N1_design", r"Executing: N2_review", r"LLM call: reviewer"])
def test_two_workspaces_sharing_a_home_keep_their_own_designs(tmp_path: Path, home: Path, at: str) -> None:
    ws_a, ws_b = tmp_path / "A", tmp_path / "B"
    shutil.copytree(DEMO, ws_a)
    shutil.copytree(DEMO, ws_b)
    issue_b = ws_b / "issues" / "42.md"
    issue_b.write_text(issue_b.read_text().replace("# ", "# Workspace B only: ", 1))
    interrupt(home, "--repo", str(ws_a), "--issue", "42", at=at)
    # B's issue 42 must not resume A's checkpoint.
    b_run = run_cli("lld-workflow", "--repo", str(ws_b), "--issue", "42", "--provider", "mock", home=home)
    assert b_run.returncode == 0, b_run.stdout + b_run.stderr
    assert "Resuming from checkpoint" not in b_run.stdout
    a_run = run_cli("lld-workflow", "--repo", str(ws_a), "--issue", "42", "--provider", "mock", home=home)
    assert a_run.returncode == 0, a_run.stdout + a_run.stderr
    if at != r"Executing: N1_design":
        assert "Resuming from checkpoint" in a_run.stdout
    lld_a = (ws_a / "docs/lld/active/LLD-042.md").read_text()
    lld_b = (ws_b / "docs/lld/active/LLD-042.md").read_text()
    assert "Workspace B only" in lld_b and "Workspace B only" not in lld_a


def test_a_checkpoint_of_another_workspace_is_refused(tmp_path: Path, home: Path, demo: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(DEMO, other)
    interrupt(home, "--repo", str(other), "--issue", "42", at=r"Executing: N2_review")
    foreign = checkpoint_db_path("lld_workflow", 42, other)
    before = digest(foreign)
    for extra in ([], ["--fresh"]):
        result = run_cli(
            "lld-workflow",
            "--repo",
            str(demo),
            "--issue",
            "42",
            *extra,
            "--provider",
            "mock",
            home=home,
            AGENTOS_WORKFLOW_DB=str(foreign),
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"Refusing to use {foreign}" in result.stderr and str(other) in result.stderr
        assert digest(foreign) == before


@pytest.mark.parametrize("kind", ["foreign-sqlite", "directory", "fifo", "symlink", "empty", "text"])
@pytest.mark.parametrize("fresh", [False, True])
def test_a_db_path_that_is_not_ours_is_refused_untouched(
    demo: Path, home: Path, tmp_path: Path, kind: str, fresh: bool
) -> None:
    path = tmp_path / "their.db"
    if kind == "foreign-sqlite":
        make_foreign_sqlite(path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside.txt").write_text("keep me")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        target = tmp_path / "target.db"
        make_foreign_sqlite(target)
        path.symlink_to(target)
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("not a database\n" * 50)
    before = listing(tmp_path / "their.db") if kind == "directory" else None
    content = digest(path) if kind not in ("directory", "fifo") else None
    args = ["--repo", str(demo), "--issue", "3", "--provider", "mock", *(["--fresh"] if fresh else [])]
    for extra in ([], ["--parallel", "1"]):
        result = run_cli("lld-workflow", *args, *extra, home=home, timeout=60, AGENTOS_WORKFLOW_DB=str(path))
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"Refusing to use {path} as a checkpoint database" in result.stderr
        assert "Traceback" not in result.stderr
    assert path.exists() or path.is_symlink()
    if content is not None:
        assert digest(path) == content
    if kind == "directory":
        assert listing(path) == before
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-journal").exists()
    assert not (demo / "docs/lld/active/LLD-003.md").exists(), "nothing ran"


def test_agentos_workflow_db_still_names_a_new_db(demo: Path, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "mine.db"
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "3", "--provider", "mock", home=home,
        AGENTOS_WORKFLOW_DB=str(path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert not path.exists(), "our own DB is deleted after success"
    many = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "5", "--issue", "8", "--provider", "mock",
        home=home, AGENTOS_WORKFLOW_DB=str(path),
    )  # fmt: skip
    assert many.returncode == 2 and "AGENTOS_WORKFLOW_DB names the checkpoint of one item" in many.stderr


def test_dry_run_is_read_only_and_input_change_starts_fresh(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--issue", "42", "--issue", "12", "--parallel", "2"]
    interrupt(home, *args, at=r"LLM call: reviewer", latency="1.5")
    kept = sorted((home / "checkpoints").rglob("*.db"))
    assert kept, "the interrupted run kept its DBs"
    before = listing(home, demo)
    dry = run_cli("lld-workflow", *args, "--provider", "mock", "--dry-run", home=home)
    assert dry.returncode == 0, dry.stderr
    assert "would resume from" in dry.stdout
    assert listing(home, demo) == before, "a dry run creates and changes nothing"

    issue = demo / "issues" / "42.md"
    issue.write_text(issue.read_text().replace("# ", "# Renamed: ", 1))
    dry = run_cli("lld-workflow", *args, "--provider", "mock", "--dry-run", home=home)
    assert "LLD-42: would start fresh: input changed since the checkpoint" in dry.stdout
    assert listing(home, demo) == {**before, str(issue): (issue.stat().st_size, issue.stat().st_mtime_ns)}

    result = run_cli("lld-workflow", *args, "--provider", "mock", home=home)
    assert result.returncode == 0, result.stdout
    assert "[LLD-42]     Input changed since the checkpoint" in result.stdout
    assert "Renamed:" in (demo / "docs/lld/active/LLD-042.md").read_text()
    assert not list((home / "checkpoints").rglob("*.db"))


def test_approved_issue_is_left_alone_unless_forced(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--issue", "3", "--provider", "mock"]
    assert run_cli("lld-workflow", *args, home=home).returncode == 0
    lld = demo / "docs/lld/active/LLD-003.md"
    before = (digest(lld), lld.stat().st_mtime_ns)
    again = run_cli("lld-workflow", *args, home=home)
    assert again.returncode == 0
    assert "[LLD-3] already approved (docs/lld/active/LLD-003.md); nothing to do" in again.stdout
    assert "--force" in again.stdout and "Executing" not in again.stdout
    assert (digest(lld), lld.stat().st_mtime_ns) == before
    forced = run_cli("lld-workflow", *args, "--force", home=home)
    assert forced.returncode == 0 and "Executing: N1_design" in forced.stdout
    assert lld.stat().st_mtime_ns != before[1]
    assert "--force" in run_cli("lld-workflow", "--help", home=home).stdout


def test_filed_brief_is_not_filed_again(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), "--brief", "offline-mode", "--provider", "mock"]
    first = run_cli("issue-workflow", *args, home=home)
    assert first.returncode == 0, first.stdout
    issues = sorted(p.name for p in (demo / "issues").iterdir())
    again = run_cli("issue-workflow", *args, home=home)
    assert again.returncode == 0 and "already filed (ideas/done/offline-mode.md)" in again.stdout
    assert sorted(p.name for p in (demo / "issues").iterdir()) == issues


def test_summary_tells_runs_apart(demo: Path, home: Path) -> None:
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "3", "--parallel", "1", "--provider", "mock",
        home=home,
    )  # fmt: skip
    assert result.returncode == 0
    (run_dir,) = run_dirs(home)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["workspace"] == str(demo.resolve())
    assert summary["command"].startswith("lld-workflow --repo ") and "--issue 3" in summary["command"]
    assert summary["drafter"] == summary["reviewer"] == "mock:mock-offline"
    assert summary["agentos_version"]
    started, ended = (datetime.fromisoformat(summary[k]) for k in ("started", "ended"))
    assert started.tzinfo is not None and started <= ended


def test_read_only_look_at_a_live_wal_db_creates_nothing(tmp_path: Path) -> None:
    """A DB left by kill -9 has its checkpoints in the -wal file: still 'would resume', no new file."""
    from agentos.workflows.checkpoint import CheckpointStore
    from agentos.workflows.checkpoint_identity import Owner, has_checkpoint, is_ours, read_owner

    path = tmp_path / "lld_workflow_3.db"
    owner = Owner(str(tmp_path), "lld_workflow", "3", "ab" * 32)
    store = CheckpointStore(path)
    assert store.prepare(owner, fresh=False, console=STDOUT).value == "new"
    store.open()
    assert not has_checkpoint(path), "set-up alone is no checkpoint"
    conn = sqlite3.connect(path)  # a writer that never closes, like a killed worker
    conn.execute("INSERT INTO checkpoints (thread_id, checkpoint_id) VALUES ('LLD-3', 'x')")
    conn.commit()
    before = listing(tmp_path)
    assert Path(f"{path}-wal").stat().st_size > 0
    assert is_ours(path) and read_owner(path) == owner and has_checkpoint(path)
    assert listing(tmp_path) == before
    conn.close()
    store.close()


@pytest.mark.parametrize("plant", ["fifo", "zero", "hardlink"])
def test_a_planted_sqlite_companion_is_refused_by_name(
    demo: Path, home: Path, tmp_path: Path, plant: str
) -> None:
    """SQLite opens <db>-wal and -shm beside the DB and writes into them: a FIFO or a link
    to /dev/zero there was 'disk error ... free space', and a hard link had SQLite write
    into a file elsewhere. Each is now refused by name, and left as it is."""
    db = checkpoint_db_path("lld_workflow", 3, demo)
    db.parent.mkdir(parents=True)
    precious = tmp_path / "precious.txt"
    precious.write_text("precious\n")
    companion = db.with_name(db.name + ("-shm" if plant == "hardlink" else "-wal"))
    if plant == "fifo":
        os.mkfifo(companion)
    elif plant == "zero":
        companion.symlink_to("/dev/zero")
    else:
        os.link(precious, companion)
    result = run_cli("lld-workflow", "--repo", str(demo), "--issue", "3", "--provider", "mock", home=home)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # the item fails, named; nothing else is touched
    assert f"FAILED: Refusing to use {companion} as a checkpoint database" in out, out
    assert "free space" not in out and "Traceback" not in out
    assert precious.read_text() == "precious\n"
    assert os.path.lexists(companion)
