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
_UNSET: Any = object()


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
        # Hostile behaviours (issue 20): every list page names a next page; the list is
        # trickled a byte every `trickle_s`; the next link points to `next_base` (another
        # host; "" makes it relative); the list answers `list_error` (status, body) or `list_json` (any JSON).
        self.endless_next = False
        self.trickle_s: float | None = None
        self.next_base: str | None = None
        self.list_error: tuple[int, str] | None = None
        self.list_json: Any = _UNSET
        self.issue_json: dict[int, Any] = {}  # GET /issues/<n> answers this JSON instead
        self.search_enabled = True
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
            with self.lock:
                count = sum(1 for i in self.issues.values() if i["state"] == "open")
            return self._send(h, 200, {"full_name": self.repo, "open_issues_count": count})
        if method == "GET" and url.path == "/search/issues" and self.search_enabled:
            return self._search(h, query.get("q", ""))
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
            if self.list_error is not None:
                code, text = self.list_error
                return self._send(h, code, {"message": text})
            if self.list_json is not _UNSET:
                return self._send(h, 200, self.list_json)
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
            if number in self.issue_json:
                return self._send(h, 200, self.issue_json[number])
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
        if page * per_page < len(items) or self.endless_next:
            nxt = dict(query, page=str(page + 1), per_page=str(int(query.get("per_page", 30))))
            qs = "&".join(f"{k}={v}" for k, v in nxt.items())
            base = self.url if self.next_base is None else self.next_base  # "": a relative link
            headers["link"] = f'<{base}/repos/{self.repo}/issues?{qs}>; rel="next"'
        if self.trickle_s is not None:
            return self._trickle(h, chunk, headers)
        return self._send(h, 200, chunk, headers)

    def _trickle(self, h: BaseHTTPRequestHandler, payload: Any, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                h.send_header(key, value)
            h.end_headers()
            for byte in data:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                time.sleep(self.trickle_s or 0)
        except OSError:
            pass

    def _search(self, h: BaseHTTPRequestHandler, q: str) -> None:
        """GitHub's issue search, for the one query agentos makes: a quoted token in bodies."""
        with self.lock:
            self.requests.append(f"SEARCH {q}")
            token = q.split('"')[1] if q.count('"') >= 2 else q
            found = [i for i in self.issues.values() if token in str(i.get("body") or "")]
        return self._send(h, 200, {"total_count": len(found), "incomplete_results": False, "items": found})
