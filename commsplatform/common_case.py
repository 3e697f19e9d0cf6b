"""The pieces of a hot route's common case: answered without DRF's request wrapping,
content negotiation and serializers, with the same checks and the same answers.

A route's common case is a request that needs nothing but the ordinary: a token this
process verified within API_TOKEN_CACHE_S, the view's permissions granted, its throttles
allowing, a body the view's serializer would take unchanged. Anything else goes through
the DRF view, which gives the exact answer. `POST /event` (notifications.apis) and
`POST /WeatherForecast/city` (weather.apis) have one; each has a test that both paths
answer alike.
"""

from typing import Any

from django.http import HttpResponse
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from .authentication import cached_token_user
from .errors import api_exception_handler


def cached_caller_permitted(view_class: type[APIView], request: Any) -> bool:
    """Whether the request's token is in this process's cache and its user holds the
    view's permissions; sets `request.user` and `request.auth` as DRF would. `request`
    is Django's HttpRequest, which the permission and throttle classes take as DRF's.
    False means "take the DRF path" (it authenticates and answers 401/403), never a refusal."""
    user_and_token = cached_token_user(request)
    if user_and_token is None:
        return False
    request.user, request.auth = user_and_token
    view = view_class()
    return all(permission().has_permission(request, view) for permission in view_class.permission_classes)


def throttled(view_class: type[APIView], request: Any) -> HttpResponse | None:
    """The DRF path's 429 when one of the view's throttles refuses, else None (counted)."""
    view = view_class()
    refused = [
        throttle for throttle in (t() for t in view_class.throttle_classes) if not throttle.allow_request(request, view)
    ]
    if not refused:
        return None
    waits = [wait for wait in (throttle.wait() for throttle in refused) if wait is not None]
    return rendered_error(Throttled(wait=max(waits, default=None)))


def rendered_json(data: object) -> bytes:
    """`data` as the DRF path's JSONRenderer writes it."""
    return JSONRenderer().render(data)


def rendered_error(exc: Exception) -> HttpResponse:
    """The DRF path's answer to `exc` (the project's exception handler and JSON error shape)."""
    response = api_exception_handler(exc, {})
    if response is None:  # the handler answers every APIException
        raise RuntimeError(f"no response for {exc!r}")
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}  # type: ignore[attr-defined]
    return response.render()
