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
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from workers.publish import RateExceeded, RateWindow

from .authentication import cached_token_user
from .errors import rendered_api_error as rendered_error
from .throttling import SlidingWindowCounterMixin, counters_on_stream_redis


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


@dataclass(frozen=True)
class CountedThrottles:
    """A view's throttles whose counting rides with the request's XADD (one Lua script,
    workers.publish.publish_within_rates): each throttle with this request's window."""

    limited: list[tuple[SlidingWindowCounterMixin, RateWindow]]

    @property
    def windows(self) -> list[RateWindow]:
        return [window for _, window in self.limited]

    def refused(self, exceeded: RateExceeded) -> list:
        """The throttles that refused, given the counts the script found (for `wait()`)."""
        counted = zip(self.limited, exceeded.counts, strict=True)
        return [throttle for (throttle, _), count in counted if not throttle.settle(count)]


def counted_throttles(view_class: type[APIView], request: Any) -> CountedThrottles | None:
    """The view's throttles as windows to count with the request's XADD, when their counters
    live on the stream's Redis (commsplatform.throttling.counters_on_stream_redis): a
    throttle check and the write then cost one round trip. None: check them first
    (`throttled`). A refusal comes back as RateExceeded, nothing written; answer it with
    `throttled_answer(counted.refused(exceeded))`."""
    throttles = [throttle() for throttle in view_class.throttle_classes]
    counted = [t for t in throttles if isinstance(t, SlidingWindowCounterMixin)]
    if not counters_on_stream_redis() or len(counted) != len(throttles):
        return None
    view = view_class()
    limited: list[tuple[SlidingWindowCounterMixin, RateWindow]] = []
    for throttle in counted:
        window = throttle.rate_window(request, view)
        if window is not None:
            limited.append((throttle, window))
    return CountedThrottles(limited)


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
