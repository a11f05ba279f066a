"""Connection security: how the project authenticates to Kafka and Redis, and secrets that
never print.

Every variable (the README's configuration table mirrors this):

    KAFKA_SECURITY_PROTOCOL         PLAINTEXT       PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    KAFKA_SASL_MECHANISM            SCRAM-SHA-512   SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    KAFKA_SASL_USERNAME             (unset)         the principal
    KAFKA_SASL_PASSWORD[_FILE]      (unset)         its password, or a file holding it
    KAFKA_SSL_CA_LOCATION           (system CAs)    PEM file of the CA(s) to trust
    KAFKA_SSL_CERTIFICATE_LOCATION  (unset)         client certificate (mutual TLS)
    KAFKA_SSL_KEY_LOCATION          (unset)         its private key
    KAFKA_SSL_KEY_PASSWORD[_FILE]   (unset)         the key's password, if encrypted
    KAFKA_CONFIG_FILE               (unset)         librdkafka properties for anything else
    REDIS_USERNAME                  (unset)         ACL user (or in REDIS_URL)
    REDIS_PASSWORD[_FILE]           (unset)         its password (or in REDIS_URL)
    REDIS_SSL_CA_CERTS              (system CAs)    rediss:// only: CA file to trust
    REDIS_SSL_CERTFILE / _KEYFILE   (unset)         rediss:// only: client certificate, key

A ``…_FILE`` variable names a file whose content (stripped) is the secret; giving both it
and the plain variable is an error. A ``Secret`` prints as ``'***'``: settings, reprs and
error messages never carry a password, and ``redacted_url`` takes one out of a URL.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from portfolio_tx.errors import ConfigError


class Secret:
    """A password or token: ``reveal()`` gives it to the one client that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(Secret)


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    PLAIN = "PLAIN"


def _choice(raw: str, name: str | None, kind: type[StrEnum], what: str) -> Any:
    for member in kind:
        if raw.strip().upper() == member.value:
            return member
    given = f"{name}={raw!r}" if name else repr(raw)
    raise ConfigError(f"{given} is not a {what}: one of {', '.join(m.value for m in kind)}")


def parse_security_protocol(raw: str, name: str | None = None) -> SecurityProtocol:
    return _choice(raw, name, SecurityProtocol, "Kafka security protocol")  # type: ignore[no-any-return]


def parse_sasl_mechanism(raw: str, name: str | None = None) -> SaslMechanism:
    return _choice(raw, name, SaslMechanism, "SASL mechanism")  # type: ignore[no-any-return]


def parse_readable_file(raw: str, name: str | None = None) -> str:
    """A path to a file this process can read (a CA, a certificate, a key, a properties
    file); ConfigError naming ``name`` otherwise. The file's content is never quoted."""
    path = raw.strip()
    if not (os.path.isfile(path) and os.access(path, os.R_OK)):
        given = f"{name}={raw!r}" if name else repr(raw)
        raise ConfigError(f"{given} is not a readable file")
    return path


def parse_properties_file(raw: str, name: str | None = None) -> tuple[tuple[str, str], ...]:
    """``key=value`` lines (``#`` comments, blank lines skipped) of a librdkafka config file."""
    path = parse_readable_file(raw, name)
    entries = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            key, sep, value = text.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{name or 'file'}={raw!r}: line {number} is not key=value")
            entries.append((key.strip(), value.strip()))
    return tuple(entries)


