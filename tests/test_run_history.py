"""`agentos runs/show/clean` against hostile run folders: corrupt, huge or odd summaries,
FIFOs and symlinks. Nothing crashes, hangs, prints escapes, or deletes outside run folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentos.core import mounts
from agentos.core.durations import parse_age
from agentos.core.errors import ConfigError
from agentos.runs.clean import plan_clean, remove_run_folder, remove_tree
from agentos.runs.run_files import RunHistoryError, clean_text
from agentos.runs.summary import RunSummary, read_summary
from tests.helpers.cli import cli_env, issue_flags, kept_db, run_cli, run_dirs

pytestmark = pytest.mark.timeout(60)
OLD = time.time() - 90 * 86400


def agentos(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(home),
        check=False,
    )


def make_run(home: Path, name: str, summary: object | bytes | None, age: float | None = None) -> Path:
    run_dir = home / "logs" / "parallel" / name
    run_dir.mkdir(parents=True)
    (run_dir / "coordinator.log").write_text("x\n")
    if summary is not None:
        raw = summary if isinstance(summary, bytes) else json.dumps(summary).encode()
        (run_dir / "summary.json").write_bytes(raw)
    if age is not None:
        for path in [*run_dir.iterdir(), run_dir]:
            os.utime(path, (age, age), follow_symlinks=False)
    return run_dir


def age_tree(path: Path, when: float = OLD) -> None:
    for child in path.iterdir():
        os.utime(child, (when, when), follow_symlinks=False)
    os.utime(path, (when, when), follow_symlinks=False)


def test_hostile_summaries_are_listed_not_crashed_on(home: Path, tmp_path: Path) -> None:
    make_run(home, "20260101-000001", b"{not json")
    make_run(home, "20260101-000002", [1, 2, 3])
    make_run(home, "20260101-000003", b"[" * 100_000 + b"]" * 100_000)
    big = make_run(home, "20260101-000004", None)
    with open(big / "summary.json", "wb") as f:
        f.truncate(20 * 1024 * 1024)
    fifo = make_run(home, "20260101-000005", None)
    os.mkfifo(fifo / "summary.json")
    link = make_run(home, "20260101-000006", None)
    secret = tmp_path / "outside.json"
    secret.write_text('{"workflow": "SECRET-OUTSIDE"}')
    (link / "summary.json").symlink_to(secret)
    make_run(
        home,
        "20260101-000007",
        {
            "workflow": "\x1b[31mred\x1b]0;title\x07",
            "totals": {"approved": "many", "failed": 2},
            "exit_code": "1",
        },
    )
    make_run(home, "20260101-000008", None)  # killed before it wrote a summary
    result = agentos(home, "runs")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr and "\x1b" not in out and "\x07" not in out
    assert "not valid JSON" in out and "holds a list" in out and "over" in out
    assert "not a regular file" in out and "symlink; refused" in out and "SECRET-OUTSIDE" not in out
    assert "no summary.json" in out and "2 failed" in out  # the one count that is a number
    for name in ("20260101-000003", "20260101-000005", "20260101-000006"):
        shown = agentos(home, "show", name)
        assert shown.returncode == 1 and "Traceback" not in shown.stderr, shown.stderr


def test_show_survives_markup_escapes_and_wrong_types(home: Path) -> None:
    items = [
        {
            "item": "[/x]LLD-1",
            "status": "failed",
            "rounds": "3",
            "duration_s": "slow",
            "error": "[/bold] \x1b[2J",
        },
        {
            "item": 5,
            "status": None,
            "rounds": -4,
            "duration_s": float("1e308"),
            "log": ["a"],
            "tokens": {"x": 1},
        },
        "not a dict",
    ]
    make_run(home, "20260102-000000", {"workflow": "lld-workflow", "items": items, "duration_s": True})
    result = agentos(home, "show")
    assert result.returncode == 0, result.stderr
    assert "[/x]LLD-1" in result.stdout and "[/bold]" in result.stdout and "\x1b" not in result.stdout
    assert "1 failed ([/x]LLD-1)" in result.stdout


def test_a_summary_read_back_types_every_value() -> None:
    """One reader (RunSummary.from_json) for every caller: wrong types read as unknown."""
    run = RunSummary.from_json(
        {
            "workflow": ["x"],
            "exit_code": True,
            "duration_s": float("inf"),
            "totals": {"approved": "many", "failed": 2, "\x1b[2J": 1},
            "items": [{"item": 1, "rounds": True, "duration_s": "x", "cost": float("nan")}, "junk"],
            "usage": "lots",
            "stopped_early": "\x1b]0;t\x07budget",
        }
    )
    (record,) = run.items
    assert record.item == "?" and record.rounds == 0 and record.duration_s is None
    assert record.usage is not None and record.usage.cost is None  # NaN is no cost
    assert run.exit_code is None and run.duration_s is None and run.usage is None
    assert run.totals == {"failed": 2, "?[2J": 1} and run.workflow == '["x"]'
    assert (
        run.stopped_early is not None and "\x1b" not in run.stopped_early and "\x07" not in run.stopped_early
    )
    assert RunSummary.from_json(run.to_json()) == run  # what is written reads back the same


def test_read_summary_refuses_a_symlink(home: Path, tmp_path: Path) -> None:
    run_dir = make_run(home, "20260103-000000", None)
    (run_dir / "summary.json").symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(RunHistoryError, match="symlink"):
        read_summary(run_dir)


@pytest.mark.parametrize("bad", ["30", "d", "-3d", "0d", "30y", "1e9d", ""])
def test_parse_age_rejects_nonsense(bad: str) -> None:
    with pytest.raises(ConfigError, match="--older-than"):
        parse_age(bad)


def test_clean_never_leaves_the_run_folders(home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    os.utime(outside, (OLD, OLD))
    runs = home / "logs" / "parallel"
    old_run = make_run(
        home,
        "20200101-000000",
        {"items": [{"item": "LLD-1", "status": "failed", "checkpoint": str(outside / "keep.txt")}]},
    )
    (old_run / "escape").symlink_to(outside)  # a symlink inside a run folder
    (old_run / "file-link").symlink_to(outside / "keep.txt")
    age_tree(old_run)
    (runs / "20200101-000001").symlink_to(outside)  # a symlink named like a run folder
    (runs / "not-a-run").mkdir()
    os.utime(runs / "not-a-run", (OLD, OLD))
    result = agentos(home, "clean", "--older-than", "30d")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not old_run.exists()
    assert (outside / "keep.txt").read_text() == "mine"
    assert (runs / "20200101-000001").is_symlink() and (runs / "not-a-run").is_dir()


def test_clean_keeps_what_a_kept_checkpoint_needs(home: Path) -> None:
    checkpoints = home / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "lld_workflow_9.db").write_bytes(b"db")
    entry = {"item": "LLD-9", "status": "failed", "checkpoint": "/anything/lld_workflow_9.db"}
    older = make_run(home, "20200101-000000", {"items": [entry]}, age=OLD)
    newer = make_run(home, "20200102-000000", {"items": [entry]}, age=OLD + 86400)
    unrelated = make_run(home, "20200103-000000", {"items": []}, age=OLD)
    recent = make_run(home, "20990101-000000", {"items": []})
    plan = plan_clean(parse_age("30d"))
    assert plan.remove == [older, unrelated] and [p for p, _ in plan.keep] == [newer]
    dry = agentos(home, "clean", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0 and f"Would remove {older}" in dry.stdout and older.exists()
    assert f"Kept {newer}: its logs explain the kept checkpoint lld_workflow_9.db" in dry.stdout
    done = agentos(home, "clean", "--older-than", "30d")
    assert done.returncode == 0, done.stderr
    assert not older.exists() and not unrelated.exists() and newer.exists() and recent.exists()
    assert (checkpoints / "lld_workflow_9.db").read_bytes() == b"db"


def test_show_and_clean_usage_errors(home: Path) -> None:
    none = agentos(home, "show")
    assert none.returncode == 2 and "no finished runs" in none.stderr
    missing = agentos(home, "show", "20990101-000000")
    assert missing.returncode == 2 and "no run folder" in missing.stderr
    bad_age = agentos(home, "clean", "--older-than", "soon")
    assert bad_age.returncode == 2 and "--older-than takes a positive age" in bad_age.stderr
    empty = agentos(home, "runs")
    assert empty.returncode == 0 and "No runs yet" in empty.stdout


def test_show_survives_non_finite_and_huge_numbers(home: Path) -> None:
    """json.loads reads `Infinity`: a token count of inf once reached int() in the table."""
    raw = (
        b'{"workflow": "lld-workflow", "items": ['
        b'{"item": "LLD-1", "status": "approved", "rounds": 2, "duration_s": Infinity,'
        b' "input_tokens": Infinity, "output_tokens": 1e400, "cost": NaN},'
        b'{"item": "LLD-2", "status": "approved", "rounds": 1, "duration_s": null,'
        b' "input_tokens": 100000000000000000000000, "output_tokens": 5, "cost": -Infinity}]}'
    )
    make_run(home, "20260104-000000", raw)
    result = agentos(home, "show")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    rows = [line for line in result.stdout.splitlines() if "LLD-" in line]
    assert len(rows) == 2 and all(" ? " in row for row in rows), result.stdout
    assert "inf" not in result.stdout.lower() and "nan" not in result.stdout.lower()


def test_clean_keeps_the_run_that_explains_a_real_runs_kept_checkpoint(demo: Path, home: Path) -> None:
    """The layout comes from a real run: checkpoints live in a folder per workspace (ADR 0002)."""
    result = run_cli(
        "lld-workflow", "--repo", str(demo), *issue_flags(3, 8), "--parallel", "2", "--provider", "mock",
        "--item-timeout", "1s", home=home, AGENTOS_MOCK_LATENCY="3",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # timed out: checkpoints are kept
    kept = kept_db(home, demo, 8)
    assert kept.is_file()
    (run_dir,) = run_dirs(home)
    for path in [*run_dir.iterdir(), run_dir]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    dry = agentos(home, "clean", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    expected = f"{kept.parent.name}/{kept.name}"
    assert f"Kept {run_dir}: its logs explain the kept checkpoint {expected}" in dry.stdout, dry.stdout
    assert agentos(home, "clean", "--older-than", "30d").returncode == 0
    assert run_dir.exists() and kept.is_file()


def test_ctrl_c_stops_clean_between_folders(home: Path) -> None:
    """Its stdout pipe is left unread, so clean blocks mid-way; SIGINT then lands while it runs."""
    base = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0, -1))
    names = [time.strftime("%Y%m%d-%H%M%S", time.localtime(base + i)) for i in range(1500)]
    for name in names:
        make_run(home, name, None, age=OLD)
    process = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.runs", "clean", "--older-than", "30d"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(home),
    )
    try:
        runs = home / "logs" / "parallel"
        deadline = time.monotonic() + 30
        while len(list(runs.iterdir())) > 1400 and time.monotonic() < deadline:
            time.sleep(0.02)  # clean has begun removing
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    reported = {line.split()[-1] for line in out.splitlines() if line.startswith("Removed /")}
    left = {str(p) for p in runs.iterdir()}
    assert "Stopped by a signal after" in out and reported and left, out[-500:]
    assert not reported & left and len(reported) + len(left) == len(names)  # none half-removed


def test_show_replaces_invisible_and_unencodable_characters(home: Path) -> None:
    """Bidi overrides, zero-width and separators could disguise or forge lines; a lone surrogate broke `runs`."""
    raw = (
        '{"workflow": "lld\\u202e-workflow", "workspace": "/repo\\u2066x\\u2069", "duration_s": '
        + "9" * 400
        + ', "items": [{"item": "LLD-1\\u202egpj.exe", "status": "failed", "cost": '
        + "9" * 400
        + ', "error": "ok\\u2028FAKE LINE\\u200b\\u061c\\u200f\\ud800"}]}'
    )
    make_run(home, "20260105-000000", raw.encode())
    for command in ("show", "runs"):
        result = agentos(home, command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        hidden = {
            c for c in result.stdout if ord(c) in (0x202E, 0x2066, 0x2069, 0x2028, 0x200B, 0x61C, 0x200F)
        }
        assert not hidden and "lld?-workflow" in result.stdout, result.stdout
    assert "LLD-1?gpj.exe" in agentos(home, "show").stdout


def test_only_ascii_run_names_count(home: Path) -> None:
    """A folder named in Arabic-Indic digits sorted after every real run and took its protection."""
    checkpoints = home / "checkpoints" / "demo-0123456789ab"
    checkpoints.mkdir(parents=True)
    (checkpoints / "lld_workflow_9.db").write_bytes(b"db")
    entry = {"item": "LLD-9", "status": "failed", "checkpoint": "/x/demo-0123456789ab/lld_workflow_9.db"}
    real = make_run(home, "20200101-000000", {"items": [entry]}, age=OLD)
    fake = make_run(
        home,
        "\u0662\u0660\u0662\u0660\u0660\u0661\u0660\u0662-\u0660\u0660\u0660\u0660\u0660\u0660",
        {"items": [entry]},
        age=OLD,
    )
    newline = make_run(home, "20200101-000001\n", {"items": []}, age=OLD)
    plan = plan_clean(parse_age("30d"))
    assert [p for p, _ in plan.keep] == [real] and plan.remove == []
    assert agentos(home, "clean", "--older-than", "30d").returncode == 0
    assert real.exists() and fake.exists() and newline.exists()  # not run folders: left alone


def _old_runs(home: Path, count: int, files: int = 0) -> list[str]:
    base = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0, -1))
    names = [time.strftime("%Y%m%d-%H%M%S", time.localtime(base + i)) for i in range(count)]
    for name in names:
        run_dir = make_run(home, name, None)
        for i in range(files):
            (run_dir / f"item-{i}.log").write_text("x")
        for path in [*run_dir.iterdir(), run_dir]:
            os.utime(path, (OLD, OLD), follow_symlinks=False)
    return names


def test_a_closed_pipe_ends_the_output_not_the_work(home: Path) -> None:
    """`agentos clean | head -1` stopped removing after a few folders and exited 1."""
    _old_runs(home, 3000)
    process = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.runs", "clean", "--older-than", "30d"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(home),
    )
    try:
        assert process.stdout is not None and process.stdout.readline().startswith(b"Removed ")
        process.stdout.close()  # what `head -1` does
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and not err, err
    assert not list((home / "logs" / "parallel").iterdir())


def test_two_cleans_at_once_both_succeed(home: Path) -> None:
    """Each once reported hundreds of folders the other had removed as errors, and exited 1."""
    _old_runs(home, 1200, files=10)
    command = [sys.executable, "-m", "agentos.cli.runs", "clean", "--older-than", "30d"]
    first, second = (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(home)
        )
        for _ in range(2)
    )
    results = [p.communicate(timeout=60) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    assert all("Error" not in err for _, err in results), results
    assert not list((home / "logs" / "parallel").iterdir())


def test_ctrl_c_ends_a_long_show_at_once(home: Path) -> None:
    """`show` changes nothing, so a signal ends it at once; a flag nobody checked kept it running."""
    items = [{"item": f"LLD-{i}", "status": "failed", "error": "e", "log": "l"} for i in range(60000)]
    make_run(home, "20260106-000000", {"items": items})
    process = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.runs", "show"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(home),
    )
    try:
        time.sleep(1.5)
        assert process.poll() is None, "rendering 60,000 rows takes longer than this"
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    assert took < 10, took  # generous: the whole table takes far longer


def nest(folder: Path, depth: int) -> None:
    """`folder/d/d/d/...` `depth` deep, with a file at the bottom: by descriptors, since
    the path itself is longer than the system allows."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)


