"""The Redis store's Lua scripts, and sending them with other commands in one round trip.

Each script takes many sessions at once (their keys in ``KEYS``, their arguments in
``ARGV``, a fixed number per session) and handles each session on its own: one session's
conflict or fence never touches another's writes. Calling a script once for a chunk of
sessions instead of once per session is what makes a batch cheap: redis-py spends tens of
microseconds packing and parsing each command, the server a few running it.

Scripts go by EVALSHA and are loaded only when the server answers NOSCRIPT (a restarted
or flushed Redis): redis-py's own pipelined scripts ask ``SCRIPT EXISTS`` first, which is a
second round trip on every call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from portfolio_tx.store.document import dump_state
from portfolio_tx.store.port import ApplyRequest

# Sessions per script call: bounds how long one call holds the server (a few ms).
CHUNK = 200

APPLY_ARGS = 9  # per session, see ``apply_args``

# KEYS: state, decisions, recent per session; ARGV: APPLY_ARGS per session.
# Returns status, detail per session: APPLIED -, DECIDED <stored record or nil>, LOST -,
# CONFLICT <stored version>.
APPLY = """
local function apply(state, decisions, recent, a)
  local expected, cycle, commit = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  if cycle ~= '' then
    local stored = redis.call('HGET', decisions, 'c:' .. cycle)
    if stored then return 'DECIDED', stored end
    local last = redis.call('HGET', decisions, 'last')
    if last and tonumber(cycle) <= tonumber(last) then return 'DECIDED', false end
  end
  local version = redis.call('HGET', state, 'version')
  if not version and expected ~= '0' then return 'LOST', false end
  version = version or '0'
  if version ~= expected then return 'CONFLICT', version end
  if commit == '1' then
    redis.call('HSET', state, 'version', ARGV[a + 4], 'doc', ARGV[a + 5])
  end
  if cycle ~= '' then
    redis.call('HSET', decisions, 'last', cycle, 'c:' .. cycle, ARGV[a + 6],
               'e:' .. cycle, ARGV[a + 8], 'w:' .. cycle, ARGV[a + 9])
    redis.call('LPUSH', recent, cycle)
    local window = tonumber(ARGV[a + 7])
    while redis.call('LLEN', recent) > window do
      local old = redis.call('RPOP', recent)
      redis.call('HDEL', decisions, 'c:' .. old, 'e:' .. old, 'w:' .. old)
    end
  end
  return 'APPLIED', false
end
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local status, detail = apply(KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3], 9 * i)
  out[2 * i + 1] = status
  out[2 * i + 2] = detail
end
return out
"""

def apply_args(request: ApplyRequest, window: str, now_ms: int) -> list[Any]:
    """The APPLY script's arguments for one session (``window``: the outcome window as
    text; ``now_ms``: the decision time of a request that gives none)."""
    decision = request.decision
    committed, version = decision.committed, decision.state.version
    return [
        str(version - 1 if committed else version),  # staged_on(decision)
        "" if decision.cycle_id is None else str(decision.cycle_id),
        "1" if committed else "0",
        str(version),
        dump_state(decision.state) if committed else "",
        request.outcome if request.outcome is not None else b"",
        window,
        "\n".join(request.event_ids),
        str(now_ms if request.decided_at_ms is None else request.decided_at_ms),
    ]


# KEYS: state, decisions per session. Returns doc, last, pub per session (nil when absent).
LOAD = """
local out = {}
for i = 0, #KEYS / 2 - 1 do
  out[3 * i + 1] = redis.call('HGET', KEYS[2 * i + 1], 'doc')
  local decided = redis.call('HMGET', KEYS[2 * i + 2], 'last', 'pub')
  out[3 * i + 2] = decided[1]
  out[3 * i + 3] = decided[2]
end
return out
"""

# KEYS: decisions per session; ARGV: the last published cycle per session (never lowered).
PUBLISHED = """
for i = 1, #KEYS do
  local current = redis.call('HGET', KEYS[i], 'pub')
  if not current or tonumber(current) < tonumber(ARGV[i]) then
    redis.call('HSET', KEYS[i], 'pub', ARGV[i])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Script:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 - Redis's script id


class RoundTrip:
    """Script calls and plain commands for one pipelined round trip (not MULTI).

    On a cluster the pipeline sends each node its commands (one round trip per node, in
    parallel) and follows redirects; a script call's keys must share one slot. NOSCRIPT is
    answered by loading the script (on every master of a cluster: each node has its own
    script cache, and a promoted replica may not have it) and sending those calls again."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        self._client = client
        self._calls: list[tuple[Script | None, tuple[Any, ...]]] = []

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> None:
        self._calls.append((script, (len(keys), *keys, *args)))

    def command(self, *args: Any) -> None:
        self._calls.append((None, args))

    def execute(self) -> list[Any]:
        """Every reply in order; a command's error is its reply (raised by the caller).

        Raises RedisError when the round trip itself fails (connection, timeout)."""
        replies = self._send(self._calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for script in {self._calls[i][0] for i in missing}:
                assert script is not None
                self._client.script_load(script.source)
            resent = self._send([self._calls[i] for i in missing])
            for i, reply in zip(missing, resent, strict=True):
                replies[i] = reply
        return replies

    def _send(self, calls: Sequence[tuple[Script | None, tuple[Any, ...]]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for script, args in calls:
            # EVALSHA by execute_command: RedisCluster's pipeline blocks its evalsha method
            # (redis-py #2914) yet routes the command by its keys
            command = args if script is None else ("EVALSHA", script.sha, *args)
            pipe.execute_command(*command)
        return list(pipe.execute(raise_on_error=False))
