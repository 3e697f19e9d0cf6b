"""Token authentication with a short per-process cache.

DRF's TokenAuthentication costs one database query per request; on the ingest path
(`POST /event`) that query is most of the work. Here a successful lookup is remembered
for API_TOKEN_CACHE_S seconds (default 30) in the process. A deleted token or a
deactivated user is therefore refused by every process within that time; the process
that deletes the token forgets it at once.
"""

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[tuple, float]] = {}
_lock = threading.Lock()


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        hit = _cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        result = super().authenticate_credentials(key)
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (result, now + settings.API_TOKEN_CACHE_S)
        return result


def forget_tokens(**kwargs) -> None:
    with _lock:
        _cache.clear()


post_delete.connect(forget_tokens, sender=Token, dispatch_uid="forget_tokens_on_delete")
post_save.connect(forget_tokens, sender=settings.AUTH_USER_MODEL, dispatch_uid="forget_tokens_on_user_save")
