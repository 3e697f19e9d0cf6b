"""One JSON error shape for every API failure: {"status", "title", "description"}.

The seed's event producer answered bad requests with exactly these three fields; every
endpoint here uses them (plus "errors" with per-field messages when a serializer failed),
so clients parse one shape.
"""

from http import HTTPStatus
from typing import Any

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ServiceUnavailable(exceptions.APIException):
    """A dependency (Redis, the broker) is unreachable; the client should retry later."""

    status_code = 503
    default_detail = "A backing service is temporarily unavailable; retry later."
    default_code = "service_unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5):
        super().__init__(detail)
        self.retry_after = retry_after


class Conflict(exceptions.APIException):
    """The resource's state does not allow the request (e.g. an illegal campaign transition)."""

    status_code = 409
    default_detail = "The request conflicts with the resource's current state."
    default_code = "conflict"


def error_body(status: int, description: str, errors: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "title": HTTPStatus(status).phrase, "description": description}
    if errors is not None:
        body["errors"] = errors
    return body


def _describe(detail: Any) -> str:
    """Flatten DRF's nested error detail into one readable sentence."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _describe(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_describe(item) for item in detail)
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    errors = detail if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict) else None
    if isinstance(exc, exceptions.ParseError):
        description = f"The request body is not valid JSON: {exc.detail}"
    else:
        description = _describe(detail.get("detail", detail) if isinstance(detail, dict) else detail)
    response.data = error_body(response.status_code, description, errors)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = str(exc.retry_after)
    return response


def rendered_api_error(exc: Exception) -> HttpResponse:
    """The DRF path's answer to `exc` (api_exception_handler's JSON error shape), rendered,
    for hot paths that answer without DRF (`POST /event`, `POST /order`)."""
    response = api_exception_handler(exc, {})
    if response is None:  # the handler answers every APIException
        raise RuntimeError(f"no response for {exc!r}")
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}  # type: ignore[attr-defined]
    return response.render()


@csrf_exempt  # a 404 changes nothing; "CSRF cookie not set" only misled token callers
def json_404(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body(404, f"No resource at {request.path}."), status=404)


def json_500(request) -> JsonResponse:
    return JsonResponse(error_body(500, "Internal error; it has been logged."), status=500)


def json_400(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body(400, "Bad request."), status=400)


def json_403(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body(403, "Forbidden."), status=403)


def csrf_failure(request, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: a refused session-authenticated write gets the JSON shape, not Django's HTML page."""
    return JsonResponse(error_body(403, f"CSRF verification failed: {reason}"), status=403)
