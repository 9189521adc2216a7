"""`agentos dashboard` in a real browser: Debian's chromium, headless, driven by Playwright.

The server is the real CLI process on a loopback port; the runs are real `lld-workflow`
batch runs on a copy of the demo with the offline mock provider (no real LLM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cli import cli_env, run_cli, run_dirs
from tests.helpers.dashboard import PAYLOAD, browser, chromium_path, dashboard
from tests.helpers.live_run import LiveRun, kill_all

CHROMIUM = chromium_path()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on this machine: `apt-get install -y chromium` (.ci/run installs it)",
)
pytestmark = [needs_chromium]


SCRIPT = "<script>window.__pwned=1</script>"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _hostile_demo(demo: Path) -> None:
    """An issue whose title is hostile; the mock's reviewer quotes the title in its verdict."""
    (demo / "issues" / "99.md").write_text(
        f"# {PAYLOAD}\n\nRetry the {PAYLOAD} deliveries. mock-review: revisions=1\n", encoding="utf-8"
    )


def _watch(page: Any) -> list[str]:
    """Dialogs the page opened (an `alert` from injected script would be one)."""
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


@pytest.mark.timeout(240)
def test_pages_render_and_update_while_a_mock_run_is_going(home: Path, demo: Path) -> None:
    env = cli_env(home)
    with dashboard(env) as server, browser(CHROMIUM) as chrome:  # type: ignore[arg-type]
        page = chrome.new_page()
        assert page.goto(server.url).status == 200
        assert "No runs yet" in page.inner_text("main")
        page.evaluate("window.__same_page = 1")  # gone if anything reloaded the page
        run = LiveRun(
            "lld-workflow",
            "--repo",
            str(demo),
            "--all",
            "--parallel",
            "2",
            "--provider",
            "mock",
            home=home,
            AGENTOS_MOCK_LATENCY="0.3",
        )
        try:
            # The run appears on the open page by itself (server-sent events), marked running.
            page.wait_for_selector("tr.state-running a", timeout=60_000)
            assert page.evaluate("window.__same_page") == 1
            page.click("tr.state-running a")
            page.wait_for_selector("svg.timeline rect[data-kind=lane]", timeout=60_000)
            first = page.locator("svg.timeline rect[data-kind=lane]").count()
            page.evaluate("window.__same_page = 2")
            # Lanes are added as items start, and the run turns finished, on the same page.
            page.wait_for_selector(".facts .badge.state-finished", timeout=180_000)
            assert page.evaluate("window.__same_page") == 2
            assert int(page.get_attribute("body", "data-updates") or 0) >= 2
            assert run.wait(60) == 1, run.output  # the demo's issue 9 has no body: it fails, by design
        finally:
            kill_all(run)
        summary = json.loads((run_dirs(home)[-1] / "summary.json").read_text())
        items = summary["items"]
        assert len(items) == 11 and first <= len(items)
        page.reload()  # measure a page that no live update swaps out meanwhile
        scale, lanes = page.evaluate(
            """() => {
                const svg = document.querySelector("svg.timeline");
                const lanes = [...svg.querySelectorAll("rect[data-kind=lane]")];
                return [Number(svg.dataset.scale), lanes.map(e => [e.dataset.item, e.getBBox().width])];
            }"""
        )
        by_item = {item["item"]: item for item in items}
        assert sorted(i for i, _ in lanes) == sorted(by_item)  # one lane per item
        for item, width in lanes:
            record = by_item[item]
            took = _epoch(record["ended"]) - _epoch(record["started"])
            assert abs(width / scale - took) < 0.01, (item, width / scale, took)
            assert abs(width / scale - record["duration_s"]) < 0.1, (
                item,
                width / scale,
                record["duration_s"],
            )
        # rows, tokens, the key pool
        assert page.locator("table.items tbody tr").count() == len(items)
        assert "in /" in page.inner_text("table.items")
        assert page.locator("svg.keypool rect[data-kind=call]").count() > 0
        # an item's page: log, audit events, rounds with draft and verdict
        most = max(items, key=lambda i: i["rounds"])  # the item with the most review rounds
        page.click(f"table.items a:text-is('{most['item']}')")
        page.wait_for_selector("pre.log")
        assert "Executing" in page.inner_text("pre.log")
        assert page.locator("table.events tbody tr").count() > 3
        assert page.locator("pre.verdict").count() == most["rounds"] >= 2
        assert page.locator("pre.draft").count() == most["rounds"]
        assert '"verdict": "REVISE"' in page.inner_text("pre.verdict >> nth=0")


