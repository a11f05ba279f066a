"""RedisStateStore: decisions written by Lua (``store.lua``), fenced by cycle id, locked by
version, many sessions per script call and one round trip per batch.

Keys of a session share one hash tag, so one session's keys live in one slot::

    {ns}:{<session>}:state      hash  version, doc (JSON of the PortfolioState)
    {ns}:{<session>}:decisions  hash  last -> last decided cycle id; pub -> last cycle whose
                                      outcome is known to be on the commit topic;
                                      c:<id> -> outcome record; e:<id> -> the cycle's event ids
                                      (newline-separated); w:<id> -> when decided (epoch ms)
    {ns}:{<session>}:recent     list  the decided cycle ids whose outcome records are kept
    {ns}:{<session>}:abandoned  hash  cycle id -> discard reason, for cycles given up
                                      undecided (past a limit, or never marked in time)

Event ids (``e:<id>``) are kept only for cycles whose ids fit
``outcomes.INLINE_EVENT_IDS_BYTES`` (the caller passes none for larger ones): a re-read event
of a larger decided cycle is told from a late one by the offsets in its outcome record.

    {ns}:ready:<partition>      string  this partition's sessions are in Redis (restored or new)

On a Redis Cluster (``redis+cluster://``, ``store.cluster``) the same keys and scripts are
used: each script call carries sessions of one hash slot, readiness keys are read one GET
each, and the server identity covers every master.

A store remembers the last state document of up to ``parsed_states`` sessions and what it
stands for (``store.parsed``): one read back unchanged is not parsed again.

A COMMIT writes the state only if the stored version is the one the cycle was staged on; a
state that vanished (staged on version v > 0, none stored) is StateLostError, never a race;
a DISCARD leaves the state key as it was (byte for byte). The outcome records of the last
``outcome_window`` decided cycles are kept so that re-deciding one returns its record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from redis.typing import EncodableT, FieldT

from portfolio_tx.errors import StateStoreError
from portfolio_tx.ledger import Decision, PortfolioState
from portfolio_tx.store import cluster
from portfolio_tx.store.cluster import Client, batches
from portfolio_tx.store.document import dump_state
from portfolio_tx.store.lua import APPLY, LOAD, PUBLISHED, RoundTrip, Script, apply_args
from portfolio_tx.store.parsed import ParsedStates
from portfolio_tx.store.port import (
    Applied,
    ApplyRequest,
    DecidedCycle,
    SessionSnapshot,
    cash_equity_view,
    positions_view,
)
from portfolio_tx.store.replies import (
    applied,
    as_bytes,
    optional_int,
    raise_first,
    redis_errors,
    text,
)

_APPLY, _LOAD, _PUBLISHED = Script(APPLY), Script(LOAD), Script(PUBLISHED)


class RedisStateStore:
    """The Redis implementation of the StateStore port (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        *,
        namespace: str = "ptx",
        outcome_window: int = 256,
        parsed_states: int = 10_000,
    ) -> None:
        self._client = client
        self._cluster = cluster.is_cluster(client)
        self.namespace = namespace
        self._outcome_window = outcome_window
        self._parsed = ParsedStates(parsed_states)

    @classmethod
    def from_url(
        cls, url: str, *, namespace: str = "ptx", parsed_states: int = 10_000, **connection: Any
    ) -> RedisStateStore:
        """Connect to ``url`` (``redis[s]://host:port/db``, ``redis[s]+cluster://host:port``,
        see ``store.cluster``; credentials in it or in redis-py's ``connection`` keywords);
        StateStoreError if malformed (or no cluster node answers), never with a password."""
        client = cluster.client_from_url(url, **connection)
        return cls(client, namespace=namespace, parsed_states=parsed_states)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def is_cluster(self) -> bool:
        return self._cluster

    def _batches(self, session_ids: Sequence[str]) -> list[list[int]]:
        return batches([self.keys_for(s)[0] for s in session_ids], self._cluster)

    def keys_for(self, session_id: str) -> tuple[str, str, str]:
        """The (state, decisions, recent) keys of a session, all under one hash tag."""
        tag = f"{self.namespace}:{{{session_id}}}"
        return f"{tag}:state", f"{tag}:decisions", f"{tag}:recent"

    def load(self, session_id: str) -> SessionSnapshot:
        return self.load_many([session_id])[0]

    def load_many(self, session_ids: Sequence[str]) -> list[SessionSnapshot]:
        """The snapshots of ``session_ids``, in order, in one round trip."""
        trip = RoundTrip(self._client)
        named = [self.keys_for(session_id) for session_id in session_ids]
        calls = batches([keys[0] for keys in named], self._cluster)
        for call in calls:
            trip.script(_LOAD, [key for i in call for key in named[i][:2]], ())
        first = session_ids[0] if session_ids else "-"
        with redis_errors(f"Redis read failed for session {first}"):
            replies = raise_first(trip.execute())
        snapshots: list[SessionSnapshot | None] = [None] * len(session_ids)
        for call, reply in zip(calls, replies, strict=True):
            rows = zip(reply[::3], reply[1::3], reply[2::3], strict=True)
            for i, (doc, last, published) in zip(call, rows, strict=True):
                state = self._parsed.state_of(session_ids[i], doc)
                snapshots[i] = SessionSnapshot(state, optional_int(last), optional_int(published))
        return [snapshot for snapshot in snapshots if snapshot is not None]

    def apply(
        self,
        session_id: str,
        decision: Decision,
        *,
        outcome: bytes | None = None,
        event_ids: Sequence[str] = (),
        decided_at_ms: int | None = None,
    ) -> Applied:
        request = ApplyRequest(session_id, decision, outcome, event_ids, decided_at_ms)
        [applied], _ = self.apply_many([request])
        if isinstance(applied, StateStoreError):
            raise applied
        return applied

    def apply_many(
        self, requests: Sequence[ApplyRequest], *, ready: Sequence[int] = ()
    ) -> tuple[list[Applied | StateStoreError], set[int]]:
        """The apply script once per chunk of sessions (each session fenced and
        version-locked on its own), then the readiness keys of ``ready``: one round trip
        for a whole batch of decisions."""
        if not requests and not ready:
            return [], set()
        trip = RoundTrip(self._client)
        named = [self.keys_for(request.session_id) for request in requests]
        calls = batches([keys[0] for keys in named], self._cluster)
        window, now_ms = str(self._outcome_window), int(time.time() * 1000)
        args = [apply_args(request, window, now_ms) for request in requests]
        for call in calls:
            keys = [key for i in call for key in named[i]]
            trip.script(_APPLY, keys, [arg for i in call for arg in args[i]])
        for partition in ready:  # one GET each: on a cluster they live in different slots
            trip.command("GET", self._ready_key(partition))
        what = f"Redis write failed for session {requests[0].session_id}" if requests else ""
        with redis_errors(what or "Redis read failed"):
            replies = trip.execute()
        results: list[Applied | StateStoreError | None] = [None] * len(requests)
        for call, reply in zip(calls, replies, strict=False):
            for n, i in enumerate(call):
                request = requests[i]
                if isinstance(reply, Exception):
                    why = f"Redis write failed for session {request.session_id}: {reply}"
                    results[i] = StateStoreError(why)
                else:
                    status = reply[2 * n]
                    results[i] = applied(request, status, reply[2 * n + 1])
                    if status == b"APPLIED" and request.decision.committed:
                        state = request.decision.state  # what its document says (args[i][4])
                        self._parsed.remember(request.session_id, args[i][4].encode(), state)
        marks = replies[len(calls) :]
        for mark in marks:
            if isinstance(mark, Exception):
                raise StateStoreError(f"Redis read failed: {mark}")
        found = {p for p, value in zip(ready, marks, strict=True) if value is not None}
        return [result for result in results if result is not None], found

    def decided_cycle(self, session_id: str, cycle_id: int) -> DecidedCycle | None:
        """The stored record and event ids of a decided cycle still in the window, else None."""
        _, decisions_key, _ = self.keys_for(session_id)
        with redis_errors(f"Redis read failed for session {session_id}"):
            outcome, events, decided_at, published = self._client.hmget(
                decisions_key, f"c:{cycle_id}", f"e:{cycle_id}", f"w:{cycle_id}", "pub"
            )
        if outcome is None:
            return None
        ids = frozenset(text(events).split("\n")) if events else frozenset()
        return DecidedCycle(
            as_bytes(outcome) or None,
            ids,
            int(decided_at or 0),
            published is not None and int(published) >= cycle_id,
        )

    def mark_published(self, last_published: Mapping[str, int]) -> None:
        """Record, per session, the last cycle whose outcome the commit topic now holds."""
        if not last_published:
            return
        trip = RoundTrip(self._client)
        items = list(last_published.items())
        for call in self._batches([session_id for session_id, _ in items]):
            keys = [self.keys_for(items[i][0])[1] for i in call]
            trip.script(_PUBLISHED, keys, [items[i][1] for i in call])
        with redis_errors("Redis write failed marking outcomes published"):
            raise_first(trip.execute())

    def restore(
        self,
        session_id: str,
        state: PortfolioState,
        last_decided: int,
        recent: Sequence[tuple[int, bytes, Sequence[str]]] = (),
    ) -> None:
        """Replace everything stored for a session with what the commit topic says.

        ``recent`` holds (cycle id, outcome record, event ids) of the last decided cycles,
        oldest first; every cycle up to ``last_decided`` is marked published.
        """
        state_key, decisions_key, recent_key = self.keys_for(session_id)
        kept = list(recent)[-self._outcome_window :]
        with redis_errors(f"Redis write failed restoring {session_id}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(state_key, decisions_key, recent_key)
            if state.version > 0:
                pipe.hset(state_key, mapping={"version": state.version, "doc": dump_state(state)})
            fields: dict[FieldT, EncodableT] = {
                "last": last_decided,
                "pub": last_decided,
            }
            for cycle_id, record, event_ids in kept:
                fields[f"c:{cycle_id}"] = record
                fields[f"e:{cycle_id}"] = "\n".join(event_ids)
                fields[f"w:{cycle_id}"] = 0
            pipe.hset(decisions_key, mapping=fields)
            if kept:
                pipe.lpush(recent_key, *[cycle_id for cycle_id, _, _ in kept])
            pipe.execute()

    def server_identity(self) -> str:
        """Which Redis server processes answer (``run_id``; on a cluster every master's node
        id and run id): a new one after a restart or a failover, when the data may have gone
        back in time."""
        with redis_errors("Redis read failed"):
            return cluster.server_identity(self._client)

    def _ready_key(self, partition: int) -> str:
        return f"{self.namespace}:ready:{partition}"

    def partitions_ready(self, partitions: Sequence[int]) -> set[int]:
        """Which of ``partitions`` still have their marker: a missing one means Redis lost
        (or never had) that partition's sessions and they must be restored first."""
        if not partitions:
            return set()
        _, ready = self.apply_many([], ready=partitions)
        return ready

    def mark_partition_ready(self, partition: int) -> None:
        with redis_errors("Redis write failed"):
            self._client.set(self._ready_key(partition), int(time.time() * 1000))

    def abandoned(self, session_id: str) -> dict[int, str]:
        """The session's cycles given up undecided (cycle id -> discard reason)."""
        key = f"{self.namespace}:{{{session_id}}}:abandoned"
        with redis_errors(f"Redis read failed for session {session_id}"):
            found = self._client.hgetall(key)
        return {int(cycle): text(reason) for cycle, reason in found.items()}

    def abandon(self, session_id: str, cycles: Mapping[int, str]) -> None:
        if not cycles:
            return
        key = f"{self.namespace}:{{{session_id}}}:abandoned"
        with redis_errors(f"Redis write failed for session {session_id}"):
            self._client.hset(key, mapping=dict(cycles))  # type: ignore[arg-type]

    def get_latest_cash_equity(self, session_id: str) -> dict[str, Decimal] | None:
        """The seed's read: cash_balance, total_equity, total_fees, total_realized_pnl."""
        return cash_equity_view(self.load(session_id).state)

    def get_positions(self, session_id: str) -> list[dict[str, Any]]:
        """The seed's read: symbol, quantity, entry_price (average), current_price (last mark)."""
        return positions_view(self.load(session_id).state)

    def raw_state(self, session_id: str) -> dict[bytes, bytes]:
        """The state hash exactly as stored (for byte-for-byte comparisons and audits)."""
        with redis_errors(f"Redis read failed for session {session_id}"):
            return self._client.hgetall(self.keys_for(session_id)[0])  # type: ignore[return-value]
