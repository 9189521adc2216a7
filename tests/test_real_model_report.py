"""scripts/real_model_report.py builds its report only from run folders: checked here on
real (OFFLINE MOCK) run folders, so the generator of docs/real-model.md cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, issue_flags, run_cli, run_dirs

pytestmark = pytest.mark.timeout(150)


def test_the_report_is_built_from_the_run_folders(demo: Path, home: Path, tmp_path: Path) -> None:
    runs: list[str] = []
    for mode, extra in (("structured", []), ("text", ["--no-structured-output"])):
        before = set(run_dirs(home))
        result = run_cli(
            "lld-workflow", "--repo", str(demo), *issue_flags(30, 42), "--parallel", "2",
            "--provider", "mock", "--force", *extra, home=home,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout
        (new,) = set(run_dirs(home)) - before
        runs += ["--run", mode, "lld-workflow", str(new)]
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"generated": "test", "model": "mock (OFFLINE MOCK)"}))
    out = tmp_path / "report.md"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/real_model_report.py"),
            "--out",
            str(out),
            "--meta",
            str(meta),
            *runs,
        ],
        check=True,
        timeout=60,
    )
    report = out.read_text()
    assert "Do not edit by hand" in report and "- **Model:** mock (OFFLINE MOCK)" in report
    # LLD-30 answers garbage in round 1 (garbage-first), then approves; LLD-42 revises once.
    assert "| on | answers that matched the verdict schema | 3 of 4 (75%) | 0 | 0 |" in report
    assert "| off | answers in the text verdict format (`VERDICT:` ...) | 3 of 4 (75%) | 0 | 0 |" in report
    assert "answer not in the verdict schema: not a JSON object" in report
    assert "| lld-workflow, structured output on | LLD-42 | 2 | APPROVED | 0 | structured |  |" in report
    calls = [
        line for line in report.splitlines() if line.startswith("| lld-workflow") and "| reviewer |" in line
    ]
    assert len(calls) == 8 and all("| ok |" in line for line in calls)
