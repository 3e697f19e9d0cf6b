"""Programs from Debian packages that some tests drive as real servers.

`make test` runs scripts/system-packages.sh first, which installs what is missing when it
can. A test that needs one calls `require_program`: the program's path, or a skip that
says what to install. Under CI=true it never skips: a missing program fails the test.
"""

from __future__ import annotations

import os
import shutil

import pytest

PACKAGE_OF = {
    "chromium": "chromium",
    "nginx": "nginx",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "smtp-sink": "postfix",
    "wrk": "wrk",
    "redis-server": "redis-server",
    "kubectl": "kubectl",
    "smtp-source": "postfix",
}


def find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")


def require_program(name: str) -> str:
    """The path of `name`; skip (fail under CI=true) when it is not installed."""
    path = find_program(name)
    if path:
        return path
    message = f"{name} is not installed: apt-get install {PACKAGE_OF.get(name, name)}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
