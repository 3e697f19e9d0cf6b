"""The endpoints file of `make run`: how a command in a second terminal finds its servers.

`make run` (commsplatform.devstack) starts Redis, the Kafka broker and the SMTP sink on
free ports. Once they are up it writes their addresses and the web URL to
var/devstack.json (atomically, readable by its owner only) and removes the file when it
stops; `commsplatform.settings.base` takes from it what the environment does not set, so
`python manage.py …` reaches the same servers with nothing to copy by hand. A file left
by a `make run` that died (its pid is gone) is ignored. DEVSTACK_ENDPOINTS_FILE moves the
file; set to an empty value, nothing is written or read (the production settings and the
test suite do that). Standard library only: the settings import it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "DEVSTACK_ENDPOINTS_FILE"
# What the file may carry; each is the environment variable of the same name.
KEYS = (
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SESSION_TIMEOUT_MS",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "DATABASE_URL",
    "API_URL",
)


def endpoints_path(base_dir: Path) -> Path | None:
    """Where the file is (`<base_dir>/var/devstack.json` by default); None when turned off."""
    configured = os.environ.get(ENV_VAR)
    if configured is None:
        return base_dir / "var" / "devstack.json"
    return Path(configured) if configured else None


def endpoints_write(path: Path, endpoints: Mapping[str, str]) -> None:
    """Replace the file in one step, so a reader sees the old one or the whole new one."""
    content = json.dumps({"pid": os.getpid(), **{key: endpoints[key] for key in KEYS if endpoints.get(key)}})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600: URLs may hold passwords
    try:
        with os.fdopen(fd, "w") as file:
            file.write(content + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def endpoints_remove(path: Path) -> None:
    """Remove the file if it is this process's (a later `make run` may have replaced it)."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def endpoints_read(path: Path | None) -> dict[str, str]:
    """The endpoints of the `make run` that is running; {} without one (or turned off)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not _process_alive(data.get("pid")):
        return {}
    return {key: str(data[key]) for key in KEYS if data.get(key)}


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
