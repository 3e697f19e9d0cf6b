from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from .api import url_routes
from .health import run_checks

API_V1 = "api/v1/"


@require_GET
def healthz(request) -> JsonResponse:
    """Liveness: the process serves requests (plus the apps' own liveness checks)."""
    ok, checks = run_checks(settings.LIVENESS_CHECKS)
    return JsonResponse({"status": "ok" if ok else "failing", "checks": checks}, status=200 if ok else 503)


@require_GET
def readyz(request) -> JsonResponse:
    """Readiness: the database answers, Redis answers and takes writes; "degraded" (still
    200) when a check wants attention, e.g. Redis lost its data."""
    ok, checks = run_checks(settings.READINESS_CHECKS)
    degraded = any(check.get("degraded") for check in checks.values())
    status = "not-ready" if not ok else "degraded" if degraded else "ready"
    return JsonResponse({"status": status, "checks": checks}, status=200 if ok else 503)


class ApiRootApi(APIView):
    """Links to every /api/v1/ collection and every seed route, read from the URL conf
    (a new route appears by itself). Routes with parameters are shown as URI templates."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        links = {
            "schema": reverse("schema", request=request),
            "docs": reverse("swagger-ui", request=request),
        }
        seed = {}
        base = request.build_absolute_uri("/")  # + the path as is: `{recipient_id}` unquoted
        for route in url_routes():
            url = base + route.path
            if route.name.startswith("seed-"):  # the seed routes' names (*/seed_urls.py)
                seed[route.path] = url
            elif route.path.startswith(API_V1) and route.path != API_V1 and not route.parameters:
                links.setdefault(route.path.removeprefix(API_V1).rstrip("/"), url)
        return Response({**links, "seed": seed})
