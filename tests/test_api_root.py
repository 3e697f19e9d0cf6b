"""/api/v1/: every collection and every seed route, read from the URL conf."""

import pytest
from django.urls import include, path
from rest_framework.views import APIView

import commsplatform.urls

pytestmark = pytest.mark.django_db


class _GadgetListApi(APIView):
    pass


# A URL conf with one more /api/v1/ collection and one more seed route than the real one.
urlpatterns = [
    path("api/v1/gadgets/", include(([path("", _GadgetListApi.as_view(), name="list")], "gadgets"))),
    path("gadget", _GadgetListApi.as_view(), name="seed-gadget"),
    *commsplatform.urls.urlpatterns,
]


def test_api_root_lists_every_collection_and_seed_route(anon_client):
    response = anon_client.get("/api/v1/")
    assert response.status_code == 200
    base = "http://testserver/"
    assert response.json() == {
        "schema": base + "api/schema/",
        "docs": base + "api/docs/",
        "streams": base + "api/v1/streams/",
        "consumers": base + "api/v1/consumers/",
        "events": base + "api/v1/events/",
        "orders": base + "api/v1/orders/",
        "products": base + "api/v1/products/",
        "accounts": base + "api/v1/accounts/",
        "users": base + "api/v1/users/",
        "campaigns": base + "api/v1/campaigns/",
        "batteries": base + "api/v1/batteries/",
        "weather/forecasts": base + "api/v1/weather/forecasts/",
        "suppressions": base + "api/v1/suppressions/",
        "bounces": base + "api/v1/bounces/",
        "seed": {
            "event": base + "event",
            "api/v1/email/send": base + "api/v1/email/send",
            "order": base + "order",
            "report": base + "report",
            "init-data": base + "init-data",
            "api/v1/user/generate": base + "api/v1/user/generate",
            "api/v1/user/{recipient_id}": base + "api/v1/user/{recipient_id}",
            "api/v1/campaign/create": base + "api/v1/campaign/create",
            "WeatherForecast": base + "WeatherForecast",
            "WeatherForecast/city": base + "WeatherForecast/city",
            "WeatherForecast/health": base + "WeatherForecast/health",
            "WeatherForecast/status": base + "WeatherForecast/status",
        },
    }


def test_a_new_route_appears_in_the_api_root(anon_client, settings):
    # given a URL conf with a new collection and a new seed route
    settings.ROOT_URLCONF = __name__
    # when the root is read
    body = anon_client.get("/api/v1/").json()
    # then both are listed
    assert body["gadgets"] == "http://testserver/api/v1/gadgets/"
    assert body["seed"]["gadget"] == "http://testserver/gadget"
