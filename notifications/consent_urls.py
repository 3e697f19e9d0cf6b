"""The consent routes under /api/v1/ (the public /u/<token> page is in commsplatform.urls)."""

from django.urls import path

from .apis import BounceWebhookApi, SuppressionDetailApi, SuppressionListApi, UnsubscribeApi

urlpatterns = [
    path("suppressions/", SuppressionListApi.as_view(), name="suppressions-list"),
    path("suppressions/<int:suppression_id>/", SuppressionDetailApi.as_view(), name="suppressions-detail"),
    path("bounces/", BounceWebhookApi.as_view(), name="bounces"),
    path("unsubscribe/<str:token>/", UnsubscribeApi.as_view(), name="unsubscribe"),
]
