"""`python -m commsplatform.devstack`, what `make run` runs: the whole platform on one machine.

Refuses at once if PORT (8000) is taken. Starts whatever backing service the
environment does not name (Redis unless REDIS_URL, a Kafka-compatible broker unless
KAFKA_BOOTSTRAP_SERVERS, an SMTP sink unless EMAIL_HOST), migrates the database (SQLite
in ./var unless DATABASE_URL), ensures the admin login, starts nginx on PORT in front of
gunicorn on an internal port (the shipped docker/nginx.conf.template; without an nginx
binary gunicorn serves PORT itself), then supervises web (gunicorn), the workers and the
outbox relay with honcho. Ctrl-C or SIGTERM stops the processes first, then the servers
they use.
While it runs, var/devstack.json tells `manage.py` in another terminal where the servers
are (commsplatform/devstack_endpoints.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from honcho.manager import Manager

from commsplatform.devservers import (
    KafkaBroker,
    NginxServer,
    RedisServer,
    ServerStartError,
    SmtpSinkProcess,
    free_port,
    port_is_open,
)
from commsplatform.devstack_endpoints import endpoints_path, endpoints_remove, endpoints_write

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var"
PYTHON = sys.executable


def _exit_on_sigterm(signum: int, frame: object) -> NoReturn:
    # Until honcho takes over the signals: unwind, so the ExitStack stops the servers.
    raise SystemExit(128 + signum)


def _start_servers(servers: ExitStack, env: dict[str, str]) -> dict[str, str]:
    """Start the missing backing services, export their addresses in `env`, describe them."""
    described: dict[str, str] = {}
    if env.get("REDIS_URL"):
        described["Redis"] = f"{_without_password(env['REDIS_URL'])} (from REDIS_URL)"
    else:
        redis = servers.enter_context(RedisServer(appendonly=True, data_dir=VAR / "redis"))
        env["REDIS_URL"] = redis.url
        described["Redis"] = f"{redis.url} (embedded, AOF in var/redis)"
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        described["Kafka"] = f"{env['KAFKA_BOOTSTRAP_SERVERS']} (from KAFKA_BOOTSTRAP_SERVERS)"
    else:
        kafka = servers.enter_context(KafkaBroker(data_dir=VAR / "kafka"))
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
        # Tansu makes a group join last half the session timeout (KafkaBroker).
        env.setdefault("KAFKA_SESSION_TIMEOUT_MS", str(kafka.consumer_session_timeout_ms))
        # The ingest subscribes at once; without the topic it logs UNKNOWN_TOPIC_OR_PART
        # until the first message (the default is settings.KAFKA_TOPIC's).
        kafka.create_topic(env.get("KAFKA_TOPIC", "battery-telemetry"), partitions=4)
        described["Kafka"] = f"{kafka.bootstrap} (embedded Tansu, in memory)"
    if env.get("EMAIL_HOST"):
        described["SMTP"] = f"{env['EMAIL_HOST']}:{env.get('EMAIL_PORT', '25')} (from EMAIL_HOST)"
    else:
        smtp = servers.enter_context(SmtpSinkProcess(maildir=VAR / "mail", data_dir=VAR / "smtp"))
        env["EMAIL_HOST"], env["EMAIL_PORT"] = smtp.host, str(smtp.port)
        described["SMTP"] = f"{smtp.host}:{smtp.port} (sink: mail in var/mail, log var/smtp/smtp.log)"
    database = env.get("DATABASE_URL")
    described["Database"] = _without_password(database) if database else "SQLite var/db.sqlite3"
    return described


def _port_taken(host: str, port: int) -> bool:
    # Bound, not connected to: also catches a server listening on another address of the
    # port. SO_REUSEADDR as gunicorn and nginx set it, so a closing connection does not count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _start_proxy(servers: ExitStack, env: dict[str, str], port: int) -> str:
    """nginx on `port` in front of gunicorn on a free internal port (set in `env`); describe it."""
    host = env["BIND_HOST"]
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin")
    if nginx is None:
        return (
            f"gunicorn on {host}:{port} directly, no buffering proxy (slow clients can starve it): "
            "apt-get install nginx to run it behind nginx"
        )
    env["PORT"], env["BIND_HOST"] = str(free_port()), "127.0.0.1"
    env.setdefault("NUM_PROXIES", "1")  # the client address is the one nginx appends
    proxy = NginxServer(nginx, upstream=f"127.0.0.1:{env['PORT']}", port=port, host=host, data_dir=VAR / "nginx")
    if env.get("DATA_UPLOAD_MAX_MEMORY_SIZE"):
        proxy.max_body_size = int(env["DATA_UPLOAD_MAX_MEMORY_SIZE"])
    servers.enter_context(proxy)
    return f"nginx on {host}:{port} -> gunicorn 127.0.0.1:{env['PORT']} (config and log in var/nginx)"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _manage(*args: str, env: dict[str, str], capture: bool = False) -> str:
    """Run a management command to completion; return its stdout when `capture`."""
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        check=True,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return result.stdout or ""


def _banner(base_url: str, services: dict[str, str], admin: dict[str, str]) -> str:
    rows = {
        "API": f"{base_url}/api/v1/",
        "Swagger UI": f"{base_url}/api/docs/",
        "Admin": f"{base_url}/admin/",
        "Admin login": f"{admin['username']} / {admin['password']}",
        "API token": f"{admin['token']}  (Authorization: Token {admin['token']})",
        **services,
    }
    width = max(map(len, rows))
    lines = [f"  {name.ljust(width)}  {value}" for name, value in rows.items()]
    rule = "=" * 78
    return "\n".join([rule, "commsplatform is up", *lines, "Ctrl-C stops everything.", rule])


def _announce_when_web_answers(port: int, banner: str, stopped: threading.Event) -> None:
    # The banner goes out once gunicorn listens, so it is not buried under start-up logs.
    for _ in range(600):
        if stopped.is_set():
            return
        if port_is_open("127.0.0.1", port):
            break
        stopped.wait(0.1)
    else:
        print("web did not open its port within 60 s; see the web log above.", flush=True)
    print(banner, flush=True)


# The campaign pipeline runs in processes of its own: under one `runworker --all` the
# fan-out, the router and every sender thread shared one GIL with the other consumers.
CAMPAIGN_CONSUMERS = ["campaign-fanout", "notification-router", "email-retry"]
SENDER_CONSUMERS = ["email-sender"]


def worker_commands() -> dict[str, list[str]]:
    """The `runworker` processes of `make run` (bench.campaign_100k --devstack runs the same)."""
    manage = [PYTHON, "manage.py", "runworker"]
    exclude = [arg for name in [*CAMPAIGN_CONSUMERS, *SENDER_CONSUMERS, "relay"] for arg in ("--exclude", name)]
    return {
        "worker": [*manage, "--all", *exclude],
        "campaigns": [*manage, *CAMPAIGN_CONSUMERS],
        "sender": [*manage, *SENDER_CONSUMERS],
        "relay": [*manage, "relay"],  # a process of its own, as in compose
    }


def _processes(env: dict[str, str]) -> dict[str, str]:
    commands = {
        "web": [PYTHON, "-m", "gunicorn", "commsplatform.wsgi", "-c", "docker/gunicorn.conf.py"],
        **worker_commands(),
    }
    # honcho runs each through a shell; exec makes the real process the signal target.
    return {name: f"exec {shlex.join(argv)}" for name, argv in commands.items()}


def _publish_endpoints(servers: ExitStack, env: dict[str, str]) -> None:
    # Written once the servers answer; removed first on the way out, while they still run.
    path = endpoints_path(BASE_DIR)
    if path is not None:
        endpoints_write(path, env)
        servers.callback(endpoints_remove, path)


def main() -> int:
    """Run the stack until Ctrl-C/SIGTERM or until one process exits; return the exit code."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "commsplatform.settings.base")
    env.setdefault("PORT", "8000")
    env.setdefault("BIND_HOST", "127.0.0.1")
    env["PYTHONUNBUFFERED"] = "1"
    port = int(env["PORT"])
    if _port_taken(env["BIND_HOST"], port):
        print(
            f"devstack: port {port} is taken (something listens on {env['BIND_HOST']}:{port}); "
            "pick another: PORT=8080 make run",
            file=sys.stderr,
        )
        return 1

    VAR.mkdir(exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    with ExitStack() as servers:
        try:
            services = _start_servers(servers, env)
            _publish_endpoints(servers, {**env, "API_URL": base_url})
            _manage("migrate", "--noinput", env=env)
            admin = json.loads(_manage("ensure_admin", "--json", env=env, capture=True).strip().splitlines()[-1])
            services["Web"] = _start_proxy(servers, env, port)
        except ServerStartError as exc:
            print(f"devstack: {exc}", file=sys.stderr)
            return 1
        except subprocess.CalledProcessError as exc:
            print(f"devstack: {shlex.join(exc.cmd[1:])} failed (exit code {exc.returncode})", file=sys.stderr)
            return exc.returncode
        banner = _banner(base_url, services, admin)

        manager = Manager()
        for name, command in _processes(env).items():
            manager.add_process(name, command, env=env, cwd=str(BASE_DIR))
        stopped = threading.Event()
        announcer = threading.Thread(
            target=_announce_when_web_answers, args=(int(env["PORT"]), banner, stopped), daemon=True
        )
        announcer.start()
        try:
            manager.loop()
        finally:
            stopped.set()
        print("processes stopped; stopping the embedded servers", flush=True)
    # Stopped by a signal is how a dev stack normally ends, not a failure.
    return 0 if manager.returncode in (130, 143) else int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
