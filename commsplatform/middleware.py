"""Every answer outside the admin is JSON, errors included, whatever DEBUG says.

- A body larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before anything
  reads it (Django raised RequestDataTooBig from `request.data`: a 400, and with DEBUG on
  its HTML debug page with the settings).
- A query parameter holding a control character is refused with 400, naming it:
  PostgreSQL cannot store NUL in text, so `?search=%00` was a 500 from psycopg.
- An error response that is not JSON (Django's technical 404/500 pages under DEBUG, a
  SuspiciousOperation's 400, a plain 405) becomes the project's JSON error shape.

The admin keeps its own pages.
"""

import logging
import re
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import error_body

HTML_ALLOWED = ("/admin/", "/static/")
# NUL, and the C0 controls and DEL that mean nothing in a query (tab and line breaks pass).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _json_error(status: int, description: str) -> JsonResponse:
    return JsonResponse(error_body(status, description), status=status)


def _too_large(request: HttpRequest) -> JsonResponse | None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # Django reads no body then
    if limit is None or length <= limit:
        return None
    return _json_error(413, f"The request body is {length} bytes; at most {limit} are accepted.")


def _bad_query_parameter(request: HttpRequest) -> JsonResponse | None:
    for name, values in request.GET.lists():
        for text in (name, *values):
            found = CONTROL_CHARACTER.search(text)
            if found:
                return _json_error(
                    400, f"Query parameter {name!r} contains the control character U+{ord(found.group()):04X}."
                )
    return None


def _description(status: int, request: HttpRequest) -> str:
    if status == 404:
        return f"No resource at {request.path}."
    if status >= 500:
        return "Internal error; it has been logged."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "The request failed."


def _is_json(response: HttpResponse) -> bool:
    media_type = response.get("Content-Type", "").split(";")[0].strip()
    return media_type == "application/json" or media_type.endswith("+json")


class JsonErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            refused = _bad_query_parameter(request)
        except SuspiciousOperation as exc:  # TooManyFieldsSent from parsing the query string
            return _json_error(400, str(exc))
        if refused is None and not request.path_info.startswith(HTML_ALLOWED):
            refused = _too_large(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if response.status_code >= 400 and not request.path_info.startswith(HTML_ALLOWED) and not _is_json(response):
            replaced = _json_error(response.status_code, _description(response.status_code, request))
            for header in KEPT_HEADERS:
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view (DRF's `request.data` too) raised a SuspiciousOperation: a JSON 413/400
        instead of Django's page. Anything else is left to Django, which logs it."""
        if request.path_info.startswith(HTML_ALLOWED) or not isinstance(exception, SuspiciousOperation):
            return None
        logging.getLogger(f"django.security.{exception.__class__.__name__}").warning(str(exception))
        if isinstance(exception, RequestDataTooBig):
            return _json_error(413, f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
        return _json_error(400, str(exception) or "Bad request.")
