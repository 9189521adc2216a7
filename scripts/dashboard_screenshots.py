"""Screenshot each page of `agentos dashboard` into docs/images/, from a real mock run.

    python scripts/dashboard_screenshots.py [--chromium /usr/bin/chromium]

Runs, in a fresh AGENTOS_HOME: a paced run of 8 items against the loopback rate-limited
OpenAI-compatible server of benchmarks/ (permit waits, the key ledger's calls), then the
bundled demo (`lld-workflow --all --parallel 3`, offline mock provider, one simulated 429 per
key). Starts the real dashboard on a free loopback port and drives Debian's chromium
(Playwright, no browser download) through the runs list, a second demo run while it is
going, the finished demo run, the paced run, one item, and the `agentos show --timeline`
export. Needs the dev extra.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
URL = re.compile(r"(http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+)")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOS_", "GH_", "GITHUB_"))}
    env.update(
        AGENTOS_HOME=str(home),
        AGENTOS_MOCK_LATENCY="0.25",
        AGENTOS_SIMULATE_429="1",  # one 429 per key: the timeline shows key pauses, the pool cool-downs
        AGENTOS_SIMULATE_429_RETRY="2",
        PYTHONUNBUFFERED="1",
    )
    return env


def _start_demo(home: Path, work: Path, name: str, latency: str) -> subprocess.Popen[bytes]:
    """`lld-workflow --all --parallel 3` on a fresh copy of the demo, in the background."""
    demo = work / name
    shutil.copytree(ROOT / "examples" / "demo", demo)
    command = ["--repo", str(demo), "--all", "--parallel", "3", "--provider", "mock"]
    return subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.lld", *command],
        env={**_env(home), "AGENTOS_MOCK_LATENCY": latency},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def _finish(run: subprocess.Popen[bytes]) -> None:
    code = run.wait(300)
    if code not in (0, 1):  # 1: the demo's issue 9 has no body, and fails by design
        raise SystemExit(f"the demo run failed ({code})")


def _paced_run(home: Path, work: Path) -> None:
    """8 items on two keys of a loopback OpenAI-compatible server allowing 3 calls per 3 s per
    key: calls wait for permits (the timeline's yellow) and the key ledger records each one."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.rate_limited_server import RateLimitedServer

    ws = work / "paced"
    (ws / "issues").mkdir(parents=True)
    for n in range(1, 9):
        (ws / "issues" / f"{n}.md").write_text(
            f"# Store record type {n}\n\nStore and serve record type {n}.\n"
        )
    keys = {"alpha": "sk-shots-alpha-0123456789abcdef", "beta": "sk-shots-beta-fedcba9876543210"}
    home.mkdir(parents=True, exist_ok=True)
    credentials = home / "openai-credentials.json"
    credentials.write_text(json.dumps({"credentials": [{"name": k, "key": v} for k, v in keys.items()]}))
    credentials.chmod(0o600)
    with RateLimitedServer(3, 3.0, latency=0.3) as server:
        env = {**_env(home), "AGENTOS_OPENAI_BASE_URL": server.url + "/v1"}
        env.pop("AGENTOS_SIMULATE_429", None)
        command = ["--repo", str(ws), "--all", "--parallel", "4", "--per-key-concurrency", "3"]
        done = subprocess.run(
            [sys.executable, "-m", "agentos.cli.lld", *command, "--provider", "openai:gpt-test"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"the paced run failed ({done.returncode})")


def _serve(home: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentos.cli.runs", "dashboard", "--port", "0", "--no-browser"],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        match = URL.search(line)
        if match:
            return proc, match.group(1)
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the dashboard printed no URL")


def _shot(page: Page, address: str | None, name: str, full: bool) -> None:
    if address is not None:
        page.goto(address)
        page.wait_for_load_state("load")
    page.screenshot(path=str(OUT / name), full_page=full)
    print(f"wrote {(OUT / name).relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(f"no chromium at {args.chromium}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agentos-shots-") as tmp:
        work = Path(tmp)
        home = work / "home"
        _paced_run(home, work)
        paced = sorted((home / "logs" / "parallel").iterdir())[-1].name
        _finish(_start_demo(home, work, "demo", "0.25"))
        run = sorted((home / "logs" / "parallel").iterdir())[-1].name
        exported = work / "timeline.html"
        subprocess.run(
            [sys.executable, "-m", "agentos.cli.runs", "show", "--timeline", run, "-o", str(exported)],
            env=_env(home),
            check=True,
            timeout=60,
        )
        proc, url = _serve(home)
        base = url.split("/?", 1)[0]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)  # the token: a cookie from now on
                # A second run, still going: the runs list and its page, live.
                second = _start_demo(home, work, "demo-2", "0.8")
                try:
                    page.wait_for_selector("tr.state-running a", timeout=60_000)
                    page.wait_for_timeout(500)
                    _shot(page, None, "dashboard-runs.png", full=False)
                    page.click("tr.state-running a")
                    page.wait_for_selector("svg.timeline rect[data-kind=lane]", timeout=60_000)
                    page.wait_for_timeout(6000)  # a few items in, updated live
                    _shot(page, None, "dashboard-run-live.png", full=True)
                finally:
                    _finish(second)
                _shot(page, f"{base}/run/{run}", "dashboard-run.png", full=True)
                _shot(page, f"{base}/run/{paced}", "dashboard-run-paced.png", full=True)
                page.set_viewport_size({"width": 1280, "height": 1500})
                _shot(page, f"{base}/run/{run}/item/LLD-12", "dashboard-item.png", full=False)
                page.set_viewport_size({"width": 1280, "height": 900})
                _shot(page, exported.as_uri(), "dashboard-timeline-export.png", full=True)
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
