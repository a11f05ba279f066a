"""The process's schema registry clients, one per URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from portfolio_tx.errors import ConfigError, KafkaSetupError

_T = TypeVar("_T")

_REGISTRY_CLIENTS: dict[str, Any] = {}


def registry_client(url: str) -> Any:
    """The process's schema registry client for ``url`` (``mock://...`` is in-memory).

    Codecs with the same URL share one client, so a ``mock://`` registry is shared too.
    Raises ``ConfigError`` for a URL the client does not accept.
    """
    client = _REGISTRY_CLIENTS.get(url)
    if client is None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        try:
            client = SchemaRegistryClient.new_client({"url": url})
        except Exception as exc:  # the client raises ValueError/TypeError for bad config
            raise ConfigError(f"bad SCHEMA_REGISTRY_URL {url!r}: {exc}") from exc
        _REGISTRY_CLIENTS[url] = client
    return client


def call_registry(call: Callable[[], _T], where: str, what: str) -> _T:
    """``call()``; any failure (SchemaRegistryError, transport errors) as KafkaSetupError
    saying that the registry at ``where`` could not ``what``."""
    try:
        return call()
    except Exception as exc:
        raise KafkaSetupError(f"schema registry at {where} could not {what}: {exc}") from exc
