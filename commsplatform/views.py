from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from .health import run_checks


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
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(
            {
                "schema": reverse("schema", request=request),
                "docs": reverse("swagger-ui", request=request),
                "events": reverse("events:list", request=request),
                "streams": reverse("streams", request=request),
            }
        )