def test_clean_removes_a_3000_deep_folder_and_goes_on(home: Path, request: pytest.FixtureRequest) -> None:
    """Issue 20 finding 11: a RecursionError traceback, and the folders after it never reached."""
    deep = make_run(home, "20200101-000000", {"items": []})
    nest(deep, 3000)
    request.addfinalizer(lambda: deep.exists() and remove_tree(deep))  # pytest's own cleanup recurses
    after = make_run(home, "20200102-000000", {"items": []})
    for run in (deep, after):
        age_tree(run)
    result = agentos(home, "clean", "--older-than", "30d")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not deep.exists() and not after.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_clean_never_crosses_a_mount_point_and_goes_on(home: Path, tmp_path: Path) -> None:
    mounted = make_run(home, "20200101-000000", {"items": []})
    point = mounted / "mnt"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(point)], check=False).returncode != 0:
        pytest.skip("this machine cannot mount a tmpfs")
    try:
        (point / "on-another-disk.txt").write_text("keep me")
        after = make_run(home, "20200102-000000", {"items": []})
        for run in (mounted, after):
            age_tree(run)
        result = agentos(home, "clean", "--older-than", "30d")
        out = result.stdout + result.stderr
        assert "another file system is mounted inside it at mnt" in out, out
        assert (point / "on-another-disk.txt").read_text() == "keep me"
        assert not after.exists()  # the next folder was still cleaned
    finally:
        subprocess.run(["umount", str(point)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="a bind mount needs root")
def test_clean_never_enters_a_bind_mount_of_the_same_disk(home: Path, tmp_path: Path) -> None:
    """A bind mount has the folder's own st_dev: only the kernel's mount table tells."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "work.txt").write_text("keep me")
    mounted = make_run(home, "20200101-000000", {"items": []})
    point = mounted / "mnt"
    point.mkdir()
    if subprocess.run(["mount", "--bind", str(precious), str(point)], check=False).returncode != 0:
        pytest.skip("this machine cannot bind-mount")
    try:
        assert os.stat(point).st_dev == os.stat(mounted).st_dev  # what made st_dev blind to it
        after = make_run(home, "20200102-000000", {"items": []})
        for run in (mounted, after):
            age_tree(run)
        age_tree(precious)
        result = agentos(home, "clean", "--older-than", "30d")
        out = result.stdout + result.stderr
        assert "another file system is mounted inside it at mnt" in out, out
        assert (precious / "work.txt").read_text() == "keep me"
        assert not after.exists()  # the next folder was still cleaned
    finally:
        subprocess.run(["umount", str(point)], check=False)


def test_a_mount_in_the_mount_table_is_never_crossed(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without root: the mount table is injected, with mountinfo's octal escapes."""
    run = make_run(home, "20200101-000000", {"items": []})
    (run / "my mnt").mkdir()
    (run / "my mnt" / "work.txt").write_text("keep me")
    table = tmp_path / "mountinfo"
    real = os.path.realpath(run / "my mnt").replace(" ", "\\040")
    table.write_text(
        f"22 27 0:21 / /proc rw - proc proc rw\n90 27 253:0 /precious {real} rw - ext4 /dev/x rw\n"
    )
    monkeypatch.setattr(mounts, "MOUNTINFO", table)
    age_tree(run / "my mnt")
    age_tree(run)
    plan = plan_clean(parse_age("30d"))
    assert plan.remove == [] and plan.keep == [
        (run, "another file system is mounted inside it at my mnt; never crossed")
    ]  # --dry-run says so too
    with pytest.raises(RunHistoryError, match="mounted inside it at my mnt; never crossed"):
        remove_run_folder(run)
    assert (run / "my mnt" / "work.txt").read_text() == "keep me"


def test_clean_keep_n_keeps_the_newest_n(home: Path) -> None:
    """Issue 19 finding 10: `agentos clean` could not "keep the last N"."""
    checkpoints = home / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "lld_workflow_9.db").write_bytes(b"db")
    entry = {"item": "LLD-9", "status": "failed", "checkpoint": "/x/lld_workflow_9.db"}
    names = [f"2020010{i}-000000" for i in range(1, 7)]
    runs = [
        make_run(home, name, {"items": [entry] if i == 1 else []}, age=OLD + i)
        for i, name in enumerate(names)
    ]
    for run in runs[4:]:
        age_tree(run, time.time())  # the two newest are recent
    both = agentos(home, "clean", "--older-than", "30d", "--keep", "5", "--dry-run")
    assert both.returncode == 0, both.stderr
    assert [line for line in both.stdout.splitlines() if line.startswith("Would remove /")] == [
        f"Would remove {runs[0]}"
    ]
    assert "older than 30d and not among the newest 5" in both.stdout
    result = agentos(home, "clean", "--keep", "2")
    assert result.returncode == 0, result.stderr
    assert [r.exists() for r in runs] == [False, True, False, False, True, True], result.stdout
    assert f"Kept {runs[1]}: its logs explain the kept checkpoint lld_workflow_9.db" in result.stdout
    assert "Removed 3 run folder(s) not among the newest 2" in result.stdout
    assert agentos(home, "clean", "--keep", "0").returncode == 0
    assert [r.exists() for r in runs] == [False, True, False, False, False, False]


