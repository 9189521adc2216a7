"""Serve the dashboard: bind a loopback socket, print the URL with its token, run uvicorn.

The socket is bound before the URL is printed, so `--port 0` (any free port) prints the port
it got, and a port in use is a clear error before anything else. uvicorn's access log is off:
it would write the token (in the URL) to the console.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import webbrowser
from collections.abc import Callable

from agentos.core.errors import ConfigError
from agentos.dashboard.app import create_app
from agentos.dashboard.local_records import LocalRunRecords

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot serve on {host}:{port}: {exc.strerror}; choose another --port (0: any free one)"
        ) from None
    sock.listen(128)
    return sock


def serve(
    host: str, port: int, open_browser: bool, say: Callable[[str], None], stop: Callable[[], bool]
) -> None:
    """Serve until Ctrl+C or SIGTERM. The token is new for every start.

    `stop`: whether a stop was asked before uvicorn put its own signal handlers in place
    (the CLI's flag, set from the first instant): checked at each of uvicorn's ticks."""
    import uvicorn

    class Server(uvicorn.Server):
        async def on_tick(self, counter: int) -> bool:
            if stop():
                self.should_exit = True
            return await super().on_tick(counter)

    token = secrets.token_urlsafe(32)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{actual}/?token={token}"
    app = create_app(LocalRunRecords(), token, cookie=f"agentos-dashboard-{actual}")
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # it would print every URL, token included
        lifespan="off",
        timeout_graceful_shutdown=2,  # the live streams do not end by themselves
        server_header=False,
    )
    if not is_loopback(host):
        say(
            f"WARNING: serving on {host}, not loopback: anyone who can reach it with the token sees item content."
        )
    say(f"agentos dashboard: {url}")
    say("Press Ctrl+C to stop.")
    if open_browser:
        webbrowser.open(url)
    Server(config).run(sockets=[sock])
