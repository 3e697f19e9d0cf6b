from django.urls import path

from .apis import WeatherForecastCityApi, WeatherForecastSampleApi, WeatherHealthApi, WeatherStatusApi

# Seed 003's ingress routes, exactly.
urlpatterns = [
    path("WeatherForecast", WeatherForecastSampleApi.as_view(), name="seed-weather-samples"),
    path("WeatherForecast/city", WeatherForecastCityApi.as_view(), name="seed-weather-city"),
    path("WeatherForecast/health", WeatherHealthApi.as_view(), name="seed-weather-health"),
    path("WeatherForecast/status", WeatherStatusApi.as_view(), name="seed-weather-status"),
]
