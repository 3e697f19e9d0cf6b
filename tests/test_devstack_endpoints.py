"""`make run`'s endpoints file reaches the settings of a command in a second terminal.

Settings are read once per process, so each case starts a fresh `manage.py shell` with
the environment under test and the endpoints file written by the same code `make run`
uses (commsplatform.devstack_endpoints).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from commsplatform.devstack_endpoints import endpoints_write
from tests.helpers import REPO_ROOT

PRINT_SETTINGS = (
    "import json; from django.conf import settings; print(json.dumps({"
    "'REDIS_URL': settings.REDIS_URL, 'KAFKA_BOOTSTRAP_SERVERS': settings.KAFKA_BOOTSTRAP_SERVERS,"
    "'KAFKA_SESSION_TIMEOUT_MS': settings.KAFKA_SESSION_TIMEOUT_MS,"
    "'EMAIL_HOST': settings.EMAIL_HOST, 'EMAIL_PORT': settings.EMAIL_PORT, 'API_URL': settings.API_URL,"
    "'DATABASE_NAME': str(settings.DATABASES['default']['NAME']),"
    "'LOG_LEVEL': settings.LOGGING['root']['level']}))"
)
# Everything the endpoints file or a person's shell could name.
UNSET = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_PASS",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_BROKER",
    "KAFKA_SESSION_TIMEOUT_MS",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "API_URL",
    "LOG_LEVEL",
)
ENDPOINTS = {
    "REDIS_URL": "redis://127.0.0.1:41001/0",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:41002",
    "KAFKA_SESSION_TIMEOUT_MS": "4000",  # the embedded Tansu's (KafkaBroker)
    "EMAIL_HOST": "127.0.0.1",
    "EMAIL_PORT": "41003",
    "API_URL": "http://127.0.0.1:41004",
}


def settings_seen(endpoints_file: Path, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRINT_SETTINGS],
        cwd=REPO_ROOT,
        env={**base, "DEVSTACK_ENDPOINTS_FILE": str(endpoints_file), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_command_with_nothing_set_uses_the_servers_of_the_running_make_run(tmp_path):
    # given: the file of a live `make run` (this process stands in for it)
    endpoints_file = tmp_path / "devstack.json"
    endpoints_write(endpoints_file, {**ENDPOINTS, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})

    # when
    seen = settings_seen(endpoints_file)

    # then
    assert seen == {
        **ENDPOINTS,
        "EMAIL_PORT": 41003,
        "KAFKA_SESSION_TIMEOUT_MS": 4000,
        "DATABASE_NAME": str(tmp_path / "db.sqlite3"),
        "LOG_LEVEL": "INFO",
    }
    assert endpoints_file.stat().st_mode & 0o777 == 0o600


def test_the_environment_wins_over_the_endpoints_file(tmp_path):
    endpoints_file = tmp_path / "devstack.json"
    endpoints_write(endpoints_file, ENDPOINTS)

    seen = settings_seen(
        endpoints_file,
        KAFKA_BOOTSTRAP_SERVERS="kafka.example:9092",
        EMAIL_HOST="smtp.example",  # its port is the default, not the sink's
        API_URL="http://web.example",
        REDIS_HOST="redis.example",  # seed 000's variables beat the file too
    )

    assert seen["REDIS_URL"] == "redis://redis.example:6379/0"
    assert seen["KAFKA_BOOTSTRAP_SERVERS"] == "kafka.example:9092"
    assert seen["KAFKA_SESSION_TIMEOUT_MS"] == 6000  # the file's 4000 is for its own broker only
    assert (seen["EMAIL_HOST"], seen["EMAIL_PORT"]) == ("smtp.example", 2500)
    assert seen["API_URL"] == "http://web.example"


def test_a_file_left_by_a_make_run_that_died_is_ignored(tmp_path):
    # given: the file names a process that no longer exists
    endpoints_file = tmp_path / "devstack.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    endpoints_file.write_text(json.dumps({"pid": dead.pid, **ENDPOINTS}))

    seen = settings_seen(endpoints_file)

    assert seen["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert seen["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert (seen["EMAIL_HOST"], seen["EMAIL_PORT"]) == ("127.0.0.1", 2500)
    assert seen["API_URL"] == "http://127.0.0.1:8000"


def test_the_production_settings_never_read_the_endpoints_file(tmp_path):
    endpoints_file = tmp_path / "devstack.json"
    endpoints_write(endpoints_file, ENDPOINTS)

    seen = settings_seen(
        endpoints_file,
        DJANGO_SETTINGS_MODULE="commsplatform.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="comms.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )

    assert seen["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert seen["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert (seen["EMAIL_HOST"], seen["EMAIL_PORT"]) == ("127.0.0.1", 2500)
    assert seen["API_URL"] == "http://127.0.0.1:8000"


def test_a_lower_case_log_level_as_gunicorn_takes_it_starts_django(tmp_path):
    seen = settings_seen(tmp_path / "absent.json", LOG_LEVEL="warning")

    assert seen["LOG_LEVEL"] == "WARNING"
