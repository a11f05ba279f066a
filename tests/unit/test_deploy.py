"""deploy/worker.yaml gives every worker pod a stable PTX_INSTANCE_ID from its ordinal (no
cluster needed): the StatefulSet's pod name, so the code's transactional.id is the same
after a restart of that pod and differs between pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from portfolio_tx.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [d for d in yaml.safe_load_all((ROOT / "deploy" / "worker.yaml").read_text()) if d]
STATEFULSET: dict[str, Any] = next(d for d in DOCS if d["kind"] == "StatefulSet")
WORKER = STATEFULSET["spec"]["template"]["spec"]["containers"][0]


def _env_of_pod(ordinal: int) -> dict[str, str]:
    """The container's environment as the kubelet makes it for pod ``ordinal``."""
    pod_name = f"{STATEFULSET['metadata']['name']}-{ordinal}"
    env = {}
    for var in WORKER["env"]:
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", var
            env[var["name"]] = pod_name
    return env


def test_the_instance_id_is_the_pod_name_of_a_statefulset_behind_a_headless_service() -> None:
    [instance] = [v for v in WORKER["env"] if v["name"] == "PTX_INSTANCE_ID"]
    assert instance == {
        "name": "PTX_INSTANCE_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    service = next(d for d in DOCS if d["kind"] == "Service")
    assert STATEFULSET["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"


def test_each_ordinal_keeps_its_own_transactional_id() -> None:
    ids = [load_settings(_env_of_pod(n)).transactional_id for n in range(3)]
    assert ids == [load_settings(_env_of_pod(n)).transactional_id for n in range(3)]  # stable
    assert len(set(ids)) == 3
    assert ids[1] == "portfolio-tx-portfolio-tx-worker-1"
