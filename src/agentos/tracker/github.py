"""GitHub as the tracker: listing, reading and filing issues.

The HTTP itself (deadlines, size caps, rate limits, where the token may go) is in
`github_http`. The token comes from GH_TOKEN, GITHUB_TOKEN or `gh auth token`, and is
never printed. Every answer is untrusted: a list that is not a list, an issue number that
is not one, or endless next pages is one clear error naming the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from agentos.core import stop_signals
from agentos.core.errors import ConfigError, ItemNotFound
from agentos.core.item_identity import ISSUE_NUMBER_RULE, valid_issue_number
from agentos.core.plain_text import strip_controls
from agentos.core.printing import STDOUT, Console
from agentos.core.redaction import clip, register_secret
from agentos.tracker.base import IssueSpec, TrackerConfig
from agentos.tracker.github_http import GitHubHTTP

FILED_SCAN_PAGES = 3
PER_PAGE = 100
MAX_PAGES = 200  # 20,000 open issues: a longer chain of `next` links is a broken server


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
        console: Console = STDOUT,
    ) -> None:
        self.repo = repo
        self.label = label
        self._console = console
        self._http = GitHubHTTP(api_url, token, sleep=sleep, clock=clock, console=console)
        self.host = self._http.host
        self._open_count: int | None = None  # the repository's own count, once verify() read it

    @property
    def deadline_s(self) -> float:
        """Each request's total time limit (tests shorten it)."""
        return self._http.deadline_s

    @deadline_s.setter
    def deadline_s(self, value: float) -> None:
        self._http.deadline_s = value

    @classmethod
    def from_config(cls, config: TrackerConfig) -> GitHubTracker:
        if not config.repo:
            raise ConfigError("GitHub tracker needs OWNER/NAME")
        return cls(config.repo, github_token(), api_url=config.api_url, label=config.label)

    def describe(self) -> str:
        return f"GitHub {self.repo}"

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
                f"GitHub ({self.host}) answered {what} with {shown}, not {'a list' if kind is list else 'an object'}"
            )
        return data

    # -- Tracker protocol ----------------------------------------------------------------
    def verify(self) -> None:
        """Fail before any workflow starts if the token or repository is wrong."""
        data = self._check(self._http.request("GET", f"/repos/{self.repo}"), f"repository {self.repo}")
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
            response = self._http.request("GET", url, params=params if pages == 0 else None)
            batch = self._expect(self._check(response, "issue list"), list, "the issue list")
            items.extend(i for i in batch if isinstance(i, dict))
            url = self._http.next_link(response)
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
                self._console.line(
                    f"[COORDINATOR] Warning: skipping GitHub issue number {issue.get('number')!r} "
                    f"in {self.repo}: not a valid issue number ({ISSUE_NUMBER_RULE})"
                )
                continue
            numbers.append(number)
        return sorted(set(numbers))

    def get_issue(self, number: int) -> IssueSpec:
        data = self._check(
            self._http.request("GET", f"/repos/{self.repo}/issues/{int(number)}"), f"issue #{number}"
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

    def find_filed(self, marker: str, *, maybe_sent: bool = False) -> int | None:
        """The issue an earlier run filed with `marker`: the newest pages first (the search
        index lags a new issue by seconds); then, only when an intent to file was recorded
        (`maybe_sent`: a run killed during its POST, resumed after any number of newer
        issues), the search API, which is limited to 30 requests a minute and may be off."""
        params = {"state": "all", "per_page": PER_PAGE, "sort": "created", "direction": "desc"}
        for issue in self._pages(params, max_pages=FILED_SCAN_PAGES):
            if marker in str(issue.get("body") or "") and "pull_request" not in issue:
                return self._number(issue, "the filed-issue search")
        return self._search_filed(marker) if maybe_sent else None

    def _search_filed(self, marker: str) -> int | None:
        token = marker.removeprefix("<!-- agentos-filing: ").removesuffix(" -->").rsplit("/", 1)[-1]
        query = f'"{token}" repo:{self.repo} in:body is:issue'
        data = self._check(
            self._http.request("GET", "/search/issues", params={"q": query, "per_page": 20}), "issue search"
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
            self._http.request("POST", f"/repos/{self.repo}/issues", json=payload), "issue creation"
        )
        return self._number(self._expect(data, dict, "issue creation"), "issue creation")
