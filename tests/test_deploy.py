"""The files that describe hosting elsewhere, checked as files (no container engine runs here):
compose.yaml, deploy/kubernetes.yaml and the Dockerfile run the command `make serve` runs, share
one dataset store between replicas, probe /_stcore/health, keep a browser on one replica; the
compose proxy's nginx.conf is the one generated from docs/hosting.md, and nginx accepts it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness import cluster
from harness.server import ROOT

yaml = pytest.importorskip("yaml")

COMMAND = ["streamlit", *cluster.replica_args(8501, "0.0.0.0")]


def test_make_serve_runs_the_replica_command_of_the_containers() -> None:
    local = cluster.replica_command(8502)
    assert local[1:3] == ["-m", "streamlit"]  # `python -m streamlit` is the `streamlit` program
    assert local[3:] == cluster.replica_args(8502, "127.0.0.1")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert json.loads(cmd) == COMMAND
    assert "ENV ANAKINRA_DATASETS=/datasets" in dockerfile


# ---- compose.yaml -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_replicas_sharing_one_dataset_store(compose: dict) -> None:
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if name.startswith("app-")}
    assert len(replicas) >= 2
    for service in replicas.values():
        assert service["command"] == COMMAND
        store = service["environment"]["ANAKINRA_DATASETS"]
        assert f"datasets:{store}" in service["volumes"]  # the same named volume for all
        assert "/_stcore/health" in " ".join(service["healthcheck"]["test"])
        assert service["restart"] == "unless-stopped"
    assert "datasets" in compose["volumes"]
    proxy = services["proxy"]
    assert proxy["build"]["dockerfile"] == "deploy/Dockerfile.proxy"
    assert {name: d["condition"] for name, d in proxy["depends_on"].items()} == dict.fromkeys(
        replicas, "service_healthy"
    )


def test_the_compose_proxy_is_debians_nginx_with_the_generated_configuration(
    compose: dict,
) -> None:
    replicas = sorted(name for name in compose["services"] if name.startswith("app-"))
    listen = int(compose["services"]["proxy"]["ports"][0].split(":")[1])
    generated = cluster.container_conf(listen, [f"{name}:8501" for name in replicas])
    assert (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8") == generated, (
        "deploy/nginx.conf is stale: python -m harness.cluster nginx-conf --listen 8080 "
        + " ".join(f"--upstream {name}:8501" for name in replicas)
        + " > deploy/nginx.conf"
    )
    dockerfile = (ROOT / "deploy" / "Dockerfile.proxy").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM debian:" in dockerfile
    assert "apt-get install -y --no-install-recommends nginx" in dockerfile
    assert "COPY deploy/nginx.conf /etc/nginx/nginx.conf" in dockerfile


def test_nginx_accepts_the_compose_proxys_configuration(tmp_path: Path) -> None:
    if not cluster.nginx_available():
        pytest.skip("nginx is missing (make system-deps)")
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    # The replicas' names resolve only inside compose's network; the rest is tested as written.
    text = re.sub(r"server app-\d+:8501", "server 127.0.0.1:8501", text)
    text = text.replace("pid /run/nginx.pid;", f"pid {tmp_path / 'nginx.pid'};")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text, encoding="utf-8")
    checked = subprocess.run(
        [cluster.NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


# ---- deploy/kubernetes.yaml -------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifest() -> dict[str, dict]:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()))
    return {document["kind"]: document for document in documents}


def test_the_deployment_runs_the_replica_command_with_health_probes(
    manifest: dict[str, dict],
) -> None:
    deployment = manifest["Deployment"]
    assert deployment["apiVersion"] == "apps/v1" and deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert [*container["command"], *container["args"]] == COMMAND
    (port,) = container["ports"]
    assert port["containerPort"] == 8501
    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/_stcore/health" and check["port"] == port["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_every_replica_mounts_the_one_dataset_store(manifest: dict[str, dict]) -> None:
    pod = manifest["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == env["ANAKINRA_DATASETS"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = manifest["PersistentVolumeClaim"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # several pods write it


def test_the_service_and_ingress_keep_a_browser_on_one_replica(manifest: dict[str, dict]) -> None:
    service, ingress = manifest["Service"], manifest["Ingress"]
    labels = manifest["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == port["name"]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["nginx.ingress.kubernetes.io/session-cookie-name"] == (
        cluster.AFFINITY_COOKIE
    )
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert manifest["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
