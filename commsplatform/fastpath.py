"""Requests answered in front of Django's middleware chain, with the chain's own answer.

`POST /event` carries thousands of 200-byte events a second; for it the twelve
middlewares of settings.MIDDLEWARE cost more than the view (and so for the weather
request/reply, `POST /WeatherForecast/city`). `FastPaths` wraps the WSGI application: a
request to one of its paths is offered to the view's `common_case`
(commsplatform.common_case; notifications.apis.SeedEventPublishApi,
weather.apis.WeatherForecastCityApi) before the chain runs; when that answers, the
response gets exactly what the chain would have added, else the request goes through
the chain as if nothing had happened (its body put back).

What the chain does for such a request, and how it is kept here:
- The request phase can refuse or redirect: JsonErrorMiddleware (a query string, a body
  over DATA_UPLOAD_MAX_MEMORY_SIZE), SecurityMiddleware (the HTTPS redirect),
  CommonMiddleware (ALLOWED_HOSTS, DISALLOWED_USER_AGENTS, PREPEND_WWW). A request with
  a query string goes to the chain; the other two run here, their own process_request,
  and anything but "go on" sends the request to the chain, which answers it.
- Sessions, CSRF, messages, authentication, django-axes act only through cookies, the
  session or a login: a request with a Cookie header goes to the chain (a session caller
  must meet the CSRF check), and `common_case` authenticates only by a token this process
  has verified (the failed-token counter never sees it, as in the chain).
- WhiteNoise answers only paths under the static prefix (or WHITENOISE_ROOT's files):
  the fast paths are off if one of their paths could be a static file.
- The response phase adds headers: XFrameOptionsMiddleware (X-Frame-Options),
  CommonMiddleware (Content-Length), SecurityMiddleware (HSTS on https, nosniff,
  Referrer-Policy, Cross-Origin-Opener-Policy); their own process_response run here in
  the chain's order. JsonErrorMiddleware changes only non-JSON errors (these answers are
  JSON). RequestMetricsMiddleware's counter and histogram count the request
  (commsplatform.metrics.request_observe), and an error answer is logged by
  `django.request` as Django's handler logs it.
- The fast path uses no database, so the request_started/request_finished signals
  (which close a thread's stale database connections) are not sent.

The chain this was checked against is REVIEWED_MIDDLEWARE: with any other
settings.MIDDLEWARE (a middleware added, OpenTelemetry's Django instrumentation that
inserts its own when tracing is on) the fast paths are off and every request takes the
chain. tests/notifications/test_event_fast_path.py and tests/weather/test_city_fast_path.py
compare the two answers. A path's common case must use no database (no signals run).
"""

import io
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve
from django.utils.log import log_response

from .metrics import request_observe
from .middleware import _too_large

REVIEWED_MIDDLEWARE = (
    "commsplatform.metrics.RequestMetricsMiddleware",
    "commsplatform.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CommonCase = Callable[[HttpRequest], HttpResponse | None]


@dataclass(frozen=True)
class _Route:
    common_case: CommonCase
    label: str  # the route as RequestMetricsMiddleware labels it


def _not_called(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the middlewares' process_request/process_response are used")


class FastPaths:
    """The WSGI application, with `paths` (method, path) answered by their view's
    `common_case` when it can (see the module docstring)."""

    def __init__(self, app: WsgiApp, paths: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self._routes: dict[tuple[str, str], _Route] | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        if key in self.paths and "HTTP_COOKIE" not in environ and not environ.get("QUERY_STRING"):
            route = self.routes().get(key)
            if route is not None:
                answered = self._answer(route, environ, start_response)
                if answered is not None:
                    return answered
        return self.app(environ, start_response)

    def routes(self) -> dict[tuple[str, str], _Route]:
        """The fast paths in effect: none unless the chain is the reviewed one (read once,
        at the first request, after the settings and any instrumentation are in place)."""
        if self._routes is None:
            with self._lock:
                if self._routes is None:
                    self._routes = self._load_routes()
        return self._routes

    def _load_routes(self) -> dict[tuple[str, str], _Route]:
        if tuple(settings.MIDDLEWARE) != REVIEWED_MIDDLEWARE or getattr(settings, "WHITENOISE_ROOT", None):
            return {}
        self.security = SecurityMiddleware(_not_called)
        self.common = CommonMiddleware(_not_called)
        self.xframe = XFrameOptionsMiddleware(_not_called)
        static_prefix = "/" + urlsplit(settings.STATIC_URL or "").path.strip("/") + "/"
        routes = {}
        for method, path in self.paths:
            if path.startswith(static_prefix):
                continue
            try:
                match = resolve(path)
            except Resolver404:
                continue
            common_case = getattr(getattr(match.func, "cls", None), "common_case", None)
            if common_case is not None and match.url_name is not None:
                routes[(method, path)] = _Route(common_case=common_case, label=match.route)
        return routes

    def _answer(
        self, route: _Route, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        request = WSGIRequest(environ)
        started = time.perf_counter()
        answer = self._response(route, request)
        if answer is None:
            body = getattr(request, "_body", None)
            if body is not None:  # read by common_case: the chain reads it again
                environ["wsgi.input"] = io.BytesIO(body)
            return None
        # The response phase of the chain, innermost first, as the chain runs it.
        # (Each returns the response it was given: only a 404 could become a redirect.)
        response = cast(HttpResponse, self.xframe.process_response(request, answer))
        response = cast(HttpResponse, self.common.process_response(request, response))
        response = self.security.process_response(request, response)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        request_observe(request.method or "", route.label, response.status_code, started)
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())],
        )
        return [response.content]

    def _response(self, route: _Route, request: WSGIRequest) -> HttpResponse | None:
        try:
            if _too_large(request) is not None:
                return None
            if self.security.process_request(request) is not None:  # the HTTPS redirect
                return None
            if self.common.process_request(request) is not None:
                return None
            return route.common_case(request)
        except Exception:  # noqa: BLE001 (a bad host, a forbidden agent, an unexpected error: the chain answers)
            return None
