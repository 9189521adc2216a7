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
import time
from collections.abc import Callable
from typing import Any

import httpx

from agentos import stop_signals
from agentos.errors import ConfigError, ItemNotFound
from agentos.item_identity import ISSUE_NUMBER_RULE, valid_issue_number
from agentos.redaction import clip, register_secret
from agentos.retry_hints import clamp_retry_after, parse_seconds
from agentos.tracker.base import IssueSpec, TrackerConfig

_NEXT = re.compile(r'<([^<>]+)>;\s*rel="next"')  # [^<>]: linear even on a hostile header
SECONDARY_DEFAULT_WAIT_S = 60.0
FILED_SCAN_PAGES = 3
MAX_ATTEMPTS = 20


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
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise ConfigError(f"cannot reach the GitHub API ({type(exc).__name__}): {exc}") from None
            wait = self._rate_limit_wait(response)
            if wait is None:
                return response
            self._say(f"[COORDINATOR] GitHub API rate limit: waiting {wait:.0f}s before retrying")
            self._sleep(wait)
        raise ConfigError("GitHub API kept answering with rate limits; try again later")

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
        return response.json()

    # -- Tracker protocol ----------------------------------------------------------------
    def verify(self) -> None:
        """Fail before any workflow starts if the token or repository is wrong."""
        self._check(self._request("GET", f"/repos/{self.repo}"), f"repository {self.repo}")

    def _pages(self, params: dict[str, Any], max_pages: int | None = None) -> list[dict[str, Any]]:
        url: str | None = f"/repos/{self.repo}/issues"
        items: list[dict[str, Any]] = []
        pages = 0
        while url and (max_pages is None or pages < max_pages):
            response = self._request("GET", url, params=params if pages == 0 else None)
            batch = self._check(response, "issue list")
            items.extend(i for i in batch if isinstance(i, dict))
            match = _NEXT.search(response.headers.get("link", ""))
            url = match.group(1) if match else None
            pages += 1
        return items

    def open_issue_numbers(self) -> list[int]:
        params: dict[str, Any] = {"state": "open", "per_page": 100}
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
        if "pull_request" in data:
            raise ConfigError(f"#{number} in {self.repo} is a pull request, not an issue")
        return IssueSpec(
            self._number(data, f"issue #{number}"),
            str(data.get("title") or "").strip(),
            str(data.get("body") or "").strip(),
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
        params = {"state": "all", "per_page": 100, "sort": "created", "direction": "desc"}
        for issue in self._pages(params, max_pages=FILED_SCAN_PAGES):
            if marker in str(issue.get("body") or "") and "pull_request" not in issue:
                return self._number(issue, "the filed-issue search")
        return None

    def create_issue(self, title: str, body: str, labels: list[str]) -> int:
        payload: dict[str, Any] = {"title": title, "body": body}
        if labels:
            payload["labels"] = labels
        data = self._check(
            self._request("POST", f"/repos/{self.repo}/issues", json=payload), "issue creation"
        )
        return self._number(data, "issue creation")
