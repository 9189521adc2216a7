"""Workspace files are untrusted data: the safe-read rule, unit by unit and through the real CLI."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from agentos.core import workspace_files
from agentos.core.errors import ConfigError, FileRefused
from agentos.core.events import read_audit
from agentos.core.paths import Workspace
from agentos.core.plain_text import strip_controls
from agentos.core.settings import load_settings
from agentos.core.workspace_files import check_file, read_bytes, read_text
from agentos.tracker.local import LocalTracker
from agentos.workflows.pending import lld_status
from agentos.workflows.templates import Templates
from tests.helpers.cli import issue_flags, run_cli, run_dirs

pytestmark = pytest.mark.timeout(120)
SECRET = "TOP-SECRET-OUTSIDE-THE-WORKSPACE-4711"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "issues").mkdir(parents=True)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.md"
    path.parent.mkdir()
    path.write_text(f"# Secret\n\n{SECRET}\n")
    return path


def refused(fn: object, *args: object, **kwargs: object) -> FileRefused:
    with pytest.raises(FileRefused) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.exit_code == 2
    return info.value


# -- the rule, unit by unit ---------------------------------------------------------------


def test_regular_file_inside_is_read(ws: Path) -> None:
    (ws / "issues/1.md").write_text("# One\n\nbody\n")
    assert read_text(ws / "issues/1.md", ws, what="issue", max_bytes=100) == "# One\n\nbody\n"


def test_symlink_staying_inside_is_accepted(ws: Path) -> None:
    (ws / "notes").mkdir()
    (ws / "notes/real.md").write_text("inside")
    (ws / "issues/1.md").symlink_to("../notes/real.md")
    assert read_text(ws / "issues/1.md", ws, what="issue", max_bytes=100) == "inside"


def test_symlink_leaving_the_workspace_is_refused_by_name(ws: Path, outside: Path) -> None:
    (ws / "issues/1.md").symlink_to(outside)
    error = refused(read_text, ws / "issues/1.md", ws, what="issue", max_bytes=10_000)
    assert str(error).startswith("refused issue issues/1.md: it is a symlink to ")
    assert str(outside) in str(error) and "outside the workspace" in str(error)
    assert SECRET not in str(error)
    assert error.path == ws / "issues/1.md"


def test_symlinked_folder_leaving_the_workspace_is_refused(ws: Path, outside: Path) -> None:
    shutil.rmtree(ws / "issues")
    (ws / "issues").symlink_to(outside.parent)
    error = refused(read_text, ws / "issues/secret.md", ws, what="issue", max_bytes=10_000)
    assert "resolves to" in str(error) and "outside the workspace" in str(error)


def test_proc_self_environ_is_refused(ws: Path) -> None:
    (ws / "issues/1.md").symlink_to("/proc/self/environ")
    error = refused(read_text, ws / "issues/1.md", ws, what="issue", max_bytes=10_000)
    assert "it is a symlink to /proc/self/environ" in str(error)


def test_dangling_symlink_is_refused(ws: Path) -> None:
    (ws / "issues/1.md").symlink_to("gone.md")
    assert "which does not exist" in str(
        refused(read_text, ws / "issues/1.md", ws, what="issue", max_bytes=9)
    )


def test_missing_file_is_file_not_found_for_the_caller(ws: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(ws / "issues/1.md", ws, what="issue", max_bytes=9)


def test_directory_is_refused(ws: Path) -> None:
    (ws / "issues/5.md").mkdir()
    error = refused(read_text, ws / "issues/5.md", ws, what="issue", max_bytes=9)
    assert str(error) == "refused issue issues/5.md: it is a directory, not a regular file"


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(ws: Path) -> None:
    os.mkfifo(ws / "issues/2.md")  # nobody ever writes: an open() for reading would block
    error = refused(read_text, ws / "issues/2.md", ws, what="issue", max_bytes=9)
    assert "FIFO" in str(error) and "issues/2.md" in str(error)


def test_devices_and_sockets_are_named() -> None:
    assert workspace_files._kind(stat.S_IFCHR) == "it is a device, not a regular file"
    assert workspace_files._kind(stat.S_IFBLK) == "it is a device, not a regular file"
    assert workspace_files._kind(stat.S_IFSOCK) == "it is a socket, not a regular file"
    assert workspace_files._kind(stat.S_IFREG) is None


def test_device_behind_a_symlink_is_refused(ws: Path) -> None:
    (ws / "issues/3.md").symlink_to("/dev/zero")
    assert "outside the workspace" in str(
        refused(read_text, ws / "issues/3.md", ws, what="issue", max_bytes=9)
    )
    # Without a containment root (credentials), the device itself is refused before any open.
    error = refused(read_text, Path("/dev/zero"), None, what="file", max_bytes=9)
    assert "device" in str(error)


def test_huge_file_is_refused_without_reading_it(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = ws / "issues/10.md"
    with big.open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)
    read_sizes: list[int] = []
    real_read = os.read
    monkeypatch.setattr(workspace_files.os, "read", lambda fd, n: read_sizes.append(n) or real_read(fd, n))
    error = refused(read_text, big, ws, what="issue", max_bytes=1_048_576)
    assert "20971520 bytes, over the limit of 1048576 bytes" in str(error)
    assert "max_item_bytes" in str(error)
    assert read_sizes == [], "refused from its size alone, before one byte is read"


def test_a_file_that_grows_is_read_only_to_the_limit(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ws / "issues/11.md"
    path.write_bytes(b"x" * 100_000)
    small = os.stat(path)
    # It passed the size check while it was small, then grew: the read itself is bounded.
    monkeypatch.setattr(workspace_files, "check_file", lambda *a, **k: (path.resolve(), small))
    read_sizes: list[int] = []
    real_read = os.read
    monkeypatch.setattr(workspace_files.os, "read", lambda fd, n: read_sizes.append(n) or real_read(fd, n))
    error = refused(read_bytes, path, ws, what="issue", max_bytes=1000)
    assert "grew over the limit of 1000 bytes" in str(error)
    assert sum(read_sizes) <= 1001


def test_a_file_swapped_after_the_check_is_refused(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (ws / "issues/1.md").write_text("checked")
    (ws / "issues/2.md").write_text("swapped in")
    other = os.stat(ws / "issues/2.md")
    monkeypatch.setattr(
        workspace_files, "check_file", lambda *a, **k: ((ws / "issues/1.md").resolve(), other)
    )
    assert "changed while being opened" in str(
        refused(read_bytes, ws / "issues/1.md", ws, what="issue", max_bytes=99)
    )


def test_non_utf8_is_replaced_for_items_and_refused_when_strict(ws: Path) -> None:
    (ws / "issues/1.md").write_bytes(b"# T\n\nbad \xff byte")
    assert "\ufffd" in read_text(ws / "issues/1.md", ws, what="issue", max_bytes=99)
    error = refused(read_text, ws / "issues/1.md", ws, what="issue", max_bytes=99, errors="strict")
    assert "not valid UTF-8 (byte 9)" in str(error)


def test_unreadable_file_is_refused_by_name(ws: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = ws / "issues/1.md"
    path.write_text("x")
    path.chmod(0)
    assert "cannot be opened (Permission denied)" in str(
        refused(read_text, path, ws, what="issue", max_bytes=9)
    )


def test_check_file_refuses_symlinks_outright_when_asked(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    error = refused(
        check_file, tmp_path / "link.json", None, what="credentials file", max_bytes=9, allow_symlinks=False
    )
    assert "it is a symlink to" in str(error) and "replace it with a regular file" in str(error)


# -- every workspace input goes through the rule ----------------------------------------------


def test_local_tracker_refuses_unsafe_issue_files(ws: Path, outside: Path) -> None:
    (ws / "issues/1.md").symlink_to(outside)
    tracker = LocalTracker(Workspace(ws))
    assert tracker.open_issue_numbers() == [1]  # listed: refused by name when read, never dropped
    assert "refused issue issues/1.md" in str(refused(tracker.get_issue, 1))
    assert tracker.find_filed(SECRET) is None  # a refused file is never read, so never matches


def test_workspace_size_limit_applies_to_items(ws: Path) -> None:
    (ws / "issues/1.md").write_text("# T\n\n" + "x" * 200)
    assert "over the limit of 100 bytes" in str(refused(LocalTracker(Workspace(ws, 100)).get_issue, 1))
    assert LocalTracker(Workspace(ws, 1000)).get_issue(1).title == "T"


def test_template_override_symlink_out_is_refused(ws: Path, outside: Path) -> None:
    overrides = ws / ".agentos/templates"
    overrides.mkdir(parents=True)
    (overrides / "lld_drafter.md").symlink_to(outside)
    templates = Templates(overrides, ws)
    error = refused(templates.text, "lld_drafter.md")
    assert "refused template override .agentos/templates/lld_drafter.md" in str(error)
    assert SECRET not in templates.text("lld_reviewer.md")  # other templates still packaged


def test_settings_file_fifo_and_symlink_are_refused(ws: Path, outside: Path) -> None:
    os.mkfifo(ws / "agentos.toml")
    assert "FIFO" in str(refused(load_settings, ws / "agentos.toml"))
    os.unlink(ws / "agentos.toml")
    (ws / "agentos.toml").symlink_to(outside)
    assert "outside the workspace" in str(refused(load_settings, ws / "agentos.toml"))


def test_max_item_bytes_setting(ws: Path) -> None:
    (ws / "agentos.toml").write_text("max_item_bytes = 2048\n")
    assert load_settings(ws / "agentos.toml").max_item_bytes == 2048
    for bad in ("0", "-1", '"big"', str(1 << 31)):
        (ws / "agentos.toml").write_text(f"max_item_bytes = {bad}\n")
        with pytest.raises(ConfigError, match="max_item_bytes"):
            load_settings(ws / "agentos.toml")


def test_lld_status_record_fifo_does_not_hang(ws: Path) -> None:
    status = Workspace(ws).lld_status_file(4)
    status.parent.mkdir(parents=True)
    os.mkfifo(status)
    assert lld_status(Workspace(ws), 4) is None  # pending again; its run rewrites the record


# -- through the real CLI, with the offline mock provider --------------------------------------


def only_issues(demo: Path, keep: set[str]) -> None:
    for path in (demo / "issues").iterdir():
        if path.name not in keep:
            path.unlink()


def only_briefs(demo: Path, keep: set[str]) -> None:
    for path in (demo / "ideas/active").iterdir():
        if path.name not in keep:
            path.unlink()


def assert_nowhere(needle: str, *roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert needle.encode() not in path.read_bytes(), f"{needle!r} leaked into {path}"


def test_symlinked_briefs_are_refused_and_never_sent(demo: Path, home: Path, outside: Path) -> None:
    only_briefs(demo, {"offline-mode.md"})
    (demo / "ideas/active/leak.md").symlink_to(outside)
    (demo / "ideas/active/environ.md").symlink_to("/proc/self/environ")
    marker = "sk-env-MARKER-0123456789abcdef"
    result = run_cli(
        "issue-workflow",
        "--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock",
        home=home, OPENAI_API_KEY=marker,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # a refused item is a failed item
    assert "[ISSUE-leak] FAILED: refused brief ideas/active/leak.md: it is a symlink to " in out
    assert (
        "[ISSUE-environ] FAILED: refused brief ideas/active/environ.md: it is a symlink to /proc/self/environ"
        in out
    )
    assert "Summary: 1 approved, 0 need revision, 2 failed (ISSUE-environ, ISSUE-leak)" in out
    (run_dir,) = run_dirs(home)
    for item in ("ISSUE-leak", "ISSUE-environ"):
        log = (run_dir / f"{item}.log").read_text()
        assert "refused brief" in log and "N1_draft" not in log and "LLM call" not in log  # refused before N0
    assert not (demo / "docs/lineage/active/ISSUE-leak").exists()
    assert not (demo / "docs/lineage/active/ISSUE-environ").exists()
    assert "Filed issue #43" in out and not (demo / "issues/44.md").exists()  # only the real brief
    for needle in (SECRET, marker):
        assert needle not in out and needle not in result.stderr
        assert_nowhere(needle, demo, home)

    named = run_cli("issue-workflow", "--repo", str(demo), "--brief", "leak", "--provider", "mock", home=home)
    assert named.returncode == 2, named.stdout + named.stderr  # named on the command line: usage error
    assert "Error: refused brief ideas/active/leak.md: it is a symlink to" in named.stderr
    assert SECRET not in named.stdout + named.stderr


def test_brief_symlink_staying_inside_the_workspace_runs(demo: Path, home: Path) -> None:
    (demo / "notes").mkdir()
    shutil.move(demo / "ideas/active/offline-mode.md", demo / "notes/offline.md")
    (demo / "ideas/active/offline-mode.md").symlink_to("../../notes/offline.md")
    result = run_cli(
        "issue-workflow", "--repo", str(demo), "--brief", "offline-mode", "--provider", "mock", home=home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "APPROVED" in result.stdout


@pytest.mark.timeout(60)
def test_fifo_directory_and_huge_issue_files_fail_by_name_without_hanging(demo: Path, home: Path) -> None:
    only_issues(demo, {"3.md"})
    os.mkfifo(demo / "issues/2.md")
    (demo / "issues/5.md").mkdir()
    with (demo / "issues/10.md").open("wb") as fh:
        fh.truncate(20 * 1024 * 1024)
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock",
        home=home, timeout=45,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "[LLD-2] FAILED: refused issue issues/2.md: it is a FIFO (named pipe), not a regular file" in out
    assert "[LLD-5] FAILED: refused issue issues/5.md: it is a directory, not a regular file" in out
    assert (
        "[LLD-10] FAILED: refused issue issues/10.md: it is 20971520 bytes, over the limit of 1048576" in out
    )
    assert "Summary: 1 approved, 0 need revision, 3 failed (LLD-2, LLD-5, LLD-10)" in out

    named = run_cli(
        "lld-workflow", "--repo", str(demo), "--issue", "2", "--provider", "mock", home=home, timeout=30
    )
    assert named.returncode == 2 and "refused issue issues/2.md" in named.stderr

    (demo / "agentos.toml").write_text('provider = "mock"\nmax_item_bytes = 30000000\n')
    (demo / "issues/10.md").write_text("# Big enough now\n\n" + "word " * 10 + "\n")
    raised = run_cli("lld-workflow", "--repo", str(demo), "--issue", "10", home=home, timeout=30)
    assert raised.returncode == 0, raised.stdout + raised.stderr


def test_issue_symlink_to_etc_passwd_never_reaches_an_lld(demo: Path, home: Path) -> None:
    only_issues(demo, {"3.md"})
    (demo / "issues/6.md").symlink_to("/etc/passwd")
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "2", "--provider", "mock", home=home
    )
    assert result.returncode == 1
    assert (
        "[LLD-6] FAILED: refused issue issues/6.md: it is a symlink to /etc/passwd, outside the workspace"
        in result.stdout
    )
    assert not (demo / "docs/lld/active/LLD-006.md").exists()
    assert_nowhere("root:x:0:0", demo, home)


def test_dry_run_names_the_items_that_would_be_refused(demo: Path, home: Path, outside: Path) -> None:
    only_issues(demo, {"3.md"})
    os.mkfifo(demo / "issues/2.md")
    (demo / "issues/03.md").write_text("# Dup\n\nbody\n")
    (demo / "ideas/active/leak.md").symlink_to(outside)
    lld = run_cli("lld-workflow", "--repo", str(demo), "--all", "--dry-run", home=home)
    assert lld.returncode == 0, lld.stdout + lld.stderr
    assert "LLD-2: would fail: refused issue issues/2.md: it is a FIFO" in lld.stdout
    assert "LLD-3: would fail: refused issue 3: 2 files name the same issue" in lld.stdout
    briefs = run_cli("issue-workflow", "--repo", str(demo), "--all", "--dry-run", home=home)
    assert "ISSUE-leak: would fail: refused brief ideas/active/leak.md: it is a symlink to" in briefs.stdout
    assert "ISSUE-offline-mode: would start fresh" in briefs.stdout
    assert not home.exists() and SECRET not in lld.stdout + briefs.stdout


@pytest.mark.timeout(120)
def test_bom_utf16_and_control_characters(demo: Path, home: Path) -> None:
    """Issue 20 finding 15: a BOM failed as "no title", UTF-16 too; NUL and escapes were copied."""
    issues = demo / "issues"
    (issues / "3.md").write_bytes(b"\xef\xbb\xbf# Cache the catalogue\n\nCache pages for five minutes.\n")
    (issues / "5.md").write_bytes("# Sixteen\n\nSaved as UTF-16.\n".encode("utf-16"))
    (issues / "8.md").write_bytes(
        b"# Escapes \x1b[2J here\n\nA NUL \x00 and a bell \x07 and \x1b]0;title\x07.\n"
    )
    named = run_cli("lld-workflow", "--repo", str(demo), *issue_flags(3, 5), "--provider", "mock", home=home)
    assert named.returncode == 2  # named on the command line: refused before the run
    assert "refused issue issues/5.md: it is UTF-16, not UTF-8; save it as UTF-8" in named.stderr
    result = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock", home=home
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # the UTF-16 issue fails (and the demo's invalid one)
    assert "[LLD-5] FAILED: refused issue issues/5.md: it is UTF-16, not UTF-8; save it as UTF-8" in out
    lld3 = (demo / "docs/lld/active/LLD-003.md").read_text()
    assert "# LLD-003: Cache the catalogue" in lld3
    written = b"".join(p.read_bytes() for p in (demo / "docs").rglob("*") if p.is_file())
    for control in (b"\x00", b"\x1b", b"\x07"):
        assert control not in written
    lld8 = (demo / "docs/lld/active/LLD-008.md").read_text()
    assert "# LLD-008: Escapes  here" in lld8  # the whole sequence goes, not only its ESC
    assert "0;title" not in lld8 and "[2J" not in written.decode()


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("a\x1b[31mred\x1b[0m b", "ared b"),
        ("x\x1b]0;pwned\x07y", "xy"),
        ("x\x1b]8;;http://e.example\x1b\\link\x1b]8;;\x1b\\y", "xlinky"),
        ("p\x9b2Jq", "pq"),
        ("keep [2J text", "keep [2J text"),
        ("nul\x00x\ttab\r\nline", "nulx\ttab\nline"),
    ],
)
def test_terminal_sequences_go_whole(raw: str, kept: str) -> None:
    assert strip_controls(raw) == kept


@pytest.mark.timeout(10)
def test_stripping_a_hostile_text_is_linear() -> None:
    for text in ("\x1b]" + "a" * 2_000_000, "\x1b[" + "1" * 2_000_000, "\x1b]\x1b[" * 500_000):
        strip_controls(text)


@pytest.mark.timeout(20)
def test_home_files_are_read_by_the_same_rules(home: Path) -> None:
    """Issue 20 finding 1, beyond the credential state: an audit file in a run folder that
    is a FIFO (open() would block), a symlink to /dev/zero (MemoryError) or a huge sparse
    file (a crawl) is refused by name; a line nested to crash the parser is skipped."""
    run = home / "logs" / "parallel" / "20260101-000000"
    run.mkdir(parents=True)
    fifo, zero, huge, deep = (run / f"workflow-audit-{n}.jsonl" for n in (1, 2, 3, 4))
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    with open(huge, "wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: no disk, but st_size says 200 MB
    deep.write_text('{"event": "a"}\n' + "[" * 200_000 + "\n5\n" + '{"event": "b"}\n')
    reasons = {
        fifo: "it is a FIFO (named pipe), not a regular file",
        zero: "it is a symlink to /dev/zero; replace it with a regular file",
        huge: "it is 209715200 bytes, over the limit",
    }
    for path, reason in reasons.items():
        with pytest.raises(FileRefused, match=re.escape(reason)) as refused:
            read_audit(path)
        assert str(path) in str(refused.value)
    assert [e["event"] for e in read_audit(deep)] == ["a", "b"]
    assert read_audit(run / "missing.jsonl") == []


@pytest.mark.timeout(120)
def test_a_latin1_issue_and_brief_are_named_not_mangled(demo: Path, home: Path) -> None:
    """Issue 20 finding 15: a Windows-1252 file became 'caf\ufffd' in the LLD, silently."""
    (demo / "issues" / "3.md").write_bytes("# Caf\u00e9 menu\n\nPrices in \u00a3.\n".encode("cp1252"))
    (demo / "ideas" / "active" / "csv-import.md").write_bytes(
        "# Na\u00efve import\n\nCSV.\n".encode("cp1252")
    )
    lld = run_cli(
        "lld-workflow", "--repo", str(demo), "--all", "--provider", "mock", home=home, verbose=False
    )
    out = lld.stdout + lld.stderr
    assert lld.returncode == 1, out
    assert (
        "[LLD-3] FAILED: refused issue issues/3.md: it is not valid UTF-8 (byte 5); save it as UTF-8" in out
    )
    assert not (demo / "docs/lld/active/LLD-003.md").exists()
    briefs = run_cli(
        "issue-workflow", "--repo", str(demo), "--all", "--provider", "mock", home=home, verbose=False
    )
    out = briefs.stdout + briefs.stderr
    assert "refused brief ideas/active/csv-import.md: it is not valid UTF-8 (byte 4); save it as UTF-8" in out
    written = b"".join(p.read_bytes() for p in (demo / "issues").glob("*.md"))
    assert "\ufffd".encode() not in written
