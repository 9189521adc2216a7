"""--item-timeout: a provider that never answers fails its item, keeps its checkpoint, resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import issue_flags, kept_db, run_cli, run_dirs

pytestmark = pytest.mark.timeout(150)


def _items(home: Path, run_dir: Path) -> dict[str, dict[str, object]]:
    return {i["item"]: i for i in json.loads((run_dir / "summary.json").read_text())["items"]}


def test_an_item_past_its_time_limit_fails_keeps_its_checkpoint_and_resumes(demo: Path, home: Path) -> None:
    args = ["--repo", str(demo), *issue_flags(3, 8), "--parallel", "2", "--provider", "mock"]
    slow = run_cli("lld-workflow", *args, "--item-timeout", "2s", home=home, AGENTOS_MOCK_LATENCY="6")
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "Traceback" not in slow.stdout + slow.stderr
    (first,) = run_dirs(home)
    items = _items(home, first)
    for item_id, key in (("LLD-3", "3"), ("LLD-8", "8")):
        assert items[item_id]["status"] == "failed"
        error = str(items[item_id]["error"])
        db = kept_db(home, demo, key)
        assert error.startswith("timed out after 2s (--item-timeout); checkpoint kept at"), error
        assert db.exists() and str(db) in error
    assert "[LLD-3] TIMED OUT after 2s" in slow.stdout

    resumed = run_cli("lld-workflow", *args, home=home)  # the default limit (30m) is plenty
    assert resumed.returncode == 0, resumed.stdout
    assert "Resuming from checkpoints first: LLD-3, LLD-8" in resumed.stdout
    assert not list((home / "checkpoints").rglob("*.db"))


def test_item_timeout_from_the_settings_file_and_bad_values(demo: Path, home: Path) -> None:
    (demo / "agentos.toml").write_text('item_timeout = "1s"\n')
    args = ["--repo", str(demo), "--issue", "3", "--parallel", "1", "--provider", "mock"]
    slow = run_cli("lld-workflow", *args, home=home, AGENTOS_MOCK_LATENCY="5")
    assert slow.returncode == 1 and "timed out after 1s" in slow.stdout, slow.stdout
    single = ["--repo", str(demo), "--issue", "8", "--provider", "mock"]  # in this process, no batch
    in_process = run_cli("lld-workflow", *single, home=home, AGENTOS_MOCK_LATENCY="5")
    assert in_process.returncode == 1, in_process.stdout
    assert "FAILED: timed out after 1s (--item-timeout); checkpoint kept at" in in_process.stdout
    assert kept_db(home, demo, 8).exists()
    unlimited = run_cli("lld-workflow", *args, "--item-timeout", "0", home=home, AGENTOS_MOCK_LATENCY="0.01")
    assert unlimited.returncode == 0, unlimited.stdout  # the flag overrides the file; 0 = no limit

    bad = run_cli("lld-workflow", *args, "--item-timeout", "soon", home=home)
    assert bad.returncode == 2 and "--item-timeout: invalid duration 'soon'" in bad.stderr
    (demo / "agentos.toml").write_text('item_timeout = "forever"\n')
    bad_file = run_cli("lld-workflow", *args, home=home)
    assert bad_file.returncode == 2 and "setting 'item_timeout'" in bad_file.stderr
