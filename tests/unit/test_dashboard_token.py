"""The dashboard off loopback: a token every request must carry (issue 14)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from portfolio_tx.config import Settings
from portfolio_tx.dashboard.board import Board
from portfolio_tx.dashboard.live import LiveBoard
from portfolio_tx.dashboard.server import TOKEN_COOKIE, create_app, serve
from portfolio_tx.errors import ConfigError

TOKEN = "s3cret-token-for-the-desk"


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(LiveBoard(Board(history=10)), token=TOKEN))


def test_a_request_without_the_token_is_401(client: TestClient) -> None:
    for path in ("/", "/api/state", "/healthz", "/static/dashboard.js"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert TOKEN not in response.text
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/?token=wrong").status_code == 401


def test_the_token_as_a_bearer_header_gets_the_page(client: TestClient) -> None:
    response = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "<html" in response.text.lower()


def test_the_token_in_the_query_sets_the_cookie_the_page_then_carries(client: TestClient) -> None:
    first = client.get(f"/?token={TOKEN}")
    assert first.status_code == 200 and "<html" in first.text.lower()
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.cookies.get(TOKEN_COOKIE) == TOKEN
    assert client.get("/api/state").status_code == 200  # the cookie, no header


def test_without_a_token_the_page_stays_open_on_loopback() -> None:
    open_client = TestClient(create_app(LiveBoard(Board(history=10))))
    assert open_client.get("/").status_code == 200


def test_bound_off_loopback_without_a_token_it_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="PTX_DASHBOARD_TOKEN"):
        serve(Settings(bootstrap_servers="127.0.0.1:1"), host="0.0.0.0", port=0)
