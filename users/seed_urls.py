from django.urls import path

from .apis import SeedRecipientDetailApi, SeedUserGenerateApi

# Seed 002's user-service routes.
urlpatterns = [
    path("api/v1/user/generate", SeedUserGenerateApi.as_view(), name="seed-user-generate"),
    path("api/v1/user/<int:recipient_id>", SeedRecipientDetailApi.as_view(), name="seed-user-detail"),
]
