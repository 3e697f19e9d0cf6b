"""The project's routes plus the baselines the benchmarks compare against."""

import json
import time

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from commsplatform.urls import urlpatterns as project_urlpatterns
from workers.connection import get_redis


@csrf_exempt
def raw_xadd(request):
    """The least Django can do for POST /event: parse, XADD, answer. No DRF, no auth."""
    description = json.loads(request.body)["description"]
    payload = {"id": time.time_ns(), "description": description, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    entry_id = get_redis().xadd("NotificationStream", {"payload": json.dumps(payload)})
    return JsonResponse({**payload, "stream_id": entry_id})


urlpatterns = [path("bench/raw-xadd", raw_xadd), *project_urlpatterns]
