"""deploy/k8s, checked without a cluster: `kubectl kustomize` builds each overlay, every object
passes the Kubernetes schemas (kubernetes-validate, strict: an unknown or misspelt field fails),
and what the manifests say about the backend (port, probe paths, environment names, metric
name, model folders, drain period) agrees with the backend itself."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from support import DEPLOY_DIR, REPO

K8S = DEPLOY_DIR / "k8s"
OVERLAYS = ("cpu", "gpu", "cpu-postgres")
# The oldest Kubernetes still maintained upstream when these were written, and the newest schema
# kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.32", kubernetes_validate.latest_version())
# Read by the libraries under the backend, not by its settings object.
LIBRARY_ENV = {"HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM"}


@cache
def build(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not found (it ships with the machine image; or install kustomize)")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def backend_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = find(objects, "Deployment", "backend")["spec"]["template"]["spec"]["containers"]
    return container


def settings_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    # kustomize adds a hash of the content to the generated ConfigMap's name.
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("backend-")]
    return cm["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_every_object(overlay: str) -> None:
    kinds = {(o["kind"], o["metadata"]["name"].split("-")[0]) for o in build(overlay)}
    for expected in (
        ("Namespace", "localchat"),
        ("ConfigMap", "backend"),
        ("PersistentVolumeClaim", "localchat"),
        ("Job", "prepare"),
        ("Deployment", "backend"),
        ("Service", "backend"),
        ("Deployment", "web"),
        ("Service", "web"),
        ("Ingress", "api"),
        ("Ingress", "web"),
        ("HorizontalPodAutoscaler", "backend"),
        ("PodDisruptionBudget", "backend"),
    ):
        assert expected in kinds, expected
    namespaces = {o["metadata"].get("namespace") for o in build(overlay) if o["kind"] != "Namespace"}
    assert namespaces == {"localchat"}


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_the_kubernetes_schema(overlay: str, version: str) -> None:
    for obj in build(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {exc.message}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_names_are_the_backends_settings(overlay: str) -> None:
    from app.core.config import Settings

    fields = {name.upper() for name in Settings.model_fields}
    objects = build(overlay)
    names = set(settings_env(objects)) | {e["name"] for e in backend_container(objects).get("env", [])}
    unknown = names - LIBRARY_ENV - fields
    assert not unknown, f"not settings of backend/app/core/config.py: {unknown}"
    secret = next(e for e in backend_container(objects)["env"] if e["name"] == "API_KEY")
    assert secret["valueFrom"]["secretKeyRef"]["key"] == "API_KEY"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_and_probes_match_the_backend(overlay: str) -> None:
    from app.core.config import Settings
    from app.main import create_app
    from fastapi.testclient import TestClient

    objects = build(overlay)
    env = settings_env(objects)
    container = backend_container(objects)
    port = int(env["PORT"])
    assert env["HOST"] == "0.0.0.0"  # reachable from the Service, not only inside the pod
    # The image's CMD pins --port; the pod must let PORT decide.
    assert container["command"] == ["python", "-m", "app"]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    # The app's routes, asked without loading a model (no lifespan): anything but 404 exists.
    app = TestClient(create_app(Settings()))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/health" and app.get(get["path"]).status_code != 404, probe
        assert get["port"] == "http", probe
    pod = find(objects, "Deployment", "backend")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert app.get(pod["metadata"]["annotations"]["prometheus.io/path"]).status_code == 200
    service = find(objects, "Service", "backend")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    # The web image's nginx.conf proxies to backend:PORT.
    nginx_conf = (DEPLOY_DIR / "nginx.conf").read_text()
    assert f"server backend:{service['spec']['ports'][0]['port']} " in nginx_conf


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_grace_covers_the_backends_drain(overlay: str) -> None:
    """SIGTERM comes after preStop; the backend then drains for SHUTDOWN_GRACE_S. The kubelet must
    not kill it before that ends, nor wait pointlessly long."""
    objects = build(overlay)
    pod = find(objects, "Deployment", "backend")["spec"]["template"]["spec"]
    pre_stop = backend_container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(settings_env(objects)["SHUTDOWN_GRACE_S"])
    needed = float(pre_stop[1]) + drain
    assert needed < pod["terminationGracePeriodSeconds"] <= needed + 15
    # Liveness must not restart a draining pod (/health is 503 while it drains).
    live = backend_container(objects)["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > drain


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_models_volume_is_filled_by_prepare_models_and_read_by_the_backend(overlay: str) -> None:
    from app import prepare_models

    objects = build(overlay)
    claim = find(objects, "PersistentVolumeClaim", "localchat-models")["metadata"]["name"]
    job = find(objects, "Job", "prepare-models")["spec"]["template"]["spec"]
    (prep,) = job["containers"]
    assert prep["command"][:3] == ["python", "-m", "app.prepare_models"]
    models_dir = prep["command"][prep["command"].index("--models-dir") + 1]
    assert {"name": "models", "mountPath": models_dir} in prep["volumeMounts"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": claim}} in job["volumes"]
    backend_mount = next(m for m in backend_container(objects)["volumeMounts"] if m["name"] == "models")
    env = settings_env(objects)
    assert env["CHAT_MODEL_PATH"] == f"{backend_mount['mountPath']}/{prepare_models.CHAT_FOLDER}"
    assert env["EMBEDDING_MODEL_PATH"] == f"{backend_mount['mountPath']}/{prepare_models.EMBEDDING_FOLDER}"
    # The Job's image is the Dockerfile stage that has the weight packages installed.
    assert re.search(r"^FROM \S+ AS model-prep$", (REPO / "backend" / "Dockerfile").read_text(), re.M)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_reads_the_queue_depth_the_backend_exports(overlay: str) -> None:
    import prometheus_client
    from app.core import metrics  # noqa: F401  (registers the backend's metrics)

    exported = prometheus_client.generate_latest().decode()
    hpa = find(build(overlay), "HorizontalPodAutoscaler", "backend")["spec"]
    pods = [m["pods"]["metric"]["name"] for m in hpa["metrics"] if m["type"] == "Pods"]
    assert pods == ["llm_waiting_requests"]
    assert "# TYPE llm_waiting_requests gauge" in exported
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"}
    assert hpa["minReplicas"] >= 2  # with the PDB, a drain never leaves no replica


def test_overlays_pick_their_device() -> None:
    cpu, gpu = build("cpu"), build("gpu")
    assert settings_env(cpu)["DEVICE"] == "cpu"
    cpu_res = backend_container(cpu)["resources"]
    assert int(settings_env(cpu)["NUM_THREADS"]) == int(cpu_res["requests"]["cpu"])
    assert settings_env(gpu)["DEVICE"] == "cuda"
    gpu_res = backend_container(gpu)["resources"]
    assert gpu_res["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in str(cpu_res)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_ingress_streams_and_routes_by_conversation(overlay: str) -> None:
    objects = build(overlay)
    api = find(objects, "Ingress", "api")
    notes = api["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert "$http_x_conversation_id" in notes["nginx.ingress.kubernetes.io/upstream-hash-by"]
    # The same header as the page sends and the Nginx site hashes on.
    client = (REPO / "frontend" / "src" / "api" / "client.ts").read_text()
    assert "'X-Conversation-Id'" in client
    assert "hash $http_x_conversation_id consistent;" in (DEPLOY_DIR / "nginx.conf").read_text()
    from app.core.config import Settings

    body_limit = notes["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(body_limit.rstrip("m")) * 1024 * 1024 > Settings().max_request_bytes
    routes = {
        p["path"]: p["backend"]["service"]
        for i in (api, find(objects, "Ingress", "web"))
        for p in i["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes["/v1"]["name"] == "backend" and routes["/health"]["name"] == "backend"
    assert routes["/"]["name"] == "web"
    for service in routes.values():
        ports = find(objects, "Service", service["name"])["spec"]["ports"]
        assert service["port"]["name"] in {p["name"] for p in ports}


def test_the_team_overlay_runs_postgres_that_the_backend_reaches() -> None:
    objects = build("cpu-postgres")
    assert settings_env(objects)["AUTH"] == "password"
    # The backend's URL and PostgreSQL's password come from one Secret; the URL's host and port
    # in the component's instructions are its Service's.
    url = next(e for e in backend_container(objects)["env"] if e["name"] == "DATABASE_URL")
    secret = {"name": "localchat-database", "key": "DATABASE_URL", "optional": True}
    assert url["valueFrom"]["secretKeyRef"] == secret
    (db,) = find(objects, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"]
    password = next(e for e in db["env"] if e["name"] == "POSTGRES_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == "localchat-database"
    service = find(objects, "Service", "postgres")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in db["ports"]}
    component = (K8S / "components" / "postgres" / "kustomization.yaml").read_text()
    hosts = re.findall(r"DATABASE_URL=postgresql://\S+@([\w.-]+):(\d+)/", component)
    assert hosts == [(service["metadata"]["name"], str(port["port"]))]
    # Its data outlives the pod.
    claim = find(objects, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]
    assert {m["name"] for m in db["volumeMounts"]} == {claim["metadata"]["name"]}
    # Without the component, the backend takes an external URL from the same optional Secret.
    plain = next(e for e in backend_container(build("cpu"))["env"] if e["name"] == "DATABASE_URL")
    assert plain == url
