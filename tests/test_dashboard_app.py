"""The dashboard's ASGI app in process (Starlette's test client): the token gate and headers.

The real server, in a real browser, is tested in test_dashboard_browser.py; these check the
gate's edges quickly."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from agentos.dashboard.app import CSP, create_app
from agentos.dashboard.local_records import LocalRunRecords
from tests.test_dashboard_records import T0, make_run

TOKEN = "t0ken-for-tests_0123456789abcdefABCDEF"


@pytest.fixture
def client(home: Path) -> TestClient:
    make_run(home)
    return TestClient(create_app(LocalRunRecords(clock=lambda: T0 + 100), TOKEN, cookie="c"))


def test_every_path_needs_the_token(client: TestClient) -> None:
    for path in (
        "/",
        "/run/20261204-101500",
        "/run/20261204-101500/item/LLD-1",
        "/static/app.js",
        "/events",
        "/nope",
    ):
        refused = client.get(path)
        assert refused.status_code == 403 and refused.headers["content-security-policy"] == CSP, path
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), f"x&token={TOKEN}"):
        assert client.get(f"/?token={wrong}").status_code == 403
    for name, value in (("c", TOKEN[:-1]), ("other", TOKEN), ("c", "")):
        client.cookies.clear()
        client.cookies.set(name, value)
        assert client.get("/").status_code == 403, name


def test_the_token_sets_a_strict_cookie_and_every_response_is_guarded(client: TestClient) -> None:
    first = client.get(f"/?token={TOKEN}")
    assert first.status_code == 200
    assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
    for path, status in (
        ("/run/20261204-101500", 200),
        ("/static/style.css", 200),
        ("/run/x", 404),
        ("/nope", 404),
    ):
        response = client.get(path)  # the cookie from now on
        assert response.status_code == status, path
        headers = response.headers
        assert headers["content-security-policy"] == CSP
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert "set-cookie" not in headers  # set once, by the request that carried the token
    fragment = client.get("/run/20261204-101500?fragment=main").text
    assert "<html" not in fragment and 'data-kind="lane"' in fragment


def test_no_websocket_is_accepted(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/?token={TOKEN}"):
        pass
