"""No secret is committed: every tracked file is grepped for keys, tokens and passwords."""

import re
import subprocess

from tests.helpers import REPO_ROOT

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "Stripe key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in a URL": re.compile(r"\b(?:redis|rediss|postgres|postgresql|amqp|mysql)://[^:/\s@]*:([^@\s${}<]{4,})@"),
    "assigned secret": re.compile(
        r"""(?i)\b\w*(?:secret_key|password|passwd|api_key|apikey|token)\w*\s*[:=]\s*["']([^"'\s]{12,})["']"""
    ),
}
# Values that look like secrets but are the documented local default and the tests' fake passwords.
ALLOWED = {"local-insecure-key-never-used-in-production", "s3cret", "s3cret%2F%21", "old-password"}
SKIP_SUFFIXES = (".lock", ".svg", ".png", ".jpg", ".ico", ".woff", ".woff2")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and not name.endswith(SKIP_SUFFIXES)]


def find_secrets(text: str) -> list[tuple[str, str]]:
    hits = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if value not in ALLOWED:
                hits.append((kind, match.group(0)[:60]))
    return hits


def test_the_patterns_catch_planted_secrets():
    planted = "\n".join(
        [
            # split, so that this file does not match itself
            "-----BEGIN RSA " + "PRIVATE KEY-----",
            "aws = 'AKIA" + "IOSFODNN7EXAMPLE'",
            "REDIS_URL=redis://:s3cr3t-" + "pass@redis:6379/0",
            "DJANGO_SECRET_KEY = " + '"k8#2mf0-9vjw!q1z7x"',
            "token: ghp_" + "a" * 36,
        ]
    )
    assert {kind for kind, _ in find_secrets(planted)} == {
        "private key",
        "AWS access key",
        "password in a URL",
        "assigned secret",
        "GitHub token",
    }


def test_no_secret_in_the_repository():
    hits = []
    for name in tracked_files():
        path = REPO_ROOT / name
        if not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        hits += [(name, kind, sample) for kind, sample in find_secrets(text)]
    assert hits == []
