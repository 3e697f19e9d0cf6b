from django.urls import path

from .apis import SeedInitDataApi, SeedOrderPlaceApi, SeedReportApi

# Seed 004's gateway routes.
urlpatterns = [
    path("order", SeedOrderPlaceApi.as_view(), name="seed-order"),
    path("report", SeedReportApi.as_view(), name="seed-report"),
    path("init-data", SeedInitDataApi.as_view(), name="seed-init-data"),
]
