from django.urls import path

from .apis import ForecastCreateApi

urlpatterns = [
    path("forecasts/", ForecastCreateApi.as_view(), name="forecast-create"),
]