@pytest.mark.timeout(180)
def test_hostile_content_runs_nothing_and_shows_as_text(home: Path, demo: Path, tmp_path: Path) -> None:
    _hostile_demo(demo)
    done = run_cli(
        "lld-workflow",
        "--repo",
        str(demo),
        "--issue",
        "99",
        "--issue",
        "3",
        "--parallel",
        "2",
        "--provider",
        "mock",
        home=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = run_dirs(home)[-1]
    with (run_dir / "LLD-99.log").open("a", encoding="utf-8") as log:  # as a provider's error might echo it
        log.write(f"[LLD-99] provider said: {PAYLOAD}\n")
    exported = tmp_path / "timeline.html"
    shown = subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", "show", "--timeline", run_dir.name, "-o", str(exported)],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    with dashboard(cli_env(home)) as server, browser(CHROMIUM) as chrome:  # type: ignore[arg-type]
        page = chrome.new_page()
        dialogs = _watch(page)
        urls = [
            server.url,
            f"{server.base}/run/{run_dir.name}",
            f"{server.base}/run/{run_dir.name}/item/LLD-99",
            exported.as_uri(),
        ]
        page.goto(server.url)  # sets the cookie
        for url in urls:
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.evaluate("typeof window.__pwned") == "undefined", url
            # Escaped, not merely blocked by the CSP: no element was made from the payload.
            assert page.evaluate("document.querySelectorAll('img[src=x], script:not([src])').length") == 0, (
                url
            )
            if "/item/" in url:
                assert PAYLOAD in page.inner_text("h1 .title")  # the title, verbatim
                assert PAYLOAD in page.inner_text("pre.log")  # a log line
                # The reviewer quotes the title; its JSON answer escapes the quotes, not the tags.
                assert SCRIPT in page.inner_text("pre.verdict")
                assert SCRIPT in page.inner_text("table.events")  # the audited verdict's points
                assert SCRIPT in page.inner_text("pre.draft")
            elif "/run/" in url or url.startswith("file:"):
                assert PAYLOAD in page.inner_text("table.items")
        assert dialogs == []


@pytest.mark.timeout(90)
def test_a_request_without_the_token_is_refused(home: Path) -> None:
    with dashboard(cli_env(home)) as server:
        for path in (
            "/",
            "/static/app.js",
            "/events",
            "/run/20261204-101500",
            f"/?token={server.token[:-1]}x",
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.base + path, timeout=10)
            assert refused.value.code == 403, path
        with urllib.request.urlopen(server.url, timeout=10) as ok:
            assert ok.status == 200
            csp = ok.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            cookie = ok.headers["Set-Cookie"].split(";", 1)[0]
            assert "HttpOnly" in ok.headers["Set-Cookie"]
        with urllib.request.urlopen(
            urllib.request.Request(server.base + "/static/app.js", headers={"Cookie": cookie}), timeout=10
        ) as script:
            assert script.status == 200
        with browser(CHROMIUM) as chrome:  # type: ignore[arg-type]
            page = chrome.new_page()
            assert page.goto(server.base + "/").status == 403
            assert page.goto(server.url).status == 200
        assert server.stop() == 130  # SIGTERM: stopped, as Ctrl+C
        assert all(server.token not in line for line in server.lines[1:])  # printed once, never logged


@pytest.mark.timeout(120)
def test_corrupt_and_huge_run_folders_do_not_break_the_pages(home: Path) -> None:
    from tests.test_dashboard_records import T0, audit_line, make_run

    root = home / "logs" / "parallel"
    corrupt = root / "20261204-090000"
    corrupt.mkdir(parents=True)
    (corrupt / "summary.json").write_bytes(b"\x00\xff{{{")
    (corrupt / "workflow-audit-1.jsonl").write_bytes(b'\xff\xfe garbage\n{"event": 5}\n')
    huge = make_run(home, "20261204-090100")
    with (huge / "workflow-audit-1.jsonl").open("a") as fh:
        line = audit_line("llm_call", "LLD-1", T0 + 3, key_name="key-a", outcome="ok", duration_s=0.1) + "\n"
        fh.write(line * (30 * 1024 * 1024 // len(line)))
    with (huge / "LLD-1.log").open("a") as fh:
        fh.write(("y" * 4000 + "\n") * 5000)
    (huge / "LLD-2.log").symlink_to("/etc/hostname")
    os.mkfifo(huge / "workflow-audit-7.jsonl")
    with dashboard(cli_env(home)) as server, browser(CHROMIUM) as chrome:  # type: ignore[arg-type]
        page = chrome.new_page()
        assert page.goto(server.url).status == 200
        assert page.locator("table.runs tbody tr").count() == 2
        assert "unreadable" in page.inner_text("tr[data-run='20261204-090000']")
        for path, expect in (
            ("/run/20261204-090000", "unreadable"),
            ("/run/20261204-090100", "LLD-1"),
            ("/run/20261204-090100/item/LLD-1", "last part is shown"),
            ("/run/20261204-090100/item/LLD-2", "symlink"),
            ("/run/..%2F..%2Fetc", "Not found"),
        ):
            response = page.goto(server.base + path)
            assert response.status in (200, 404), path
            assert expect in page.inner_text("main"), path


@pytest.mark.timeout(60)
def test_show_timeline_writes_one_self_contained_file(home: Path) -> None:
    from tests.test_dashboard_records import make_run

    run_dir = make_run(home)
    out = subprocess.run(
        [sys.executable, "-m", "agentos.cli.runs", "show", "--timeline", run_dir.name],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    html = out.stdout
    assert (
        html.startswith("<!doctype html>")
        and "<script" not in html
        and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    path = home / "t.html"
    path.write_text(html, encoding="utf-8")
    with browser(CHROMIUM) as chrome:  # type: ignore[arg-type]
        page = chrome.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        assert page.locator("svg.timeline rect[data-kind=lane]").count() == 2
        assert all(url == path.as_uri() for url in requests), requests  # no font, no CDN, no script
