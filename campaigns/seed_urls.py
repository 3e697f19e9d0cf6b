from django.urls import path

from .apis import SeedCampaignCreateApi

# Seed 002's campaign-service route.
urlpatterns = [
    path("api/v1/campaign/create", SeedCampaignCreateApi.as_view(), name="seed-campaign-create"),
]
