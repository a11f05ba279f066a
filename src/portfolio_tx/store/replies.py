"""What Redis answers, as the store's values and errors.

``redis_errors`` is the one place a redis-py error becomes a StateStoreError: every Redis
call of the project (the store, the heartbeat, the readiness check) goes through it (and
``redis_refusals`` inside it where a connection is first made: a refused login or an
untrusted certificate). That
includes RedisCluster's own errors that are no RedisError (RedisClusterException: no slot
served, a cross-slot call, a cluster without a reachable node). The
rest turns the Lua scripts' replies into the port's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
)

from portfolio_tx.errors import ConcurrentModificationError, StateLostError, StateStoreError
from portfolio_tx.store.port import Applied, ApplyRequest, staged_on


@contextmanager
def redis_errors(what: str, *, fix: str = "") -> Iterator[None]:
    """Raise a redis-py error inside as StateStoreError: "<what>: <error>", or
    "<what> (<error>) — <fix>" when there is something to do about it."""
    try:
        yield
    except (RedisError, RedisClusterException) as exc:
        raise StateStoreError(f"{what} ({exc}) — {fix}" if fix else f"{what}: {exc}") from exc


@contextmanager
def redis_refusals(where: str) -> Iterator[None]:
    """A refused login or an untrusted certificate as its own one-line StateStoreError
    (use inside ``redis_errors``, which takes every other error): the message names what
    failed and the setting to check, never the password."""
    try:
        yield
    except (AuthenticationError, NoPermissionError) as exc:
        raise StateStoreError(
            f"Redis authentication failed at {where} ({exc}) — check REDIS_USERNAME and "
            "REDIS_PASSWORD[_FILE] (or the URL's credentials)"
        ) from exc
    except RedisError as exc:
        if "certificate verify failed" not in str(exc):
            raise
        raise StateStoreError(
            f"TLS verification failed for Redis at {where} (certificate verify failed) — "
            "check REDIS_SSL_CA_CERTS"
        ) from exc


def raise_first(replies: list[Any]) -> list[Any]:
    """The replies of a round trip, or the first error among them raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def applied(request: ApplyRequest, status: bytes, detail: Any) -> Applied | StateStoreError:
    """The apply script's answer for one session as an Applied, or the error it stands for."""
    session_id, decision = request.session_id, request.decision
    if status == b"LOST":
        return StateLostError(
            f"session {session_id} was at version {staged_on(decision)} and Redis no longer has it"
        )
    if status == b"CONFLICT":
        return ConcurrentModificationError(
            f"session {session_id} is at version {detail.decode()}, "
            f"this cycle was staged on version {staged_on(decision)}"
        )
    if status == b"DECIDED":
        return Applied(decision, fenced=True, outcome=detail or None)
    return Applied(decision, fenced=False, outcome=request.outcome)


def optional_int(raw: bytes | None) -> int | None:
    return None if raw is None else int(raw)


def text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def as_bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()
