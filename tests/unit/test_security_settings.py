"""Connection security settings: parsed once, secrets never printed (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portfolio_tx.config import load_settings
from portfolio_tx.errors import ConfigError
from portfolio_tx.kafka.clients import common_config, consumer_config, producer_config
from portfolio_tx.security import RedisSecurity, Secret, redacted_url

PASSWORD = "hunter2-but-longer"


def _secured(tmp_path: Path, **extra: str) -> dict[str, str]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    return {
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_USERNAME": "ptx-worker",
        "KAFKA_SASL_PASSWORD_FILE": str(secret),
        "KAFKA_SSL_CA_LOCATION": str(ca),
        **extra,
    }


def test_every_client_gets_the_security_properties_and_no_client_id_carries_the_secret(
    tmp_path: Path,
) -> None:
    settings = load_settings(_secured(tmp_path))
    for config in (common_config(settings), consumer_config(settings), producer_config(settings)):
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert (config["sasl.username"], config["sasl.password"]) == ("ptx-worker", PASSWORD)
        assert config["ssl.ca.location"] == str(tmp_path / "ca.pem")
        assert PASSWORD not in str(config.get("client.id", ""))


def test_settings_and_secrets_print_without_the_password(tmp_path: Path) -> None:
    settings = load_settings(_secured(tmp_path, REDIS_PASSWORD="redis-" + PASSWORD))
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert repr(Secret(PASSWORD)) == "Secret('***')" and f"{Secret(PASSWORD)}" == "Secret('***')"
    assert redacted_url(f"rediss://ptx:{PASSWORD}@h:6380/0") == "rediss://ptx:***@h:6380/0"


def test_a_properties_file_is_the_base_the_settings_override(tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    props.write_text("# site\nsocket.keepalive.enable=true\nsecurity.protocol=SSL\n")
    settings = load_settings({"KAFKA_CONFIG_FILE": str(props)})
    config = common_config(settings)
    assert config["socket.keepalive.enable"] == "true"
    assert config["security.protocol"] == "PLAINTEXT"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_PASSWORD": "a", "KAFKA_SASL_PASSWORD_FILE": "/x"}, "not both"),
        ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent"}, "is not a readable file"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "one of PLAINTEXT, SSL"),
        ({"REDIS_PASSWORD_FILE": "/nonexistent"}, "REDIS_PASSWORD_FILE="),
    ],
)
def test_a_bad_security_setting_is_a_config_error_naming_it(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_redis_tls_files_need_a_rediss_url() -> None:
    security = RedisSecurity(username="u", password=Secret("p"), ssl_ca_certs="/ca.pem")
    assert security.client_kwargs("rediss://h/0") == {
        "username": "u",
        "password": "p",
        "ssl_ca_certs": "/ca.pem",
    }
    with pytest.raises(ConfigError, match="rediss://"):
        security.client_kwargs("redis://h/0")