def secret_from_env(env: Mapping[str, str], name: str) -> Secret | None:
    """``name`` or the content of the file ``name_FILE`` names (never both)."""
    direct, file_name = env.get(name, ""), env.get(f"{name}_FILE", "").strip()
    if direct and file_name:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if not file_name:
        return Secret(direct) if direct else None
    path = parse_readable_file(file_name, f"{name}_FILE")
    with open(path, encoding="utf-8") as fh:
        value = fh.read().strip()
    if not value:
        raise ConfigError(f"{name}_FILE={file_name!r} is empty")
    return Secret(value)


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs); also for a
    cluster URL naming several ``host:port``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    auth, at, hosts = netloc.rpartition("@")
    if not at or ":" not in auth:
        return url
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{slash}{tail}"


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """What every Kafka client adds to its config (see ``client_config``)."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    mechanism: SaslMechanism = SaslMechanism.SCRAM_SHA_512
    username: str | None = None
    password: Secret | None = None
    ca_location: str | None = None
    certificate_location: str | None = None
    key_location: str | None = None
    key_password: Secret | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def client_config(self) -> dict[str, Any]:
        """librdkafka properties: the properties file first, the settings over it."""
        config: dict[str, Any] = dict(self.extra)
        config["security.protocol"] = self.protocol.value
        if self.protocol in (SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT):
            config["sasl.mechanism"] = self.mechanism.value
            if self.username is not None:
                config["sasl.username"] = self.username
            if self.password is not None:
                config["sasl.password"] = self.password.reveal()
        optional = {
            "ssl.ca.location": self.ca_location,
            "ssl.certificate.location": self.certificate_location,
            "ssl.key.location": self.key_location,
            "ssl.key.password": self.key_password.reveal() if self.key_password else None,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        return config


@dataclass(frozen=True, slots=True)
class RedisSecurity:
    """ACL user and TLS files for the Redis client (``client_kwargs``)."""

    username: str | None = None
    password: Secret | None = None
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def client_kwargs(self, url: str) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url(url, ...)``; TLS files only for a
        ``rediss://`` URL (ConfigError when given for another)."""
        kwargs: dict[str, Any] = {}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password.reveal()
        tls = {"ssl_ca_certs": self.ssl_ca_certs, "ssl_certfile": self.ssl_certfile,
               "ssl_keyfile": self.ssl_keyfile}  # fmt: skip
        given = {k: v for k, v in tls.items() if v is not None}
        if given and not url.startswith(("rediss://", "rediss+cluster://")):
            raise ConfigError("REDIS_SSL_* files need a rediss:// (or rediss+cluster://) REDIS_URL")
        return {**kwargs, **given}


# The typed variables: name -> (field of KafkaSecurity or RedisSecurity, parser), read by
# ``kafka_security_from_env`` / ``redis_security_from_env`` and by the bad-values test.
KAFKA_TYPED_VARIABLES: Mapping[str, tuple[str, Callable[[str, str], Any]]] = {
    "KAFKA_SECURITY_PROTOCOL": ("protocol", parse_security_protocol),
    "KAFKA_SASL_MECHANISM": ("mechanism", parse_sasl_mechanism),
    "KAFKA_SSL_CA_LOCATION": ("ca_location", parse_readable_file),
    "KAFKA_SSL_CERTIFICATE_LOCATION": ("certificate_location", parse_readable_file),
    "KAFKA_SSL_KEY_LOCATION": ("key_location", parse_readable_file),
    "KAFKA_CONFIG_FILE": ("extra", parse_properties_file),
}
REDIS_TYPED_VARIABLES: Mapping[str, tuple[str, Callable[[str, str], Any]]] = {
    "REDIS_SSL_CA_CERTS": ("ssl_ca_certs", parse_readable_file),
    "REDIS_SSL_CERTFILE": ("ssl_certfile", parse_readable_file),
    "REDIS_SSL_KEYFILE": ("ssl_keyfile", parse_readable_file),
}
TYPED_VARIABLES = {**KAFKA_TYPED_VARIABLES, **REDIS_TYPED_VARIABLES}


def _typed(env: Mapping[str, str], table: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    return {
        field_name: parse(raw, name)
        for name, (field_name, parse) in table.items()
        if (raw := env.get(name, "").strip())
    }


def kafka_security_from_env(env: Mapping[str, str]) -> KafkaSecurity:
    """Raises ConfigError naming the variable; a SASL protocol without credentials (here
    or in KAFKA_CONFIG_FILE) is one too, before any connection is tried."""
    security = KafkaSecurity(
        username=env.get("KAFKA_SASL_USERNAME") or None,
        password=secret_from_env(env, "KAFKA_SASL_PASSWORD"),
        key_password=secret_from_env(env, "KAFKA_SSL_KEY_PASSWORD"),
        **_typed(env, KAFKA_TYPED_VARIABLES),
    )
    config = security.client_config()
    if security.protocol.startswith("SASL") and not (
        config.get("sasl.username") and config.get("sasl.password")
    ):
        raise ConfigError(
            f"KAFKA_SECURITY_PROTOCOL={security.protocol.value} needs KAFKA_SASL_USERNAME "
            "and KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"
        )
    return security


def redis_security_from_env(env: Mapping[str, str]) -> RedisSecurity:
    return RedisSecurity(
        username=env.get("REDIS_USERNAME") or None,
        password=secret_from_env(env, "REDIS_PASSWORD"),
        **_typed(env, REDIS_TYPED_VARIABLES),
    )
