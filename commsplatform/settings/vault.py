"""Optional secrets from HashiCorp Vault (KV version 2), read once at start-up.

When VAULT_ADDR and VAULT_TOKEN are set, production settings read one KV v2 secret
(`VAULT_KV_MOUNT`, default "secret"; `VAULT_SECRET_PATH`, default "commsplatform") with
a plain HTTP GET, before any other setting is read. Each key of the secret is an
environment variable name (DJANGO_SECRET_KEY, DATABASE_URL, REDIS_URL, ...); a value
fills the variable when the environment leaves it unset or empty, so an explicit
environment variable still wins. Vault unreachable, a refused token or a missing
secret stops the start-up with ImproperlyConfigured: a process must not come up
without its secrets.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

import requests
from django.core.exceptions import ImproperlyConfigured


def read_kv2_secret(
    addr: str,
    token: str,
    path: str,
    *,
    mount: str = "secret",
    namespace: str = "",
    ca_cert: str = "",
    timeout: float = 5.0,
) -> dict[str, str]:
    """GET <addr>/v1/<mount>/data/<path> and return the secret's key/value pairs."""
    url = f"{addr.rstrip('/')}/v1/{mount.strip('/')}/data/{path.strip('/')}"
    headers = {"X-Vault-Token": token}
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    try:
        response = requests.get(url, headers=headers, timeout=timeout, verify=ca_cert or True)
    except requests.RequestException as exc:
        raise ImproperlyConfigured(f"Vault at {addr} is unreachable: {exc}") from None
    if response.status_code != 200:
        raise ImproperlyConfigured(f"Vault refused to read {mount}/{path}: HTTP {response.status_code}")
    try:
        data = response.json()["data"]["data"]
    except (ValueError, KeyError, TypeError):
        raise ImproperlyConfigured(f"Vault answered {mount}/{path} without a KV v2 secret") from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured(f"Vault secret {mount}/{path} is not a key/value map")
    return {str(key): str(value) for key, value in data.items()}


def load_vault_into_environ(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Fill unset/empty variables of `environ` from Vault; return the names filled.

    Does nothing (returns []) unless both VAULT_ADDR and VAULT_TOKEN are set.
    """
    addr, token = environ.get("VAULT_ADDR", ""), environ.get("VAULT_TOKEN", "")
    if not addr or not token:
        return []
    secret = read_kv2_secret(
        addr,
        token,
        environ.get("VAULT_SECRET_PATH", "commsplatform"),
        mount=environ.get("VAULT_KV_MOUNT", "secret"),
        namespace=environ.get("VAULT_NAMESPACE", ""),
        ca_cert=environ.get("VAULT_CACERT", ""),
        timeout=float(environ.get("VAULT_TIMEOUT_S", "5")),
    )
    filled = []
    for name, value in secret.items():
        if not environ.get(name):
            environ[name] = value
            filled.append(name)
    return filled
