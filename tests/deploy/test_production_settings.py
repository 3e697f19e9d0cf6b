"""commsplatform.settings.production refuses unsafe configuration; optional secrets from Vault.

Settings are read once per process, so each case starts a fresh `manage.py` with the
production settings module and the environment under test.
"""

import json
import secrets
import subprocess
import sys

import pytest

from commsplatform.settings.vault import load_vault_into_environ, read_kv2_secret
from tests.deploy.conftest import production_environment
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.django_db(transaction=True)

PRINT_SETTINGS = (
    "from django.conf import settings; import json; print(json.dumps({"
    "'secret_key': settings.SECRET_KEY, 'debug': settings.DEBUG, 'hosts': settings.ALLOWED_HOSTS,"
    "'hsts': settings.SECURE_HSTS_SECONDS, 'ssl_redirect': settings.SECURE_SSL_REDIRECT,"
    "'session_secure': settings.SESSION_COOKIE_SECURE, 'csrf_secure': settings.CSRF_COOKIE_SECURE,"
    "'proxy_header': settings.SECURE_PROXY_SSL_HEADER, 'log_formatter': settings.LOGGING['handlers']['console']['formatter'],"
    "'redis_url': settings.REDIS_URL}))"
)


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def production_settings(env: dict[str, str]) -> dict:
    result = manage("shell", "-c", PRINT_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_pass_djangos_deployment_security_checks():
    result = manage("check", "--deploy", "--tag", "security", "--fail-level", "WARNING", env=production_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_are_secure_behind_a_tls_proxy_with_json_logs():
    env = production_environment({"DJANGO_ALLOWED_HOSTS": "comms.example.com"})

    values = production_settings(env)

    assert values["secret_key"] == env["DJANGO_SECRET_KEY"]
    assert values["debug"] is False
    assert values["hosts"] == ["comms.example.com"]
    assert values["hsts"] == 31_536_000
    assert values["ssl_redirect"] is True
    assert values["session_secure"] is True
    assert values["csrf_secure"] is True
    assert values["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["log_formatter"] == "json"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY must be set in production"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY must be set in production"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY must be set in production"),
        ({"DJANGO_SECRET_KEY": "local-insecure-key-never-used-in-production"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off in production"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off in production"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS must name the host"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS must name the host"),
        ({"DATABASE_URL": None}, "DATABASE_URL must be set in production"),
    ],
)
def test_production_settings_refuse_to_start(change, message):
    env = production_environment()
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value

    result = manage("check", env=env)

    assert result.returncode == 1
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_the_web_entrypoint_refuses_to_start_without_a_secret_key():
    env = production_environment()
    del env["DJANGO_SECRET_KEY"]

    result = subprocess.run(
        [str(REPO_ROOT / "docker" / "entrypoint.sh"), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


# --- Vault (a fake of its KV v2 HTTP API: Vault itself cannot be installed here) ----------
def test_secrets_missing_from_the_environment_are_read_from_vault(fake_vault):
    key_in_vault = secrets.token_urlsafe(50)
    fake_vault.secrets["secret/commsplatform"] = {"DJANGO_SECRET_KEY": key_in_vault, "REDIS_URL": "redis://vault:1/0"}
    env = production_environment({"VAULT_ADDR": fake_vault.addr, "VAULT_TOKEN": fake_vault.token})
    del env["DJANGO_SECRET_KEY"]
    explicit_redis_url = env["REDIS_URL"]

    values = production_settings(env)

    assert values["secret_key"] == key_in_vault
    assert values["redis_url"] == explicit_redis_url  # the environment wins over Vault
    assert fake_vault.requests == [("/v1/secret/data/commsplatform", fake_vault.token)]


def test_vault_mount_and_path_are_configurable(fake_vault):
    fake_vault.secrets["kv/apps/comms/prod"] = {"DJANGO_SECRET_KEY": "p" * 40, "EXTRA": "1"}
    environ = {"VAULT_ADDR": fake_vault.addr, "VAULT_TOKEN": fake_vault.token, "DJANGO_SECRET_KEY": ""}
    environ |= {"VAULT_KV_MOUNT": "kv", "VAULT_SECRET_PATH": "apps/comms/prod"}

    filled = load_vault_into_environ(environ)

    assert sorted(filled) == ["DJANGO_SECRET_KEY", "EXTRA"]
    assert environ["DJANGO_SECRET_KEY"] == "p" * 40
    assert environ["EXTRA"] == "1"


def test_without_vault_variables_nothing_is_read(fake_vault):
    environ = {"VAULT_ADDR": fake_vault.addr}

    filled = load_vault_into_environ(environ)

    assert filled == []
    assert fake_vault.requests == []


@pytest.mark.parametrize(
    ("token", "path", "message"),
    [
        ("wrong-token", "commsplatform", "Vault refused to read secret/commsplatform: HTTP 403"),
        (None, "missing", "Vault refused to read secret/missing: HTTP 404"),
    ],
)
def test_a_refused_vault_read_stops_the_start_up(fake_vault, token, path, message):
    fake_vault.secrets["secret/commsplatform"] = {"DJANGO_SECRET_KEY": "v" * 40}
    env = production_environment(
        {"VAULT_ADDR": fake_vault.addr, "VAULT_TOKEN": token or fake_vault.token, "VAULT_SECRET_PATH": path}
    )

    result = manage("check", env=env)

    assert result.returncode == 1
    assert message in result.stderr


def test_an_unreachable_vault_stops_the_start_up(fake_vault):
    address = fake_vault.addr
    fake_vault.close()

    with pytest.raises(Exception, match=f"Vault at {address} is unreachable"):
        read_kv2_secret(address, "token", "commsplatform", timeout=2)
