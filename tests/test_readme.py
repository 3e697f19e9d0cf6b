"""The README's "Calling the API" block, run as a newcomer runs it.

`make run`'s entry point starts from a clean copy of this checkout (no var/, PORT a free
port); the test reads the token from its banner and the web URL from the endpoints file
it writes, then runs every line of the block in order: curl lines through an HTTP client
(the options the README uses, nothing else), `python manage.py …` lines as commands in
an environment that names no server, as a second terminal would. Each must succeed (2xx,
exit 0). A line of another kind fails the test, so a new example is covered or noticed.
The big commands run smaller, by the explicit tables below.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from commsplatform.devservers import free_port
from tests.helpers import REPO_ROOT, wait_until

# README command → what the test runs instead: the same command, smaller.
SCALED = {
    "python manage.py seed_users --count 100000": "python manage.py seed_users --count 100",
    "python manage.py simulate_events --rate 50 --duration 30": "python manage.py simulate_events --rate 20 --duration 2",
    "python manage.py loadtest weather --mode concurrent --count 200 --concurrency 16": (
        "python manage.py loadtest weather --mode concurrent --count 20 --concurrency 4"
    ),
    "python manage.py simulate_telemetry --count 10000 --batteries 100 --rate 2000": (
        "python manage.py simulate_telemetry --count 300 --batteries 100 --rate 2000"
    ),
}
# make run's environment, scaled the same way: `user/generate` adds 100 users, not 100,000,
# and the ~200 mails of a campaign leave at 5/s, so that campaign 1 is still sending when
# its cancel comes, as the README's 200,000 are.
DEVSTACK_SCALE = {"USERS_GENERATE_COUNT": "100", "EMAIL_RATE_LIMIT_PER_S": "5"}
# What some lines' comments promise beyond a 2xx: README line fragment → check of the JSON answer.
PROMISES: dict[str, Callable[[Any], bool]] = {
    '"send": false': lambda answer: (answer["id"], answer["status"], answer["sent"]) == (1, "draft", 0),
    "/campaigns/1/send/": lambda answer: answer["status"] in ("queued", "sending"),
    "/campaigns/1/retry-failed/": lambda answer: answer == {"retried": 0},
    "/campaigns/1/cancel/": lambda answer: answer["status"] == "cancelled",
    "/api/v1/campaign/create": lambda answer: answer["id"] == 2,
    "/campaigns/2/cancel/": lambda answer: answer["status"] == "cancelled",
    "/api/v1/email/send": lambda answer: answer is True,
}
# Reads whose answer appears once a worker has caught up (the battery after the ingest).
EVENTUALLY_S = 30.0
# What a person's shell does not have: every address comes from make run's endpoints file.
NOT_IN_A_NEW_TERMINAL = ("DJANGO_", "DATABASE_", "REDIS_", "KAFKA_", "EMAIL_", "DEVSTACK_")
NOT_IN_A_NEW_TERMINAL_NAMES = ("API_URL", "API_TOKEN", "LOADTEST_TOKEN", "PORT")
COPY_IGNORES = (".git", ".venv", "var", "staticfiles", "__pycache__", "*.pyc", ".*_cache", "node_modules")


def new_terminal_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(NOT_IN_A_NEW_TERMINAL) and name not in NOT_IN_A_NEW_TERMINAL_NAMES
    }


@dataclass
class Devstack:
    checkout: Path
    port: int
    process: subprocess.Popen
    log: Path
    token: str
    endpoints: dict[str, Any]

    @property
    def endpoints_file(self) -> Path:
        return self.checkout / "var" / "devstack.json"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def devstack(tmp_path: Path) -> Iterator[Devstack]:
    """`make run` (python -m commsplatform.devstack) from a clean copy of this checkout."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT, checkout, ignore=shutil.ignore_patterns(*COPY_IGNORES))
    port = free_port()
    log = tmp_path / "devstack.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "commsplatform.devstack"],
            cwd=checkout,
            env={**new_terminal_environment(), "PORT": str(port), **DEVSTACK_SCALE},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "commsplatform is up" in log.read_text() or process.poll() is not None, timeout=120)
        banner = log.read_text()
        assert process.poll() is None, f"make run exited with {process.returncode}:\n{banner}"
        token = re.search(r"API token\s+(\w+)", banner)
        assert token, banner
        endpoints = json.loads((checkout / "var" / "devstack.json").read_text())
        yield Devstack(checkout, port, process, log, token.group(1), endpoints)
    finally:
        if process.poll() is None:  # the test failed before it stopped make run
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def readme_api_lines() -> list[str]:
    """The "Calling the API" code block as shell lines (continuations joined)."""
    section = (REPO_ROOT / "README.md").read_text().split("\n## Calling the API\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "no ```sh block in the README's Calling the API section"
    return [line for line in block.group(1).replace("\\\n", " ").splitlines() if line.split("#", 1)[0].strip()]


def shell_commands(line: str) -> list[list[str]]:
    """A line's `;`-separated commands as words, comments dropped (shlex: no expansion)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word == ";":
            commands.append([])
        else:
            commands[-1].append(word)
    return [words for words in commands if words]


def expand(word: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"README uses ${name}, which the block does not set"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, word)


def curl(words: list[str]) -> requests.Response:
    """The curl options the README uses; any other fails the test."""
    method, url, data = None, None, None
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    args = iter(words[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg == "-d":
            data = next(args)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")  # as curl sends it
        elif arg.startswith("-") or url is not None:
            pytest.fail(f"curl argument the test does not know: {arg!r} in {shlex.join(words)}")
        else:
            url = arg
    assert url, shlex.join(words)
    method = method or ("POST" if data is not None else "GET")
    deadline = time.monotonic() + (EVENTUALLY_S if method == "GET" else 0)
    while True:
        response = requests.request(method, url, headers=headers, data=data, timeout=60)
        if response.ok or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def manage(words: list[str], checkout: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *words[1:]],
        cwd=checkout,
        env=new_terminal_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_example_of_calling_the_api_works_against_make_run(devstack: Devstack):
    # given: make run is up, on its own port, and says where in var/devstack.json
    assert devstack.endpoints["API_URL"] == f"http://127.0.0.1:{devstack.port}"
    assert {"REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "EMAIL_HOST", "EMAIL_PORT"} <= devstack.endpoints.keys()
    variables: dict[str, str] = {}
    scaled_used, promises_kept = set(), set()

    # when / then: every line, in order
    for line in readme_api_lines():
        for words in shell_commands(line):
            if all(re.fullmatch(r"[A-Za-z_]\w*=.*", word, re.DOTALL) for word in words):
                for word in words:
                    name, _, value = word.partition("=")
                    variables[name] = expand(value, variables)
                # The README's placeholders: the token make run printed, the URL it serves.
                if "H" in variables:
                    variables["H"] = variables["H"].replace("<key>", devstack.token)
                if "B" in variables:
                    variables["B"] = devstack.endpoints["API_URL"]
                continue
            command = shlex.join(words)
            if command in SCALED:
                scaled_used.add(command)
                words = shlex.split(SCALED[command])
            words = [expand(word, variables) for word in words]
            if words[0] == "curl":
                response = curl(words)
                assert response.ok, f"{command}\n→ {response.status_code} {response.text[:2000]}"
                for fragment, promise in PROMISES.items():
                    if fragment in line:
                        promises_kept.add(fragment)
                        assert promise(response.json()), f"{line}\n→ {response.text[:2000]}"
            elif words[:2] == ["python", "manage.py"]:
                result = manage(words, devstack.checkout)
                assert result.returncode == 0, f"{command}\n→ exit {result.returncode}\n{result.stdout}{result.stderr}"
            else:
                pytest.fail(f"a README line the test does not know how to run: {line}")

    # then: the tables still match the README
    assert scaled_used == SCALED.keys()
    assert promises_kept == PROMISES.keys()

    # and Ctrl-C's twin stops everything and takes the endpoints file away
    devstack.process.send_signal(signal.SIGTERM)
    assert devstack.process.wait(60) == 0, devstack.output()[-5000:]
    assert not devstack.endpoints_file.exists()
