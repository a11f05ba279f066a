"""deploy/ (the Kubernetes manifests) agrees with the code, as test_compose.py does for
docker-compose: the pods' environment is fed to the code's own loaders, every command a pod
runs is parsed by the real command line, and the StatefulSet gives each worker the stable
identity its transactional.id rests on. No cluster needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from portfolio_tx.commands.cli import build_parser
from portfolio_tx.commands.flags import load_run_options
from portfolio_tx.config import Settings, load_settings
from portfolio_tx.wire.topics import TopicNames

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUSTOMIZATION = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc
    for name in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((DEPLOY / name).read_text())
    if doc
]
DEFAULTS = Settings()


def one(kind: str) -> dict[str, Any]:
    found = [doc for doc in DOCS if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


CONFIG: dict[str, str] = one("ConfigMap")["data"]
WORKERS = one("StatefulSet")
POD = WORKERS["spec"]["template"]
WORKER = POD["spec"]["containers"][0]


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def parses(command: list[str]) -> Any:
    assert command[0] == "portfolio-tx"
    return build_parser().parse_args(command[1:])


def test_every_resource_kustomize_lists_exists_and_every_manifest_is_listed() -> None:
    listed = set(KUSTOMIZATION["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert {doc["kind"] for doc in DOCS} == {"ConfigMap", "Job", "Service", "StatefulSet"}


def test_the_config_map_is_the_codes_defaults_on_three_brokers() -> None:
    settings = load_settings(CONFIG)
    assert settings.topics == TopicNames()
    assert settings.group_id == DEFAULTS.group_id
    assert len(settings.bootstrap_servers.split(",")) == 3
    options = load_run_options(CONFIG)
    assert options.log_format == "json"
    assert options.metrics_port > 0


def test_no_secret_is_in_the_config_map() -> None:
    assert not [key for key in CONFIG if re.search("PASSWORD|SECRET|TOKEN|KEY", key)]
    assert "@" not in CONFIG["REDIS_URL"]  # no user:password@ in the URL


def test_each_worker_is_named_by_its_pod_hence_a_stable_transactional_id() -> None:
    env = {item["name"]: item for item in WORKER["env"]}
    assert env["PTX_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # a StatefulSet pod's name is <set>-<ordinal>, kept across restarts and reschedules
    pod_name = f"{WORKERS['metadata']['name']}-0"
    settings = load_settings({**CONFIG, "PTX_INSTANCE_ID": pod_name})
    assert settings.transactional_id == f"{DEFAULTS.group_id}-{pod_name}"


def test_the_stateful_set_has_its_headless_service() -> None:
    service = one("Service")
    assert WORKERS["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == WORKERS["spec"]["selector"]["matchLabels"]
    assert POD["metadata"]["labels"] == WORKERS["spec"]["selector"]["matchLabels"]


def test_the_worker_runs_the_worker_command() -> None:
    assert parses(WORKER["command"]).command == "worker"


def test_liveness_asks_alive_and_readiness_asks_ready() -> None:
    live = parses(WORKER["livenessProbe"]["exec"]["command"])
    ready = parses(WORKER["readinessProbe"]["exec"]["command"])
    assert (live.command, live.alive) == ("check", True)
    assert (ready.command, ready.alive) == ("check", False)


def test_prometheus_scrapes_the_port_the_worker_serves_metrics_on() -> None:
    annotations = POD["metadata"]["annotations"]
    port = load_run_options(CONFIG).metrics_port
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert [p["containerPort"] for p in WORKER["ports"]] == [port]


def test_memory_covers_the_buffer_limit_and_sigterm_has_time_to_finish() -> None:
    requested = mebibytes(WORKER["resources"]["requests"]["memory"])
    limit = mebibytes(WORKER["resources"]["limits"]["memory"])
    assert requested >= DEFAULTS.max_buffered_mb + 128  # the process itself: ~130 MB in bench
    assert limit >= requested
    grace = POD["spec"]["terminationGracePeriodSeconds"]
    assert grace > DEFAULTS.transaction_timeout_ms / 1000


def test_the_topics_job_creates_replicated_topics_for_every_worker() -> None:
    job = one("Job")["spec"]["template"]["spec"]["containers"][0]
    args = parses(job["command"])
    assert (args.command, args.topics_command) == ("topics", "create")
    assert args.replication_factor == 3  # min.insync.replicas 2 leaves one broker to lose
    assert args.partitions >= WORKERS["spec"]["replicas"]  # no worker left without work


@pytest.mark.parametrize("doc", [WORKERS, one("Job")], ids=["worker", "topics"])
def test_pods_run_as_the_images_unprivileged_user(doc: dict[str, Any]) -> None:
    context = doc["spec"]["template"]["spec"]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001  # worker/Dockerfile's ptx user
