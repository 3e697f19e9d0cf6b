"""The pieces of a hot route's common case: answered without DRF's request wrapping,
content negotiation and serializers, with the same checks and the same answers.

A route's common case is a request that needs nothing but the ordinary: a token this
process verified within API_TOKEN_CACHE_S, the view's permissions granted, its throttles
allowing, a body the view's serializer would take unchanged. Anything else goes through
the DRF view, which gives the exact answer. `POST /event` (notifications.apis),
`POST /order` (orders.apis) and `POST /WeatherForecast/city` (weather.apis) have one;
each has a test that both paths answer alike.
"""

import functools
from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from .authentication import cached_token_user
from .errors import rendered_api_error as rendered_error


class CommonCaseView:
    """Mixin (before APIView in the bases) for a view whose POST has a common case: its
    `common_case(request)` answers first, and the DRF view answers whenever that gives None."""

    @classmethod
    def common_case(cls, request: Any) -> HttpResponse | None:
        raise NotImplementedError

    @classmethod
    def as_view(cls, **initkwargs):
        drf_view = super().as_view(**initkwargs)  # type: ignore[misc]

        @functools.wraps(drf_view)  # keeps .cls, .initkwargs and csrf_exempt for URL conf and schema
        def view(request, *args, **kwargs):
            if request.method == "POST":
                response = cls.common_case(request)
                if response is not None:
                    return response
            return drf_view(request, *args, **kwargs)

        return view


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
    return throttled_answer(refused) if refused else None


def throttled_answer(refused: list) -> HttpResponse:
    """DRF's answer when throttles refuse (APIView.check_throttles): the longest wait."""
    waits = [wait for wait in (throttle.wait() for throttle in refused) if wait is not None]
    return rendered_error(Throttled(wait=max(waits, default=None)))


def plain_json(request: Any) -> Any:
    """The body as JSON when the view's parser would read it the same way (no charset in
    Content-Type, valid JSON), else None; the caller takes only a dict of the shape it expects."""
    if request.encoding is not None:  # a charset in Content-Type: the parser decodes it
        return None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None


def rendered_json(data: object) -> bytes:
    """`data` as the DRF path's JSONRenderer writes it."""
    return _JSON.render(data)


_JSON = JSONRenderer()  # stateless: one for every request
