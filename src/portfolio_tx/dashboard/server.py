"""``portfolio-tx dashboard``: the desk's web page, served by Starlette on uvicorn.

Routes::

    /            the page (static/index.html); it draws with static/ only, no CDN
    /events      server-sent events: ``snapshot`` on connect, then one ``outcome`` per
                 decided cycle; a comment every 15 s keeps proxies from closing it
    /api/state   the same snapshot as JSON (for scripts and curl)
    /healthz     ``ok`` once the commit topic is being followed
    /static/...  the page's script, styles and the vendored uPlot (see static/VENDORED.md)

Bound to loopback (the default) it is open to the machine's own users. Bound anywhere else
it requires a token (PTX_DASHBOARD_TOKEN or PTX_DASHBOARD_TOKEN_FILE): every request must
carry it, as ``Authorization: Bearer <token>``, as ``?token=<token>`` (which also sets an
HttpOnly, SameSite=Strict cookie so the page's own requests and event stream carry it) or
as that cookie; anything else is 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portfolio_tx.config import Settings
from portfolio_tx.dashboard.board import Board, Json
from portfolio_tx.dashboard.live import CommitFeed, LiveBoard
from portfolio_tx.errors import ConfigError
from portfolio_tx.security import Secret

log = logging.getLogger("portfolio_tx.dashboard")

HEARTBEAT_S = 15.0
RECONNECT_MS = 2000


def sse(event: str, data: Json) -> str:
    """One server-sent event (JSON data never contains a raw newline)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


TOKEN_COOKIE = "ptx_dashboard_token"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class TokenGate:
    """ASGI middleware: 401 for an HTTP request that does not carry ``token``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app, self._token = app, token

    def _carried(self, request: Request) -> tuple[bool, bool]:
        """(carries the token, came as ?token= and should become the cookie)"""
        header = request.headers.get("authorization", "")
        given = [
            (header.removeprefix("Bearer ") if header.startswith("Bearer ") else "", False),
            (request.query_params.get("token", ""), True),
            (request.cookies.get(TOKEN_COOKIE, ""), False),
        ]
        for value, from_query in given:
            if value and hmac.compare_digest(value.encode(), self._token.encode()):
                return True, from_query
        return False, False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ok, from_query = self._carried(Request(scope))
        if not ok:
            refusal = PlainTextResponse(
                "401: this dashboard needs its token\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await refusal(scope, receive, send)
            return
        if not from_query:
            await self._app(scope, receive, send)
            return
        cookie = f"{TOKEN_COOKIE}={self._token}; HttpOnly; SameSite=Strict; Path=/"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        await self._app(scope, receive, send_with_cookie)


def create_app(live: LiveBoard, token: str | None = None) -> Starlette:
    """The web app over ``live`` (which a CommitFeed, or a test, fills); with ``token``,
    every request must carry it (``TokenGate``)."""
    page = (resources.files("portfolio_tx.dashboard") / "static" / "index.html").read_text()

    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def state(_: Request) -> JSONResponse:
        return JSONResponse(live.snapshot())

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def events(_: Request) -> StreamingResponse:
        subscription, snapshot = live.subscribe(asyncio.get_running_loop())

        async def stream() -> AsyncIterator[str]:
            try:
                yield f"retry: {RECONNECT_MS}\n\n"
                yield sse("snapshot", snapshot)
                while True:
                    try:
                        event = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_S)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                    if event is None:
                        return
                    yield sse("outcome", event)
            finally:
                live.unsubscribe(subscription)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    middleware = [Middleware(TokenGate, token=token)] if token else []
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/", index),
            Route("/events", events),
            Route("/api/state", state),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(packages=[("portfolio_tx.dashboard", "static")])),
        ],
    )


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM end the browsers' event streams first (so the
    shutdown does not wait on them) and the command then returns normally (exit 0) instead
    of re-raising the signal the way uvicorn does."""

    def __init__(self, config: uvicorn.Config, live: LiveBoard) -> None:
        super().__init__(config)
        self._live = live

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._live.close()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; ConfigError with the fix when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise ConfigError(
            f"cannot serve the dashboard on {host}:{port} ({exc.strerror or exc}) — choose "
            "another --port (PTX_DASHBOARD_PORT)"
        ) from exc
    return sock


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    history: int = 2000,
    token: Secret | None = None,
) -> int:
    """Follow the commit topic and serve the page until SIGINT/SIGTERM.

    Raises ConfigError (address unusable; bound off loopback without a token) or
    KafkaSetupError (broker, topic) before serving.
    """
    if history < 1:
        raise ConfigError(f"--history {history} must be at least 1")
    if host not in LOOPBACK and token is None:
        raise ConfigError(
            f"the dashboard bound to {host} (not loopback) needs a token: set "
            "PTX_DASHBOARD_TOKEN or PTX_DASHBOARD_TOKEN_FILE"
        )
    sock = bind(host, port)
    live = LiveBoard(Board(history=history))
    feed = CommitFeed(settings, live)
    try:
        feed.start()
        config = uvicorn.Config(
            create_app(live, token.reveal() if token else None),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        bound_port = sock.getsockname()[1]
        log.info(
            "dashboard at http://%s:%d/ following %s", host, bound_port, settings.topics.commits
        )
        _Server(config, live).run(sockets=[sock])
    finally:
        feed.close()
        sock.close()
    return 0
