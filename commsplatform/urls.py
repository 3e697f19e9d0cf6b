from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from workers.apis import StreamListApi

from . import errors
from .metrics import metrics_view
from .views import ApiRootApi, healthz, readyz

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("streams/", StreamListApi.as_view(), name="streams"),
    path("events/", include(("notifications.urls", "events"))),
    path("orders/", include(("orders.urls", "orders"))),
    path("products/", include(("inventory.urls", "products"))),
    path("accounts/", include(("accounts.urls", "accounts"))),
    path("users/", include(("users.urls", "users"))),
    path("campaigns/", include(("campaigns.urls", "campaigns"))),
    path("batteries/", include(("telemetry.urls", "batteries"))),
    path("weather/", include(("weather.urls", "weather"))),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include(api_v1)),
    # Seed-compatible routes.
    path("", include("notifications.seed_urls")),
    path("", include("orders.seed_urls")),
    path("", include("users.seed_urls")),
    path("", include("campaigns.seed_urls")),
    path("", include("weather.seed_urls")),
    # Anything else is a JSON 404, also with DEBUG on (the admin keeps its own pages).
    re_path(r"^(?!admin/|static/).*$", errors.json_404),
]

handler400 = errors.json_400
handler403 = errors.json_403
handler404 = errors.json_404
handler500 = errors.json_500
