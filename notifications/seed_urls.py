from django.urls import path

from .apis import SeedEventPublishApi

# Seed 001's route. Anything else under /event/ falls through to the JSON 404.
urlpatterns = [
    path("event", SeedEventPublishApi.as_view(), name="seed-event"),
]
