"""Credentials files: permission warnings like ssh, and every error names the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentos.core.errors import ConfigError
from agentos.keys.sources import load_credentials, parse_credentials_file
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.timeout(60)
GOOD = {"credentials": [{"name": "k1", "type": "api_key", "key": "mock-secret-key-1"}]}


def write(home: Path, content: bytes | str, mode: int = 0o600, provider: str = "gemini") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{provider}-credentials.json"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_group_or_world_readable_file_warns_once_with_the_fix(home: Path) -> None:
    path = write(home, json.dumps(GOOD), 0o644)
    warnings: list[str] = []
    for _ in range(2):
        creds = parse_credentials_file(path, "gemini", warn=lambda line, p, m: warnings.append(line))
        assert [c.name for c in creds] == ["k1"]
    assert warnings[0] == (
        f"[COORDINATOR] Warning: credentials file {path} is accessible by other users (mode 0644); "
        f"run: chmod 600 {path}"
    )
    assert "mock-secret-key-1" not in warnings[0]


def test_private_file_does_not_warn(home: Path) -> None:
    path = write(home, json.dumps(GOOD), 0o600)
    warnings: list[str] = []
    parse_credentials_file(path, "gemini", warn=lambda line, p, m: warnings.append(line))
    assert warnings == []


def test_cli_warns_about_a_readable_file(demo: Path, home: Path) -> None:
    path = write(home, json.dumps(GOOD), 0o640, provider="mock")
    result = run_cli("lld-workflow", "--repo", str(demo), "--issue", "3", "--provider", "mock", home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(f"chmod 600 {path}") == 1  # once, though the pool re-reads the file
    assert "(mode 0640)" in result.stdout


def test_non_utf8_file_names_the_file(home: Path) -> None:
    path = write(home, b'{"credentials": [{"name": "k\xff", "key": "x"}]}')
    with pytest.raises(ConfigError) as info:
        load_credentials("gemini")
    assert str(info.value) == (
        f"refused credentials file {path}: it is not valid UTF-8 (byte 28); save it as UTF-8"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{\xff\xfe}", "it is not valid UTF-8 (byte 1); save it as UTF-8"),
        (b"\xff\xfe{}", "it is UTF-16, not UTF-8; save it as UTF-8"),  # a UTF-16 byte-order mark
    ],
)
def test_cli_non_utf8_file_is_exit_2_without_traceback(
    demo: Path, home: Path, data: bytes, reason: str
) -> None:
    path = write(home, data, provider="mock")
    result = run_cli("lld-workflow", "--repo", str(demo), "--issue", "3", "--provider", "mock", home=home)
    assert result.returncode == 2
    assert f"refused credentials file {path}: {reason}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(10)
def test_fifo_directory_and_symlink_are_clear_errors(home: Path, tmp_path: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "gemini-credentials.json"
    os.mkfifo(path)  # nobody writes: a plain open() would block the run forever
    with pytest.raises(ConfigError, match=f"refused credentials file {path}: it is a FIFO"):
        load_credentials("gemini")
    path.unlink()
    path.mkdir()
    with pytest.raises(ConfigError, match="it is a directory"):
        load_credentials("gemini")
    path.rmdir()
    real = write(tmp_path, json.dumps(GOOD))
    path.symlink_to(real)
    with pytest.raises(ConfigError, match=r"it is a symlink to .*replace it with a regular file"):
        load_credentials("gemini")
    path.unlink()
    path.symlink_to(tmp_path / "gone.json")  # dangling: refused, not silently "no file"
    with pytest.raises(ConfigError, match="refused credentials file"):
        load_credentials("gemini")


def test_huge_file_is_refused(home: Path) -> None:
    path = write(home, b" " * (2 * 1024 * 1024))
    with pytest.raises(ConfigError, match=f"refused credentials file {path}: it is 2097152 bytes"):
        load_credentials("gemini")
