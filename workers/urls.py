"""The staff API's dead-letter routes, under /api/v1/streams/<stream>/dead-letters/."""

from django.urls import path

from .apis import DeadLetterDetailApi, DeadLetterListApi, DeadLetterPurgeApi, DeadLetterRedriveApi

urlpatterns = [
    path("", DeadLetterListApi.as_view(), name="list"),
    # before <entry_id>/: "redrive" and "purge" are not entry ids
    path("redrive/", DeadLetterRedriveApi.as_view(), name="redrive"),
    path("purge/", DeadLetterPurgeApi.as_view(), name="purge"),
    path("<str:entry_id>/", DeadLetterDetailApi.as_view(), name="detail"),
]
