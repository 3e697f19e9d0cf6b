"""docker/k8s: both overlays rendered by kubectl kustomize, validated offline, scanned, and run.

The static tests read the rendered objects; the last ones run the containers' commands,
arguments and environment, as the manifests give them, against the test's PostgreSQL,
Redis and SMTP (only addresses, ports and the heartbeat directory are the test's own).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import requests
import yaml
from django.conf import settings
from django.core.management import call_command
from jsonschema import Draft7Validator

from commsplatform.devservers import NginxServer, free_port
from notifications.models import NotificationMessage
from tests.deploy.conftest import EntrypointProcess
from tests.helpers import REPO_ROOT, subprocess_environment, wait_until
from tests.sysdeps import require_program
from workers import k8s_manifests
from workers.k8s_manifests import worker_names
from workers.registry import CONSUMERS, EXTERNAL_CONSUMERS, all_names

K8S = REPO_ROOT / "docker" / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.32.0"  # the kubectl here; the bundled schemas of kubernetes-validate
KEDA_SCHEMA = Path(__file__).parent / "schemas" / "keda-v2.20.2-scaledobject-v1alpha1.json"
IMAGE_ROOT = "/app/"  # WORKDIR of docker/Dockerfile: the repository here


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [require_program("kubectl"), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered(overlay) if doc["kind"] == kind}


def pod_templates(overlay: str) -> dict[str, dict[str, Any]]:
    workloads = {**objects(overlay, "Deployment"), **objects(overlay, "Job")}
    return {name: doc["spec"]["template"]["spec"] for name, doc in workloads.items()}


def container(overlay: str, deployment: str, name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_templates(overlay)[deployment]["containers"] if c["name"] == name]
    return found


def undeclared_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Fields a CRD's structural schema does not declare (the API server would prune them silently)."""
    if isinstance(value, dict) and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        found = [f"{path}.{key}" for key in value if key not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                found += undeclared_fields(schema["properties"][key], item, f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [f for i, item in enumerate(value) for f in undeclared_fields(schema["items"], item, f"{path}[{i}]")]
    return []


def keda_errors(scaled_object: dict[str, Any]) -> list[str]:
    schema = json.loads(KEDA_SCHEMA.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(schema).iter_errors(scaled_object)]
    return errors + [f"{field}: not in the CRD" for field in undeclared_fields(schema, scaled_object)]


# --- rendering and schemas ----------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_and_every_object_validates_against_its_schema(overlay):
    errors = []
    for doc in rendered(overlay):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith("keda.sh/"):
            errors += [f"{name}: {error}" for error in keda_errors(doc)]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {exc.message}")

    assert errors == []
    assert {doc["metadata"].get("namespace") for doc in rendered(overlay) if doc["kind"] != "Namespace"} == {
        {"dev": "commsplatform-dev", "production": "commsplatform"}[overlay]
    }


def test_the_validators_reject_a_misspelt_field():
    deployment = json.loads(json.dumps(objects("production", "Deployment")["web"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    scaled_object = json.loads(json.dumps(objects("production", "ScaledObject")["worker-notifications"]))
    scaled_object["spec"]["minReplicaCont"] = 1
    scaled_object["spec"]["maxReplicaCount"] = "ten"

    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    assert keda_errors(scaled_object) == [
        "['spec', 'maxReplicaCount']: 'ten' is not of type 'integer'",
        ".spec.minReplicaCont: not in the CRD",
    ]


def test_the_image_comes_from_the_overlays_images_and_the_proxy_is_the_official_nginx():
    for overlay, image in [("dev", "commsplatform:dev"), ("production", "registry.example.com/commsplatform:1.0.0")]:
        images = {c["image"] for spec in pod_templates(overlay).values() for c in spec["containers"]}
        images |= {c["image"] for spec in pod_templates(overlay).values() for c in spec.get("initContainers", [])}
        assert images == {image, "nginx:1.28.0-alpine"}, overlay


# --- the registry is the one table -------------------------------------------------------
def test_the_committed_consumer_manifests_are_the_generated_ones():
    call_command("k8s_manifests", "--check")  # raises CommandError when a file is stale or left over

    assert k8s_manifests.stale() == []
    assert (K8S / "base" / "nginx.conf.template").read_text() == (
        REPO_ROOT / "docker" / "nginx.conf.template"
    ).read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_registered_consumer_has_a_deployment_and_every_worker_deployment_a_consumer(overlay):
    workers = {name: doc for name, doc in objects(overlay, "Deployment").items() if name.startswith("worker-")}

    assert sorted(workers) == sorted(f"worker-{name}" for name in worker_names())
    for name in workers:
        assert container(overlay, name, "worker")["args"] == ["worker", name.removeprefix("worker-")]
    assert set(objects(overlay, "Deployment")) - set(workers) == {"web", "relay"}
    assert sorted([*worker_names(), "relay"]) == sorted(all_names())  # the relay: base/relay.yaml
    assert set(objects(overlay, "Job")) == {"migrate"}


def test_every_stream_consumer_and_the_kafka_ingest_scale_on_their_lag_in_production():
    scaled = objects("production", "ScaledObject")

    assert sorted(scaled) == sorted(f"worker-{name}" for name in [*CONSUMERS, "kafka-ingest"])
    assert set(EXTERNAL_CONSUMERS) - {"kafka-ingest"} - k8s_manifests.OWN_MANIFEST == k8s_manifests.FIXED
    for name, spec in CONSUMERS.items():
        scaled_object = scaled[f"worker-{name}"]["spec"]
        (trigger,) = scaled_object["triggers"]
        assert scaled_object["scaleTargetRef"]["name"] == f"worker-{name}"
        assert trigger["type"] == "redis-streams"
        assert (trigger["metadata"]["stream"], trigger["metadata"]["consumerGroup"]) == (
            spec.stream_name,
            spec.group_name,
        )
        # lag, not pending (pending never wakes a consumer from zero); the group exists because one replica runs
        assert int(trigger["metadata"]["lagCount"]) >= 1
        assert "pendingEntriesCount" not in trigger["metadata"]
        assert scaled_object["minReplicaCount"] >= 1
    notifications = scaled["worker-notifications"]["spec"]["triggers"][0]["metadata"]
    assert (notifications["stream"], notifications["consumerGroup"]) == ("NotificationStream", "demo_consumer_group")
    kafka = scaled["worker-kafka-ingest"]["spec"]
    assert kafka["triggers"][0]["type"] == "kafka"
    assert kafka["triggers"][0]["metadata"]["lagThreshold"] == str(settings.KAFKA_INGEST_BATCH_SIZE * 5)
    assert kafka["triggers"][0]["metadata"]["offsetResetPolicy"] == "earliest"
    assert kafka["maxReplicaCount"] == k8s_manifests.KAFKA_PARTITIONS


def test_keda_reads_the_redis_address_password_and_kafka_settings_the_target_container_gets():
    config = objects("production", "ConfigMap")
    (config_map,) = [doc for name, doc in config.items() if name == "commsplatform-config"]
    secret_keys = set(yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())["stringData"])
    for scaled_object in objects("production", "ScaledObject").values():
        target = container("production", scaled_object["spec"]["scaleTargetRef"]["name"], "worker")
        assert scaled_object["spec"]["scaleTargetRef"]["envSourceContainerName"] == "worker"
        assert target["envFrom"] == [
            {"configMapRef": {"name": "commsplatform-config"}},
            {"secretRef": {"name": "commsplatform-secrets"}},
        ]
        for key, value in scaled_object["spec"]["triggers"][0]["metadata"].items():
            if key.endswith("FromEnv"):
                assert value in set(config_map["data"]) | secret_keys, (key, value)


def test_dev_runs_one_replica_of_each_without_autoscaling_and_production_autoscales_web_on_cpu():
    dev_kinds = {doc["kind"] for doc in rendered("dev")}
    web_hpa = objects("production", "HorizontalPodAutoscaler")["web"]["spec"]

    assert {doc["spec"].get("replicas", 1) for doc in objects("dev", "Deployment").values()} == {1}
    assert not dev_kinds & {"HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget", "NetworkPolicy"}
    assert web_hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert web_hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert web_hpa["minReplicas"] >= 2
    # autoscaled Deployments leave `replicas` to the autoscaler (an apply would reset it)
    autoscaled = {"web"} | {
        doc["spec"]["scaleTargetRef"]["name"] for doc in objects("production", "ScaledObject").values()
    }
    assert [name for name in autoscaled if "replicas" in objects("production", "Deployment")[name]["spec"]] == []
    assert objects("production", "Deployment")["relay"]["spec"]["replicas"] == 2


def test_every_production_deployment_has_a_disruption_budget_selecting_its_pods():
    budgets = objects("production", "PodDisruptionBudget")

    assert sorted(budgets) == sorted(objects("production", "Deployment"))
    for name, budget in budgets.items():
        labels = objects("production", "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert budget["spec"]["maxUnavailable"] == 1


# --- probes, shutdown, security -----------------------------------------------------------
def test_web_probes_readiness_on_readyz_liveness_on_healthz_with_an_allowed_host():
    web = container("production", "web", "web")
    allowed = objects("production", "ConfigMap")["commsplatform-config"]["data"]["DJANGO_ALLOWED_HOSTS"].split(",")

    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in web[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed
        assert web[probe]["httpGet"]["port"] == "gunicorn"
    assert container("production", "web", "nginx")["readinessProbe"]["httpGet"]["path"] == "/nginx-healthz"


def test_every_worker_liveness_probe_is_its_own_heartbeat_check_as_in_compose():
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text())["services"]

    for name in worker_names():
        worker = container("production", f"worker-{name}", "worker")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert worker[probe]["exec"]["command"] == ["/app/docker/entrypoint.sh", "health", "worker", name]
        assert ["CMD", *worker["livenessProbe"]["exec"]["command"]] == compose[f"worker-{name}"]["healthcheck"]["test"]
    relay = container("production", "relay", "relay")
    assert relay["livenessProbe"]["exec"]["command"] == ["/app/docker/entrypoint.sh", "health", "relay"]


def test_grace_periods_outlast_the_batch_and_the_request_drain():
    pods = pod_templates("production")
    gunicorn = {"__file__": "gunicorn.conf.py"}
    exec(compile((REPO_ROOT / "docker" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), gunicorn)  # noqa: S102 (our own config file, read as gunicorn does)
    pre_stop = container("production", "web", "web")["lifecycle"]["preStop"]["exec"]["command"]
    email_worst_case = settings.EMAIL_TIMEOUT * math.ceil(settings.EMAIL_BATCH_SIZE / settings.EMAIL_SEND_CHUNK)

    assert pre_stop[0] == "sleep"
    assert pods["web"]["terminationGracePeriodSeconds"] > int(pre_stop[1]) + gunicorn["graceful_timeout"]
    for name in worker_names():
        assert pods[f"worker-{name}"]["terminationGracePeriodSeconds"] > settings.WEATHER_REPLY_TIMEOUT_S, name
    assert pods["worker-email-sender"]["terminationGracePeriodSeconds"] > email_worst_case


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_restricted_with_limits_and_writable_paths_on_empty_dirs(overlay):
    for name, pod in pod_templates(overlay).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{name}/{c['name']}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}, where
            assert c["securityContext"].get("runAsUser", pod["securityContext"].get("runAsUser")) >= 10000, where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) & set(c["resources"]["limits"]), where
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in empty_dirs, where
    for name in worker_names():
        mounts = {m["mountPath"]: m["name"] for m in container(overlay, f"worker-{name}", "worker")["volumeMounts"]}
        assert mounts["/tmp/heartbeat"] in {v["name"] for v in pod_templates(overlay)[f"worker-{name}"]["volumes"]}


def test_network_policies_let_only_the_ingress_controller_reach_web_and_the_pods_reach_only_their_backends():
    policies = objects("production", "NetworkPolicy")
    nginx_port = container("production", "web", "nginx")["ports"][0]["containerPort"]
    web_ingress = policies["web-ingress"]["spec"]["ingress"]
    egress = policies["app-egress"]["spec"]

    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert web_ingress[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert web_ingress[0]["ports"] == [{"protocol": "TCP", "port": nginx_port}]
    assert web_ingress[1]["ports"] == [{"protocol": "TCP", "port": 8000}]  # /metrics, from `monitoring` only
    assert egress["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "commsplatform"}
    assert {p["port"] for rule in egress["egress"] for p in rule["ports"]} == {53, 5432, 6379, 25, 465, 587, 9092}
    for name in pod_templates("production"):
        labels = objects("production", "Deployment").get(name, objects("production", "Job").get(name))
        assert labels["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "commsplatform", name


def test_the_secret_is_a_template_never_applied_and_the_config_map_holds_no_secret():
    template = yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())
    config = objects("production", "ConfigMap")["commsplatform-config"]["data"]
    referenced = set(
        re.findall(r"\$\((\w+)\)", json.dumps([dict(pod) for pod in pod_templates("production").values()]))
    )

    assert [doc for overlay in OVERLAYS for doc in rendered(overlay) if doc["kind"] == "Secret"] == []
    assert set(template["stringData"].values()) == {""}
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_PASSWORD"} <= set(template["stringData"])
    assert referenced <= set(config) | set(template["stringData"])
    assert [key for key in config if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$|DATABASE_URL", key)] == []


def test_checkov_finds_no_failed_check_in_the_production_manifests(tmp_path):
    manifest = tmp_path / "production.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered("production")))
    checkov = Path(sys.executable).parent / "checkov"

    result = subprocess.run(
        [str(checkov), "-f", str(manifest), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] > 1000
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == {"CKV_K8S_43", "CKV_K8S_35"}
    for doc in rendered("production"):
        for key, value in doc["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert check in skipped and len(reason.split()) >= 5, value
    assert result.returncode == 0


# --- the containers' commands, run outside Kubernetes ---------------------------------------
def container_environment(c: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """The variables the kubelet gives the container: envFrom (ConfigMap, Secret), then env with $(VAR).

    `overrides` are the ConfigMap's and Secret's values for this test (addresses, ports).
    """
    config = dict(objects("production", "ConfigMap")["commsplatform-config"]["data"])
    secret = dict.fromkeys(yaml.safe_load((K8S / "base" / "secret.template.yaml").read_text())["stringData"], "")
    secret["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    config.update({k: v for k, v in overrides.items() if k not in secret})
    secret.update({k: v for k, v in overrides.items() if k in secret})
    sources = {"commsplatform-config": config, "commsplatform-secrets": secret}
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        ref = source.get("configMapRef") or source["secretRef"]
        env.update(sources[ref["name"]])
    for var in c.get("env", []):
        if "valueFrom" in var:
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = sources[ref["name"]][ref["key"]]
        else:  # the kubelet's expansion: $(VAR) of a defined variable, $$ for a literal $
            env[var["name"]] = re.sub(
                r"\$\$|\$\((\w+)\)",
                lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                var["value"],
            )
    image_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` is the venv's
    return {**subprocess_environment(), "PATH": image_path, **env}


def test_servers_overrides() -> dict[str, str]:
    """The ConfigMap and Secret values that point the containers at this test's servers."""
    redis_url = urlsplit(settings.REDIS_URL)
    assert redis_url.path in ("", "/0"), "the manifests use database 0"
    base = subprocess_environment()
    return {
        "REDIS_SCHEME": redis_url.scheme,
        "REDIS_ADDRESS": redis_url.netloc.rpartition("@")[2],
        "REDIS_PASSWORD": redis_url.password or "",
        "DATABASE_URL": base["DATABASE_URL"],
        "EMAIL_HOST": base["EMAIL_HOST"],
        "EMAIL_PORT": base["EMAIL_PORT"],
        "EMAIL_USE_TLS": "false",
        "KAFKA_BOOTSTRAP_SERVERS": base["KAFKA_BOOTSTRAP_SERVERS"],
        "DJANGO_ALLOWED_HOSTS": "comms.example.com,web",
    }


test_servers_overrides.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def argv(c: dict[str, Any]) -> list[str]:
    """command + args as the runtime runs them: the image's ENTRYPOINT when `command` is not given."""
    words = [*(c.get("command") or ["/app/docker/entrypoint.sh"]), *c.get("args", [])]
    return [w.replace(IMAGE_ROOT, f"{REPO_ROOT}/") for w in words]


def run(words: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(words, cwd="/", env=env, capture_output=True, text=True, timeout=timeout)


class PodProcess(EntrypointProcess):
    """A container's command line as the manifest gives it (EntrypointProcess runs entrypoint.sh + args)."""

    def __init__(self, words: list[str], env: dict[str, str]) -> None:
        entrypoint = f"{REPO_ROOT}/docker/entrypoint.sh"
        assert words[0] == entrypoint, shlex.join(words)
        super().__init__(tuple(words[1:]), env)


@pytest.mark.django_db(transaction=True)
def test_the_migrate_job_and_the_wait_for_migrations_init_container_exit_0():
    job = pod_templates("production")["migrate"]["containers"][0]
    init = pod_templates("production")["web"]["initContainers"][0]

    migrate = run(argv(job), container_environment(job, test_servers_overrides()))
    wait = run(argv(init), container_environment(init, test_servers_overrides()), timeout=60)

    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "No migrations to apply." in migrate.stdout
    assert wait.returncode == 0, wait.stdout + wait.stderr


@pytest.mark.django_db(transaction=True)
def test_the_web_pod_serves_and_its_probes_answer_through_gunicorn_and_the_nginx_sidecar(tmp_path):
    # given: gunicorn with the web container's command and environment (its port and static root the test's)
    web, nginx = container("production", "web", "web"), container("production", "web", "nginx")
    port = free_port()
    env = container_environment(web, test_servers_overrides()) | {
        "PORT": str(port),
        "DJANGO_STATIC_ROOT": str(tmp_path),
    }
    assert run([f"{REPO_ROOT}/docker/entrypoint.sh", "manage", "collectstatic", "--noinput"], env).returncode == 0
    gunicorn = PodProcess(argv(web), env)
    nginx_env = container_environment(nginx, {})
    try:
        wait_until(lambda: not gunicorn.running or _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60)
        # and: the sidecar's template rendered with the sidecar's body limit, upstream the pod's gunicorn
        assert nginx_env["WEB_UPSTREAM"] == f"127.0.0.1:{web['ports'][0]['containerPort']}"
        with NginxServer(
            require_program("nginx"),
            upstream=f"127.0.0.1:{port}",
            max_body_size=int(nginx_env["DATA_UPLOAD_MAX_MEMORY_SIZE"]),
            data_dir=tmp_path / "nginx",
        ) as proxy:
            # when: the kubelet's probes (path and headers from the manifest), and a request through the proxy
            answers = {}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = web[probe]["httpGet"]
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                answers[probe] = requests.get(f"http://127.0.0.1:{port}{get['path']}", headers=headers, timeout=10)
            nginx_probe = requests.get(
                f"http://127.0.0.1:{proxy.port}{nginx['readinessProbe']['httpGet']['path']}", timeout=10
            )
            https = {"Host": "comms.example.com", "X-Forwarded-Proto": "https"}
            through_proxy = requests.get(f"http://127.0.0.1:{proxy.port}/readyz", headers=https, timeout=10)
    finally:
        gunicorn.stop()
        output = gunicorn.output()
        gunicorn.close()

    # then
    assert {probe: r.status_code for probe, r in answers.items()} == dict.fromkeys(answers, 200), output[-3000:]
    assert answers["readinessProbe"].json()["status"] == "ready"
    assert nginx_probe.status_code == 200
    assert through_proxy.status_code == 200
    assert through_proxy.json()["status"] == "ready"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, headers={"Host": "web"}, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.django_db(transaction=True)
def test_a_worker_pod_consumes_and_its_liveness_command_fails_after_kill_9(api_client, tmp_path):
    # given: the notifications worker as its Deployment runs it; its heartbeat emptyDir is tmp_path
    # (the test shortens the heartbeat's max age from the ConfigMap's 60 s to 2 s)
    worker = container("production", "worker-notifications", "worker")
    overrides = test_servers_overrides() | {"WORKER_HEARTBEAT_DIR": str(tmp_path), "WORKER_HEARTBEAT_MAX_AGE_S": "2"}
    env = container_environment(worker, overrides) | {"WORKER_BLOCK_MS": "200"}
    liveness = argv(worker["livenessProbe"]["exec"])
    process = PodProcess(argv(worker), env)
    try:
        # when: an event is posted, then the worker is killed with SIGKILL
        response = api_client.post("/event", {"description": "through the k8s manifest"}, format="json")
        event_id = response.json()["id"]
        wait_until(lambda: NotificationMessage.objects.filter(message_id=event_id).exists(), timeout=30)
        healthy = wait_until(lambda: (r := run(liveness, env)).returncode == 0 and r, timeout=30)
        process.kill()
        unhealthy = wait_until(lambda: (r := run(liveness, env)).returncode == 1 and r, timeout=30)
    finally:
        process.stop()
        print(process.output()[-3000:])
        process.close()

    # then
    assert "ok: notifications" in healthy.stdout
    assert "heartbeat is" in unhealthy.stderr
