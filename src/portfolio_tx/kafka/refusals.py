"""A secured cluster's refusals, each as one line a person can act on.

librdkafka reports a failed authentication or TLS verification only through its error
callback and its log (a metadata request merely times out with "transport failure"), and
an authorisation failure as an error code on whatever was refused. This module turns each
into a KafkaSetupError naming what failed and where: authentication (check the username
and password), TLS verification (check the CA), authorisation (which resource, which
principal). librdkafka's own strings never carry a password (it redacts its sensitive
properties), and neither do ours: they name the principal, never its secret.

``Refusals`` is every client's ``error_cb`` (``clients.common_config``): it keeps the first
refusal, which the admin's metadata calls and the publisher's flush raise, so a command
stops with that line instead of retrying a credential that will never work.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from portfolio_tx.errors import KafkaSetupError

_AUTHORISATION = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "consumer group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
}


def _detail(error: KafkaError) -> str:
    text = error.str()
    # librdkafka prefixes the broker ("sasl_ssl://host:port/bootstrap: ") and appends
    # its state machine timing; neither helps the reader of one line.
    text = text.split(": ", 1)[1] if "://" in text.split(": ", 1)[0] else text
    return text.split(" (after ", 1)[0]


def refusal(error: KafkaError, where: str, resource: str | None = None) -> KafkaSetupError | None:
    """The one-line error for a security refusal, None for any other error."""
    code = error.code()
    if code == KafkaError._AUTHENTICATION:
        return KafkaSetupError(
            f"Kafka authentication failed at {where}: {_detail(error)} — check "
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD[_FILE] (or the client certificate)"
        )
    if code == KafkaError._SSL:
        return KafkaSetupError(
            f"TLS verification failed for Kafka at {where}: {_detail(error)} — check "
            "KAFKA_SSL_CA_LOCATION"
        )
    if code in _AUTHORISATION:
        kind = _AUTHORISATION[code]
        named = f" {resource}" if resource else ""
        return KafkaSetupError(
            f"not authorised on {kind}{named} ({where}): the principal lacks an ACL for it"
        )
    return None


def one_line(exc: KafkaException) -> str:
    """The line for a Kafka exception no adapter translated: its refusal (a transactional
    id not authorised, from the worker's producer) or the error as librdkafka says it."""
    error = exc.args[0] if exc.args else None
    found = refusal(error, "Kafka") if isinstance(error, KafkaError) else None
    if found is not None:
        return str(found)
    return f"Kafka error: {error if error is not None else exc} — check KAFKA_BOOTSTRAP_SERVERS"


class Refusals:
    """Every client's ``error_cb``: keeps the first security refusal for the code that
    polls the client to raise (``raise_first``). It never raises itself: an exception
    left pending in one librdkafka callback breaks the next callback of the same poll."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.first: KafkaSetupError | None = None

    def __call__(self, error: KafkaError) -> None:
        if self.first is None:
            self.first = refusal(error, self.where)

    def raise_first(self) -> None:
        if self.first is not None:
            raise self.first
