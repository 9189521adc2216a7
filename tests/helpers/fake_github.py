"""A loopback server for the parts of GitHub's REST API that agentos uses."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from benchmarks.loopback import LoopbackServer

TOKEN = "ghp_loopbackTOKEN1234567890"


class FakeGitHub(LoopbackServer):
    def __init__(self, repo: str = "acme/widgets") -> None:
        self.repo = repo
        self.issues: dict[int, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.primary_limit_once = False
        self.primary_limit_reset_s = 1  # how far ahead x-ratelimit-reset points
        self.secondary_limit_once = False
        self.retry_after = "1"  # the secondary limit's hint: any text (`inf`, `1e18`)
        self.reset_at: str | None = None  # the primary limit's reset: any text; None: now + 1
        self.create_delay = 0.0
        self.lock = threading.Lock()
        for number, title, body in [
            (1, "Cache the catalogue", "Cache catalogue pages for 5 minutes."),
            (2, "Retry uploads", "Retry failed uploads three times.\n<!-- mock-review: revisions=1 -->"),
            (4, "Audit exports", "Record who exported what and when."),
        ]:
            self.issues[number] = {
                "number": number,
                "title": title,
                "body": body,
                "state": "open",
                "labels": [],
            }
        self.issues[3] = {
            "number": 3,
            "title": "A pull request",
            "body": "diff",
            "state": "open",
            "pull_request": {"url": "x"},
        }
        for n in range(5, 110):  # enough closed issues to need a second page of `state=all`
            self.issues[n] = {
                "number": n,
                "title": f"Old {n}",
                "body": "done",
                "state": "closed",
                "labels": [],
            }
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.route(self, "GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                server.route(self, "POST", json.loads(self.rfile.read(length) or b"{}"))

        super().__init__(Handler)

    _send = staticmethod(LoopbackServer.send_json)

    def route(self, h: BaseHTTPRequestHandler, method: str, body: Any) -> None:
        url = urlparse(h.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append(f"{method} {url.path}")
        if h.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._send(h, 401, {"message": "Bad credentials"})
        base = f"/repos/{self.repo}"
        if method == "GET" and url.path == base:
            return self._send(h, 200, {"full_name": self.repo})
        if url.path == f"{base}/issues" and method == "GET":
            with self.lock:
                if self.primary_limit_once:
                    self.primary_limit_once = False
                    reset = self.reset_at or str(int(time.time()) + self.primary_limit_reset_s)
                    return self._send(
                        h,
                        403,
                        {"message": "API rate limit exceeded"},
                        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
                    )
            return self._list(h, query)
        if url.path == f"{base}/issues" and method == "POST":
            with self.lock:
                if self.secondary_limit_once:
                    self.secondary_limit_once = False
                    return self._send(
                        h,
                        403,
                        {"message": "You have exceeded a secondary rate limit"},
                        {"retry-after": self.retry_after},
                    )
                number = max(self.issues) + 1
                issue = {
                    "number": number,
                    "title": body["title"],
                    "body": body["body"],
                    "state": "open",
                    "labels": [{"name": n} for n in body.get("labels", [])],
                }
                self.issues[number] = issue
                self.creates.append(issue)
            time.sleep(self.create_delay)
            return self._send(h, 201, issue)
        if url.path.startswith(f"{base}/issues/") and method == "GET":
            number = int(url.path.rsplit("/", 1)[1])
            if number not in self.issues:
                return self._send(h, 404, {"message": "Not Found"})
            return self._send(h, 200, self.issues[number])
        return self._send(h, 404, {"message": "Not Found"})

    def _list(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        state = query.get("state", "open")
        with self.lock:
            items = [i for i in self.issues.values() if state == "all" or i["state"] == state]
        if query.get("direction") == "desc":
            items.sort(key=lambda i: -i["number"])
        else:
            items.sort(key=lambda i: i["number"])
        if "labels" in query:
            items = [i for i in items if query["labels"] in [lab["name"] for lab in i.get("labels", [])]]
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        if per_page >= 100 and state == "open":
            per_page = 2  # force pagination of the small open list
            chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            nxt = dict(query, page=str(page + 1), per_page=str(int(query.get("per_page", 30))))
            qs = "&".join(f"{k}={v}" for k, v in nxt.items())
            headers["link"] = f'<{self.url}/repos/{self.repo}/issues?{qs}>; rel="next"'
        return self._send(h, 200, chunk, headers)
