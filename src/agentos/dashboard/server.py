"""Serve the dashboard: bind a loopback socket, print the URL with its token, run uvicorn.

The socket is bound before the URL is printed, so `--port 0` (any free port) prints the port
it got, and a port in use is a clear error before anything else. uvicorn's access log is off:
it would write the token (in the URL) to the console.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import os
import secrets
import socket
import tempfile
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

from agentos.core.errors import ConfigError
from agentos.core.paths import agentos_home
from agentos.dashboard.app import create_app
from agentos.dashboard.local_records import LocalRunRecords
from agentos.dashboard.records import RunRecords

DEFAULT_PORT = 8765
OPENER_KEPT_S = 60.0  # the browser has read the redirect file by then


def open_browser_page(url: str) -> Path:
    """Open `url` in a browser without putting the token in its command line (which any
    local user can read in `ps`), as Jupyter does: the browser is given a private file (0600,
    in $AGENTOS_HOME) that redirects to the URL, removed a minute later."""
    home = agentos_home()
    home.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="dashboard-open-", suffix=".html", dir=home)
    target = html.escape(url, quote=True)
    with os.fdopen(fd, "w", encoding="utf-8") as page:
        page.write(
            '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
            f'<meta http-equiv="refresh" content="0;url={target}"><title>agentos dashboard</title>'
            f'<p><a href="{target}">Open the agentos dashboard</a></p>\n'
        )
    path = Path(name)

    def remove() -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    timer = threading.Timer(OPENER_KEPT_S, remove)
    timer.daemon = True
    timer.start()
    webbrowser.open(path.as_uri())
    return path


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
    host: str,
    port: int,
    browse: bool,
    say: Callable[[str], None],
    stop: Callable[[], bool],
    records: RunRecords | None = None,
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
    app = create_app(records or LocalRunRecords(), token, cookie=f"agentos-dashboard-{actual}")
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
    opener = open_browser_page(url) if browse else None
    try:
        Server(config).run(sockets=[sock])
    finally:
        if opener is not None:
            with contextlib.suppress(OSError):
                opener.unlink()
