from django.urls import path

from .apis import SeedEmailSendApi, SeedEventPublishApi

# Seed 001's route. Anything else under /event/ falls through to the JSON 404.
urlpatterns = [
    path("event", SeedEventPublishApi.as_view(), name="seed-event"),
    # Seed 002's email-service route.
    path("api/v1/email/send", SeedEmailSendApi.as_view(), name="seed-email-send"),
]
