from django.contrib import admin
from django.urls import Resolver404, URLPattern, URLResolver, include, path, re_path
from django.urls.resolvers import ResolverMatch, RoutePattern
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from notifications.apis import UnsubscribePageApi
from workers import urls as workers_urls
from workers.apis import StreamListApi

from . import errors
from .metrics import metrics_view
from .views import ApiRootApi, healthz, readyz


class OptionalTrailingSlashResolver(URLResolver):
    """Routes that also answer without their trailing slash (`POST /api/v1/users` is
    `POST /api/v1/users/`), served in place: a redirect would lose a POST's body, and the
    JSON 404 catch-all refused a token caller's POST with "CSRF cookie not set". The
    routes, their names and the OpenAPI schema keep the one form with the slash."""

    def resolve(self, path: str) -> ResolverMatch:
        try:
            return super().resolve(path)
        except Resolver404:
            if path.endswith("/"):
                raise
            return super().resolve(path + "/")


api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("streams/", StreamListApi.as_view(), name="streams"),
    path("streams/<str:stream>/dead-letters/", include((workers_urls.dead_letter_patterns, "dead-letters"))),
    path("consumers/", include((workers_urls.consumer_patterns, "consumers"))),
    path("events/", include(("notifications.urls", "events"))),
    path("orders/", include(("orders.urls", "orders"))),
    path("products/", include(("inventory.urls", "products"))),
    path("accounts/", include(("accounts.urls", "accounts"))),
    path("users/", include(("users.urls", "users"))),
    path("campaigns/", include(("campaigns.urls", "campaigns"))),
    path("batteries/", include(("telemetry.urls", "batteries"))),
    path("weather/", include(("weather.urls", "weather"))),
    path("", include("notifications.consent_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    OptionalTrailingSlashResolver(RoutePattern("api/v1/"), api_v1),
    # The unsubscribe link in every campaign mail (public, signed token).
    path("u/<str:token>", UnsubscribePageApi.as_view(), name="unsubscribe-page"),
    # Seed-compatible routes.
    path("", include("notifications.seed_urls")),
    path("", include("orders.seed_urls")),
    path("", include("users.seed_urls")),
    path("", include("campaigns.seed_urls")),
    path("", include("weather.seed_urls")),
    # Anything else is a JSON 404 (CSRF-exempt: it changes nothing), also with DEBUG on
    # (the admin keeps its own pages).
    re_path(r"^(?!admin/|static/).*$", errors.json_404),
]

handler400 = errors.json_400
handler403 = errors.json_403
handler404 = errors.json_404
handler500 = errors.json_500