def test_clean_needs_an_age_or_a_count(home: Path) -> None:
    make_run(home, "20200101-000000", {"items": []}, age=OLD)
    for args in ((), ("--keep", "-1"), ("--keep", "x")):
        result = agentos(home, "clean", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--older-than AGE, --keep N, or both" in agentos(home, "clean").stderr
    assert (home / "logs" / "parallel" / "20200101-000000").exists()


def test_hostile_progress_lock_and_item_files_are_refused_not_trusted(home: Path, tmp_path: Path) -> None:
    """Issue 19 finding 9's new files are untrusted input too: progress.json, run.lock, the item's log."""
    fifo_progress = make_run(home, "20260201-000001", None)
    os.mkfifo(fifo_progress / "progress.json")
    linked = make_run(home, "20260201-000002", None)
    outside = tmp_path / "progress.json"
    outside.write_text('{"workflow": "SECRET-OUTSIDE", "total": 3}')
    (linked / "progress.json").symlink_to(outside)
    odd = make_run(home, "20260201-000003", None)
    (odd / "progress.json").write_text(
        '{"workflow": "\\u001b[31mlld", "total": "many", "done": {"approved": -2, "failed": 1}}'
    )
    os.mkfifo(odd / "run.lock")  # a FIFO lock: not a live coordinator
    items = [{"item": "LLD-1", "status": "failed"}, {"item": "LLD-2", "status": "failed"}]
    items += [{"item": "../../x", "status": "failed"}]
    shown = make_run(home, "20260201-000004", {"workflow": "lld-workflow", "items": items})
    os.mkfifo(shown / "LLD-1.log")
    (shown / "LLD-2.log").symlink_to(outside)
    (shown / "workflow-audit-1.jsonl").write_text(
        '{"event": "verdict", "round": 1, "verdict": "\\u001b]0;x", "blocking": [5]}\n{torn'
    )
    result = agentos(home, "runs", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    runs = {r["run"]: r for r in json.loads(result.stdout)}
    assert (
        runs["20260201-000001"]["state"] == "unreadable"
        and "not a regular file" in runs["20260201-000001"]["problem"]
    )
    assert (
        runs["20260201-000002"]["state"] == "unreadable" and "symlink" in runs["20260201-000002"]["problem"]
    )
    assert "SECRET-OUTSIDE" not in result.stdout
    assert runs["20260201-000003"]["state"] == "stopped" and runs["20260201-000003"]["totals"] == {
        "failed": 1
    }
    assert "\x1b" not in agentos(home, "runs").stdout
    for item, problem in (("LLD-1", "not shown: it is a FIFO"), ("2", "not shown: it is a symlink to")):
        out = agentos(home, "show", shown.name, item)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        assert problem in out.stdout.lower() or problem in out.stdout, out.stdout
        assert "SECRET-OUTSIDE" not in out.stdout and "\x1b" not in out.stdout
    assert "round 1: ?]0;x (1 blocking)" in agentos(home, "show", shown.name, "LLD-1").stdout
    traversal = agentos(home, "show", shown.name, "../../x")
    assert traversal.returncode == 0 and "not a file name; nothing read" in traversal.stdout


@given(st.text(max_size=700), st.integers(min_value=4, max_value=400))
def test_clean_text_fast_path_changes_nothing(text: str, limit: int) -> None:
    """Printable ASCII skips the per-character check (the dashboard cleans every audit field):
    the result is what the character-by-character rule gives."""
    import unicodedata

    from agentos.runs.run_files import _HIDDEN

    slow = "".join("?" if unicodedata.category(c) in _HIDDEN else c for c in text[: limit * 2])
    slow = slow if len(slow) <= limit else slow[: limit - 3] + "..."
    assert clean_text(text, limit) == slow
    ascii_text = "".join(chr(32 + ord(c) % 95) for c in text)  # printable ASCII: the fast path
    assert clean_text(ascii_text, limit) == (
        ascii_text if len(ascii_text) <= limit else ascii_text[: limit - 3] + "..."
    )
