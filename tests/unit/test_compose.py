"""docker-compose.yml and worker/Dockerfile agree with the code (no Docker engine needed).

The compose file is parsed, its ``${VAR:-default}`` interpolations resolved as Compose does
with nothing set, and every portfolio-tx container's environment is fed to the code's own
``load_settings``: what the containers run with is then exactly what the code would use.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from portfolio_tx.config import Settings, load_settings
from portfolio_tx.wire.topics import TopicNames

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "worker" / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEFAULTS = Settings()
PTX_SERVICES = [
    name
    for name, service in SERVICES.items()
    if service.get("build", {}).get("dockerfile") == "worker/Dockerfile"
]


def resolve(text: str) -> str:
    """``${VAR:-default}`` / ``${VAR-default}`` as Compose resolves them with VAR unset."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)


def published(service: str, container_port: int) -> tuple[str, int]:
    """(host address, host port) that ``service`` publishes ``container_port`` on."""
    for mapping in SERVICES[service].get("ports", []):
        host_ip, host_port, inside = resolve(str(mapping)).rsplit(":", 2)
        if int(inside) == container_port:
            return host_ip, int(host_port)
    raise AssertionError(f"{service} does not publish port {container_port}")


def environment(service: str) -> dict[str, str]:
    return {k: resolve(str(v)) for k, v in SERVICES[service].get("environment", {}).items()}


def settings_of(service: str) -> Settings:
    return load_settings(environment(service))


def test_portfolio_tx_containers_are_the_worker_the_topic_creator_and_the_dashboard() -> None:
    assert sorted(PTX_SERVICES) == ["dashboard", "topics", "worker"]
    assert SERVICES["topics"]["command"] == ["portfolio-tx", "topics", "create"]
    assert SERVICES["worker"]["command"] == ["portfolio-tx", "worker"]
    assert SERVICES["dashboard"]["command"] == ["portfolio-tx", "dashboard"]
    assert "portfolio-tx" in PYPROJECT["project"]["scripts"]


def test_kafka_is_published_on_the_port_of_the_default_bootstrap_servers() -> None:
    default_port = int(DEFAULTS.bootstrap_servers.rsplit(":", 1)[1])
    host_ip, host_port = published("kafka", default_port)
    assert (host_ip, host_port) == ("127.0.0.1", default_port)
    advertised = resolve(SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    assert f"//127.0.0.1:{default_port}" in advertised


def test_redis_is_published_on_the_port_of_the_default_redis_url() -> None:
    default = urlsplit(DEFAULTS.redis_url)
    assert published("redis", default.port or 6379) == ("127.0.0.1", default.port)


@pytest.mark.parametrize("service", ["topics", "worker", "dashboard"])
def test_containers_use_the_default_topic_names_and_group(service: str) -> None:
    settings = settings_of(service)
    assert settings.topics == TopicNames()
    assert settings.group_id == DEFAULTS.group_id


@pytest.mark.parametrize("service", ["topics", "worker", "dashboard"])
def test_containers_reach_kafka_on_an_advertised_listener_and_redis_by_service_name(
    service: str,
) -> None:
    settings = settings_of(service)
    advertised = resolve(SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    assert f"//{settings.bootstrap_servers}" in advertised
    redis = urlsplit(settings.redis_url)
    assert redis.hostname in SERVICES
    assert redis.port == urlsplit(DEFAULTS.redis_url).port  # the port inside the container
    assert redis.path == urlsplit(DEFAULTS.redis_url).path  # the same database


def test_worker_publishes_its_metrics_port_on_localhost_only() -> None:
    env = environment("worker")
    port = int(env["PTX_METRICS_PORT"])
    assert env["PTX_METRICS_HOST"] == "0.0.0.0"  # reachable through the published port
    assert published("worker", port)[0] == "127.0.0.1"


def test_dashboard_publishes_its_port_on_localhost_only() -> None:
    env = environment("dashboard")
    port = int(env["PTX_DASHBOARD_PORT"])
    assert env["PTX_DASHBOARD_HOST"] == "0.0.0.0"
    assert published("dashboard", port)[0] == "127.0.0.1"


def test_worker_starts_after_the_topics_exist_and_the_stores_are_healthy() -> None:
    needs = SERVICES["worker"]["depends_on"]
    assert needs["topics"]["condition"] == "service_completed_successfully"
    assert needs["kafka"]["condition"] == "service_healthy"
    assert needs["redis"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_project_with_pip() -> None:
    runs = " ".join(line for line in DOCKERFILE.splitlines() if line.startswith("RUN "))
    assert re.search(r"\bpip install\s+(?:-\S+\s+)*\.(?:\s|$)", runs), runs


def test_dockerfile_copies_everything_pip_install_reads_and_it_exists() -> None:
    copied = [
        part
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
        if not part.startswith("--")
    ]
    needed = {"pyproject.toml", "src", PYPROJECT["project"]["readme"]}
    assert needed <= set(copied)
    missing = [path for path in copied if not (ROOT / path).exists()]
    assert not missing, f"the Docker build would fail: {missing} not in the repository"


def test_wheel_package_data_covers_the_dashboard_page_and_the_schemas() -> None:
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["portfolio_tx"]
    package = ROOT / "src" / "portfolio_tx"
    data = [
        path.relative_to(package).as_posix()
        for folder in ("dashboard/static", "wire/schemas", "wire/schemas/earlier")
        for path in (package / folder).iterdir()
        if path.is_file()
    ]
    assert data
    left_out = [path for path in data if not any(fnmatch(path, glob) for glob in globs)]
    assert not left_out, f"pip install . would leave out {left_out}"
