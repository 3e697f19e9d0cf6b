"""Token authentication with a short per-process cache, and a limit on failed token checks.

DRF's TokenAuthentication costs one database query per request; on the ingest path
(`POST /event`) that query is most of the work. Here a successful lookup is remembered
for API_TOKEN_CACHE_S seconds (default 30) in the process. A deleted token, a
deactivated user or a change of the user's groups is therefore seen by every process
within that time; the process that makes the change forgets its cache at once.

Guessing tokens: DRF authenticates before it throttles, and a refused token raises before
any throttle runs, so the rate limits never see failed checks. Here every refused token
counts against the client's address (a Redis counter per client, `client_ip`); once a
client has API_TOKEN_FAILURE_LIMIT failures within API_TOKEN_FAILURE_WINDOW_S seconds,
its requests with a token that this process has not already verified are refused with 429
and Retry-After, without looking the token up, until the window ends. A token already in
the cache is accepted without that check: a guess is never in it, and the ingest path
keeps its single round trip to Redis. Redis unreachable: the check is skipped (logged),
as the throttles do.
"""

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[tuple, float]] = {}
_lock = threading.Lock()


def client_ip(request: Any) -> str:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry NUM_PROXIES proxies back.

    The same identity DRF's throttles use (REST_FRAMEWORK["NUM_PROXIES"]); django-axes uses it too.
    """
    return BaseThrottle().get_ident(request)


def _failures_key(ident: str) -> str:
    return cache.make_key(f"authfail:{ident}")


class TokenGuessingLocked(Throttled):
    default_detail = "Too many failed token checks from this address."


def cached_token_user(request: HttpRequest) -> tuple | None:
    """(user, token) when the request's `Authorization: Token <key>` was verified by this
    process within API_TOKEN_CACHE_S, else None (the caller runs the full check then).

    For hot paths that answer without DRF (`POST /event`): a dictionary lookup, no query,
    no Redis; anything unusual about the header is a miss, never a refusal."""
    keyword, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if keyword.lower() != "token" or not key or " " in key:
        return None
    hit = _cache.get(key)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    return None


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if len(auth) != 2 or auth[0].lower() != self.keyword.lower().encode():
            return super().authenticate(request)  # no token, or DRF's own message for a malformed header
        try:
            key = auth[1].decode()
        except UnicodeError:
            return super().authenticate(request)
        hit = _cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        ident = client_ip(request)
        self._refuse_if_locked(ident)
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            self._count_failure(ident)
            raise

    def authenticate_credentials(self, key: str):
        result = super().authenticate_credentials(key)
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (result, time.monotonic() + settings.API_TOKEN_CACHE_S)
        return result

    @staticmethod
    def _refuse_if_locked(ident: str) -> None:
        try:
            client = get_redis_connection("default")
            pipe = client.pipeline(transaction=False)
            pipe.get(_failures_key(ident))
            pipe.ttl(_failures_key(ident))
            failures, ttl = pipe.execute()
        except RedisError as exc:
            logger.warning("failed token checks of %s not counted, Redis unavailable: %s", ident, exc)
            return
        if int(failures or 0) >= settings.API_TOKEN_FAILURE_LIMIT:
            raise TokenGuessingLocked(wait=max(int(ttl), 1))

    @staticmethod
    def _count_failure(ident: str) -> None:
        try:
            pipe = get_redis_connection("default").pipeline(transaction=False)
            pipe.incr(_failures_key(ident))
            pipe.expire(_failures_key(ident), int(settings.API_TOKEN_FAILURE_WINDOW_S), nx=True)
            pipe.execute()
        except RedisError as exc:
            logger.warning("failed token check of %s not counted, Redis unavailable: %s", ident, exc)
        logger.info("refused token from %s", ident)


def forget_tokens(**kwargs) -> None:
    with _lock:
        _cache.clear()


post_delete.connect(forget_tokens, sender=Token, dispatch_uid="forget_tokens_on_delete")
post_save.connect(forget_tokens, sender=settings.AUTH_USER_MODEL, dispatch_uid="forget_tokens_on_user_save")
# A cached user carries its permissions: a change of groups or of a group's permissions must show.
m2m_changed.connect(forget_tokens, sender=Group.permissions.through, dispatch_uid="forget_tokens_on_group_perms")


def _connect_user_groups() -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    m2m_changed.connect(forget_tokens, sender=user_model.groups.through, dispatch_uid="forget_tokens_on_user_groups")
    m2m_changed.connect(
        forget_tokens, sender=user_model.user_permissions.through, dispatch_uid="forget_tokens_on_user_perms"
    )


_connect_user_groups()


def login_lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the admin gets a page that says what happened; anything else the JSON error."""
    from axes.helpers import get_cool_off

    from .errors import error_body  # not at the top: DRF imports this module while rest_framework.views loads

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, round(seconds / 60))
    if request.path.startswith("/admin/"):
        response = render(
            request,
            "admin/login_locked.html",
            {"title": "Login locked", "minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
            status=429,
        )
    else:
        response = JsonResponse(
            error_body(429, f"Too many failed logins from this address; try again in {minutes} minutes."),
            status=429,
        )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
