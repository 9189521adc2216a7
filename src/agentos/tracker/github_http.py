"""GitHub's REST API over HTTP, bounded: the one place agentos talks to GitHub.

A hostile or broken server cannot hold agentos: each request is over within `deadline_s`
in total (a body trickled a byte at a time included) and MAX_BODY_BYTES, and runs in a
daemon thread so that Ctrl+C or SIGTERM ends it at once (Interrupted, exit 130). Rate
limits never fail a batch: a primary limit (`x-ratelimit-remaining: 0`) waits until
`x-ratelimit-reset`; a secondary one (403/429 with `retry-after`) waits that long. The
token is sent only to the configured API host, never to one a `Link` header names.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from agentos.core import stop_signals
from agentos.core.errors import ConfigError, Interrupted
from agentos.core.printing import STDOUT, Console
from agentos.core.redaction import clip, redact
from agentos.core.retry_hints import clamp_retry_after, parse_seconds

_NEXT = re.compile(r'<([^<>]+)>;\s*rel="next"')  # [^<>]: linear even on a hostile header
SECONDARY_DEFAULT_WAIT_S = 60.0
MAX_ATTEMPTS = 20
REQUEST_DEADLINE_S = 60.0  # one request, headers and body: a trickled answer ends here
MAX_BODY_BYTES = 16 * 1024 * 1024  # one page of 100 issues is well under 1 MB
POLL_S = 0.05


class GitHubHTTP:
    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        sleep: Callable[[float], None] = stop_signals.sleep,  # a Ctrl+C ends a rate-limit wait
        clock: Callable[[], float] = time.time,
        console: Console = STDOUT,
    ) -> None:
        self._sleep, self._clock, self._console = sleep, clock, console
        self._api = httpx.URL(api_url.rstrip("/") + "/")
        self.host = self._api.netloc.decode("ascii", "replace")
        self.deadline_s = REQUEST_DEADLINE_S
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

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One bounded request, waited out and tried again while GitHub rate-limits it."""
        for _ in range(MAX_ATTEMPTS):
            response = self._bounded(method, url, **kwargs)
            wait = self._rate_limit_wait(response)
            if wait is None:
                return response
            self._console.line(f"[COORDINATOR] GitHub API rate limit: waiting {wait:.0f}s before retrying")
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
                                f"GitHub ({self.host}) answered {method} {path_of(url)} with more than "
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
                raise Interrupted(f"interrupted during a GitHub request ({method} {path_of(url)})")
            if thread.is_alive() and time.monotonic() > deadline:
                raise ConfigError(
                    f"GitHub ({self.host}) did not answer {method} {path_of(url)} within {self.deadline_s:g}s"
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

    def next_link(self, response: httpx.Response) -> str | None:
        """The `next` page, only on the configured API host (scheme, host and port) and with
        no user name or password in it: the token is never sent to a host a server named, as
        `gh` and the SDKs do. A relative link is resolved against the API URL (RFC 8288)."""
        match = _NEXT.search(response.headers.get("link", "")[:8192])
        if match is None:
            return None
        try:
            target = self._api.join(match.group(1))
        except (httpx.InvalidURL, ValueError):
            raise ConfigError(f"GitHub ({self.host}) sent a malformed next-page link") from None
        if (target.scheme, target.host, target.port) != (self._api.scheme, self._api.host, self._api.port):
            where = f"{target.scheme}://{target.host}" + (f":{target.port}" if target.port else "")
            raise ConfigError(
                f"GitHub's next-page link points to {redact(where)}, not the API host {self.host}; "
                "not following it with the token"
            )
        if target.userinfo:
            raise ConfigError(
                f"GitHub's next-page link on {self.host} holds a user name or password; "
                "not following it with the token"
            )
        return str(target)


def path_of(url: str) -> str:
    """A request's path for a message: no host, no query (a query may be long)."""
    path = redact(str(url).split("?", 1)[0])  # redacted before it is cut, as `clip` does
    return path if len(path) <= 120 else "…" + path[-119:]
