"""A read-only, full or misplaced AGENTOS_HOME: exit 2 at start-up, one line naming the path."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentos.core.errors import ConfigError
from agentos.core.home_check import check_home_writable
from tests.helpers.cli import cli_env

pytestmark = pytest.mark.timeout(90)


def _run(demo: Path, home: Path, preexec: object = None) -> subprocess.CompletedProcess[str]:
    args = ["--repo", str(demo), "--issue", "3", "--issue", "5", "--parallel", "2", "--provider", "mock"]
    return subprocess.run(
        [sys.executable, "-m", "agentos.cli.lld", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(home),
        check=False,
        preexec_fn=preexec,  # type: ignore[arg-type]
    )


def test_a_file_where_the_home_should_be(demo: Path, tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("oops")  # works as root too, unlike chmod
    result = _run(demo, home)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and str(home) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_where_checkpoints_should_be(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "checkpoints").write_text("")
    with pytest.raises(ConfigError, match=r"cannot write to .*checkpoints"):
        check_home_writable()


def _full_disk() -> None:
    """Every write of a byte fails, as on a full disk (EFBIG instead of ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_full_disk(demo: Path, home: Path) -> None:
    result = _run(demo, home, _full_disk)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Error: AGENTOS_HOME" in result.stderr and str(home) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_read_only_home(home: Path, tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes through chmod; the file-instead-of-a-folder tests cover the same path")
    home.mkdir(parents=True)
    home.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not usable"):
            check_home_writable()
    finally:
        home.chmod(0o700)


def test_a_writable_home_passes_and_leaves_no_probe(home: Path) -> None:
    check_home_writable()
    assert not [p for p in home.rglob("*") if p.is_file()]


def test_a_link_at_the_probe_name_is_never_written_through(home: Path, tmp_path: Path) -> None:
    """The probe's name is guessable (pid): a symlink or hard link there had its target truncated."""
    import os

    from agentos.core.home_check import PROBE

    precious, other = tmp_path / "precious.txt", tmp_path / "other.txt"
    precious.write_text("precious\n")
    other.write_text("other\n")
    (home / "logs").mkdir(parents=True)
    (home / f"{PROBE}-{os.getpid()}").symlink_to(precious)
    os.link(other, home / "logs" / f"{PROBE}-{os.getpid()}")
    check_home_writable()
    assert precious.read_text() == "precious\n" and other.read_text() == "other\n"
    assert not list(home.rglob(f"{PROBE}-*"))
