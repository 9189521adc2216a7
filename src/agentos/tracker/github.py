"""GitHub as the tracker, through its REST API with httpx.

Rate limits never fail a batch: a primary limit (`x-ratelimit-remaining: 0`) waits until
`x-ratelimit-reset`; a secondary one (403/429 with `retry-after`) waits that long. The
token comes from GH_TOKEN, GITHUB_TOKEN or `gh auth token`, and is never printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from agentos import stop_signals
from agentos.errors import ConfigError, Interrupted, ItemNotFound
from agentos.item_identity import ISSUE_NUMBER_RULE, valid_issue_number
from agentos.plain_text import strip_controls
from agentos.redaction import clip, redact, register_secret
from agentos.retry_hints import clamp_retry_after, parse_seconds
from agentos.tracker.base import IssueSpec, TrackerConfig

_NEXT = re.compile(r'<([^<>]+)>;\s*rel="next"')  # [^<>]: linear even on a hostile header
SECONDARY_DEFAULT_WAIT_S = 60.0
FILED_SCAN_PAGES = 3
MAX_ATTEMPTS = 20
PER_PAGE = 100
MAX_PAGES = 200  # 20,000 open issues: a longer chain of `next` links is a broken server
REQUEST_DEADLINE_S = 60.0  # one request, headers and body: a trickled answer ends here
MAX_BODY_BYTES = 16 * 1024 * 1024  # one page of 100 issues is well under 1 MB
POLL_S = 0.05


def github_token() -> str:
    for var in ("GH_TOKEN", "GITHUB_TOKEN"):
        value = os.environ.get(var, "").strip()
        if value:
            register_secret(value, var)
            return value
    if shutil.which("gh"):
        try:
            out = subprocess.run(
                ["gh", "auth", "token"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            token = out.stdout.strip()
            register_secret(token, "gh-auth-token")
            os.environ["GH_TOKEN"] = token  # worker processes inherit it (environment, not argv)
            return token
    raise ConfigError(
        "no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or log in with `gh auth login` "
        "(the token needs read/write access to Issues)"
    )


class GitHubTracker:
    def __init__(
        self,
        repo: str,
        token: str,
        *,
        api_url: str = "https://api.github.com",
        label: str | None = None,
        sleep: Callable[[float], None] = stop_signals.sleep,  # a Ctrl+C ends a rate-limit wait
        clock: Callable[[], float] = time.time,
        say: Callable[[str], None] = print,
    ) -> None:
        self.repo = repo
        self.label = label
        self._sleep, self._clock, self._say = sleep, clock, say
        self._api = httpx.URL(api_url.rstrip("/") + "/")
        self.host = self._api.netloc.decode("ascii", "replace")
        self.deadline_s = REQUEST_DEADLINE_S
        self._open_count: int | None = None  # the repository's own count, once verify() read it
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "agentos",
            },
            timeout=30.0,
        )

    @classmethod
    def from_config(cls, config: TrackerConfig) -> GitHubTracker:
        if not config.repo:
            raise ConfigError("GitHub tracker needs OWNER/NAME")
        return cls(config.repo, github_token(), api_url=config.api_url, label=config.label)

    def describe(self) -> str:
        return f"GitHub {self.repo}"

    # -- HTTP with rate-limit handling -------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for _ in range(MAX_ATTEMPTS):
            response = self._bounded(method, url, **kwargs)
            wait = self._rate_limit_wait(response)
            if wait is None:
                return response
            self._say(f"[COORDINATOR] GitHub API rate limit: waiting {wait:.0f}s before retrying")
            self._sleep(wait)
        raise ConfigError("GitHub API kept answering with rate limits; try again later")

    def _bounded(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, over within `deadline_s` in total (a server may trickle its body a
        byte at a time) and at most MAX_BODY_BYTES, in a daemon thread, so that a Ctrl+C
        or SIGTERM ends it at once (Interrupted, exit 130) whatever the network does."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                with self._client.stream(method, url, **kwargs) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY_BYTES:
                            raise ConfigError(
                                f"GitHub ({self.host}) answered {method} {_path(url)} with more than "
                                f"{MAX_BODY_BYTES // (1024 * 1024)} MB; refusing it"
                            )
                    box["response"] = httpx.Response(
                        response.status_code,
                        headers=response.headers,
                        content=bytes(body),
                        request=response.request,
                    )
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name="github-request", daemon=True)
        thread.start()
        deadline = time.monotonic() + self.deadline_s
        while thread.is_alive():
            thread.join(POLL_S)
            if stop_signals.requested():
                raise Interrupted(f"interrupted during a GitHub request ({method} {_path(url)})")
            if thread.is_alive() and time.monotonic() > deadline:
                raise ConfigError(
                    f"GitHub ({self.host}) did not answer {method} {_path(url)} within {self.deadline_s:g}s"
                )
        error = box.get("error")
        if isinstance(error, httpx.HTTPError):
            raise ConfigError(
                f"cannot reach the GitHub API at {self.host} ({type(error).__name__}): {clip(str(error), 200)}"
            )
        if error is not None:
            raise error
        response: httpx.Response = box["response"]
        return response

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        if response.status_code not in (403, 429):
            return None
        # Header numbers are untrusted: clamped (inf, 1e18, nan would crash time.sleep).
        retry_after = response.headers.get("retry-after")
        if retry_after:
            seconds = clamp_retry_after(parse_seconds(retry_after))
            return SECONDARY_DEFAULT_WAIT_S if seconds is None else max(1.0, seconds)
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = parse_seconds(response.headers.get("x-ratelimit-reset") or "0")
            seconds = clamp_retry_after(max(1.0, reset - self._clock() + 1.0) if reset is not None else None)
            return SECONDARY_DEFAULT_WAIT_S if seconds is None else seconds
        if response.status_code == 429 or "secondary rate limit" in response.text.lower():
            return SECONDARY_DEFAULT_WAIT_S
        return None

    def _check(self, response: httpx.Response, what: str) -> Any:
        if response.status_code == 401:
            raise ConfigError("GitHub rejected the token (401): check GH_TOKEN / GITHUB_TOKEN")
        if response.status_code == 403:
            raise ConfigError(f"GitHub refused {what} (403): the token needs read/write access to Issues")
        if response.status_code == 404:
            raise ItemNotFound("GitHub resource", what, self.repo)
        if response.status_code >= 400:
            raise ConfigError(f"GitHub error {response.status_code} for {what}: {clip(response.text, 200)}")
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise ConfigError(f"GitHub ({self.host}) answered {what} with malformed JSON") from None

    def _expect(self, data: Any, kind: type, what: str) -> Any:
        """`data` if it is a `kind` (list or dict), else one clear error naming host and what."""
        if not isinstance(data, kind):
            shown = "null" if data is None else type(data).__name__
            raise ConfigError(
                f"GitHub ({self.host}) answered {what} with {shown}, not a {'list' if kind is list else 'object'}"
            )
        return data

    def _next_link(self, response: httpx.Response) -> str | None:
        """The `next` page, only on the configured API host (scheme, host and port): the
        token is never sent to a host a server named, as `gh` and the SDKs do."""
        match = _NEXT.search(response.headers.get("link", "")[:8192])
        if match is None:
            return None
        try:
            target = httpx.URL(match.group(1))
        except (httpx.InvalidURL, ValueError):
            raise ConfigError(f"GitHub ({self.host}) sent a malformed next-page link") from None
        if (target.scheme, target.host, target.port) != (self._api.scheme, self._api.host, self._api.port):
            raise ConfigError(
                f"GitHub's next-page link points to {target.scheme}://{target.netloc.decode('ascii', 'replace')}, "
                f"not the API host {self.host}; not following it with the token"
            )
        return str(target)

    # -- Tracker protocol ----------------------------------------------------------------
    def verify(self) -> None:
        """Fail before any workflow starts if the token or repository is wrong."""
        data = self._check(self._request("GET", f"/repos/{self.repo}"), f"repository {self.repo}")
        count = data.get("open_issues_count") if isinstance(data, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            self._open_count = count  # issues and pull requests: a bound on the open listing

    def _page_limit(self, params: dict[str, Any], max_pages: int | None) -> int:
        limit = MAX_PAGES if max_pages is None else max_pages
        if params.get("state", "open") == "open" and self._open_count is not None:
            limit = min(limit, self._open_count // PER_PAGE + 2)  # new issues may arrive meanwhile
        return limit

    def _pages(self, params: dict[str, Any], max_pages: int | None = None) -> list[dict[str, Any]]:
        """Every page of an issue listing, bounded by MAX_PAGES and by the repository's own
        open-issue count; a server that names a next page forever is an error."""
        url: str | None = f"/repos/{self.repo}/issues"
        items: list[dict[str, Any]] = []
        pages, limit = 0, self._page_limit(params, max_pages)
        while url:
            if pages >= limit:
                if max_pages is not None:
                    break  # a scan of recent pages only: stopping is the point
                raise ConfigError(
                    f"GitHub ({self.host}) kept naming a next page after {pages} pages of 100 issues "
                    f"(the repository reports {self._open_count if self._open_count is not None else 'no'} "
                    "open issues); stopping"
                )
            response = self._request("GET", url, params=params if pages == 0 else None)
            batch = self._expect(self._check(response, "issue list"), list, "the issue list")
            items.extend(i for i in batch if isinstance(i, dict))
            url = self._next_link(response)
            pages += 1
        return items

    def open_issue_numbers(self) -> list[int]:
        params: dict[str, Any] = {"state": "open", "per_page": PER_PAGE}
        if self.label:
            params["labels"] = self.label
        issues = self._pages(params)
        numbers = []
        for issue in issues:
            if "pull_request" in issue:
                continue
            number = valid_issue_number(issue.get("number"))
            if number is None:
                self._say(
                    f"[COORDINATOR] Warning: skipping GitHub issue number {issue.get('number')!r} "
                    f"in {self.repo}: not a valid issue number ({ISSUE_NUMBER_RULE})"
                )
                continue
            numbers.append(number)
        return sorted(set(numbers))

    def get_issue(self, number: int) -> IssueSpec:
        data = self._check(
            self._request("GET", f"/repos/{self.repo}/issues/{int(number)}"), f"issue #{number}"
        )
        data = self._expect(data, dict, f"issue #{number}")
        if "pull_request" in data:
            raise ConfigError(f"#{number} in {self.repo} is a pull request, not an issue")
        return IssueSpec(
            self._number(data, f"issue #{number}"),
            strip_controls(str(data.get("title") or "")).strip(),
            strip_controls(str(data.get("body") or "")).strip(),
        )

    def _number(self, data: Any, what: str) -> int:
        """The issue number GitHub answered, refused clearly if it is not one agentos can keep."""
        number = valid_issue_number(data.get("number") if isinstance(data, dict) else None)
        if number is None:
            shown = data.get("number") if isinstance(data, dict) else None
            raise ConfigError(
                f"GitHub answered {what} in {self.repo} with issue number {shown!r}, "
                f"not a valid issue number ({ISSUE_NUMBER_RULE})"
            )
        return number

    def find_filed(self, marker: str) -> int | None:
        """The issue an earlier run filed with `marker`, however many issues came since: the
        newest pages first (the search index lags a new issue by seconds), then the search
        API, which finds an older one (a run killed during its POST, resumed much later)."""
        params = {"state": "all", "per_page": PER_PAGE, "sort": "created", "direction": "desc"}
        for issue in self._pages(params, max_pages=FILED_SCAN_PAGES):
            if marker in str(issue.get("body") or "") and "pull_request" not in issue:
                return self._number(issue, "the filed-issue search")
        return self._search_filed(marker)

    def _search_filed(self, marker: str) -> int | None:
        token = marker.removeprefix("<!-- agentos-filing: ").removesuffix(" -->").rsplit("/", 1)[-1]
        query = f'"{token}" repo:{self.repo} in:body is:issue'
        data = self._check(
            self._request("GET", "/search/issues", params={"q": query, "per_page": 20}), "issue search"
        )
        found = self._expect(data, dict, "the issue search").get("items")
        for issue in found if isinstance(found, list) else []:
            if isinstance(issue, dict) and marker in str(issue.get("body") or ""):
                return self._number(issue, "the issue search")
        return None

    def create_issue(self, title: str, body: str, labels: list[str]) -> int:
        payload: dict[str, Any] = {"title": title, "body": body}
        if labels:
            payload["labels"] = labels
        data = self._check(
            self._request("POST", f"/repos/{self.repo}/issues", json=payload), "issue creation"
        )
        return self._number(self._expect(data, dict, "issue creation"), "issue creation")


def _path(url: str) -> str:
    """A request's path for a message: no host, no query (a query may be long)."""
    path = redact(str(url).split("?", 1)[0])  # redacted before it is cut, as `clip` does
    return path if len(path) <= 120 else "…" + path[-119:]
