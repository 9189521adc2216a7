"""The dashboard's ASGI application (Starlette): pages, live updates, and the token gate.

- Every request must carry the token: `?token=` (the URL `agentos dashboard` prints), or the
  cookie the first such request sets. It is compared in constant time; anything else is 403.
- Every response carries a strict Content-Security-Policy: scripts only from this server
  (one small file), no inline script, no other origin, no framing.
- Live updates are server-sent events: `/events?run=NAME&since=STAMP` says `change` when the
  records' stamp moves; the page then fetches its own content again (`?fragment=main`).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentos.dashboard import render
from agentos.dashboard.records import RecordNotFound, RunRecords
from agentos.runs.run_files import clean_text

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
POLL_S = 0.5  # how often the live stream looks at the records' stamp (a few stat calls)
KEEPALIVE_S = 15.0


class TokenGate:
    """ASGI middleware: 403 without the token, security headers on every response."""

    def __init__(self, app: ASGIApp, token: str, cookie: str) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = cookie

    def _cookie_token(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except CookieError:
                    return ""
                morsel = jar.get(self.cookie)
                return morsel.value if morsel is not None else ""
        return ""

    def _matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the dashboard has none: refused before any route
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        in_query = query.get("token", [""])[0]
        from_query = self._matches(in_query)
        if not (from_query or self._matches(self._cookie_token(scope))):
            body = (
                b"403 Forbidden: this dashboard needs the token from the URL `agentos dashboard` printed.\n"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [*SECURITY_HEADERS, (b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() not in dict(SECURITY_HEADERS)
                ]
                headers += SECURITY_HEADERS
                if from_query:  # later requests (links, the live stream) carry the cookie
                    cookie = f"{self.cookie}={in_query}; Path=/; HttpOnly; SameSite=Strict"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(records: RunRecords, token: str, cookie: str = "agentos-dashboard") -> ASGIApp:
    """The application over `records`, behind `token`."""

    def fragment(request: Request) -> bool:
        return request.query_params.get("fragment") == "main"

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status)

    def not_found(exc: RecordNotFound) -> HTMLResponse:
        return html(render.error_page(404, f"Not found: {exc.what}"), 404)

    def runs_page(request: Request) -> Response:
        stamp = records.stamp(None)
        return html(render.runs_page(records.runs(), stamp, fragment(request)))

    def run_page(request: Request) -> Response:
        name = request.path_params["run"]
        stamp = records.stamp(name)
        try:
            detail = records.run(name)
        except RecordNotFound as exc:
            return not_found(exc)
        return html(render.run_page(detail, stamp, fragment(request)))

    def item_page(request: Request) -> Response:
        name = request.path_params["run"]
        stamp = records.stamp(name)
        try:
            detail = records.item(name, request.path_params["item"])
        except RecordNotFound as exc:
            return not_found(exc)
        return html(render.item_page(detail, stamp, fragment(request)))

    async def events(request: Request) -> Response:
        run = request.query_params.get("run") or None

        async def stream() -> AsyncIterator[str]:
            last = await run_in_threadpool(records.stamp, run)
            yield "retry: 2000\n\n"
            since = request.query_params.get("since")
            if since is not None and since != last:  # it changed between the page and this stream
                yield f"event: change\ndata: {last}\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                await anyio.sleep(POLL_S)
                stamp = await run_in_threadpool(records.stamp, run)
                if stamp != last:
                    last, quiet = stamp, 0.0
                    yield f"event: change\ndata: {stamp}\n\n"
                else:
                    quiet += POLL_S
                    if quiet >= KEEPALIVE_S:
                        quiet = 0.0
                        yield ": keepalive\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
        )

    async def no_route(request: Request, exc: Exception) -> Response:
        return html(render.error_page(404, "Not found: no such page"), 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        return html(
            render.error_page(500, f"the records could not be shown ({clean_text(type(exc).__name__)})"), 500
        )

    app = Starlette(
        routes=[
            Route("/", runs_page),
            Route("/run/{run}", run_page),
            Route("/run/{run}/item/{item}", item_page),
            Route("/events", events),
            Mount("/static", StaticFiles(packages=[("agentos.dashboard", "static")]), name="static"),
        ],
        exception_handlers={404: no_route, 500: server_error},
    )
    return TokenGate(app, token, cookie)
