"""The staff API's routes of workers: dead letters (under
/api/v1/streams/<stream>/dead-letters/) and consumers (under /api/v1/consumers/)."""

from django.urls import path

from .apis import (
    ConsumerListApi,
    ConsumerPauseApi,
    ConsumerResumeApi,
    DeadLetterDetailApi,
    DeadLetterListApi,
    DeadLetterPurgeApi,
    DeadLetterRedriveApi,
)

dead_letter_patterns = [
    path("", DeadLetterListApi.as_view(), name="list"),
    # before <entry_id>/: "redrive" and "purge" are not entry ids
    path("redrive/", DeadLetterRedriveApi.as_view(), name="redrive"),
    path("purge/", DeadLetterPurgeApi.as_view(), name="purge"),
    path("<str:entry_id>/", DeadLetterDetailApi.as_view(), name="detail"),
]

consumer_patterns = [
    path("", ConsumerListApi.as_view(), name="list"),
    path("<str:name>/pause/", ConsumerPauseApi.as_view(), name="pause"),
    path("<str:name>/resume/", ConsumerResumeApi.as_view(), name="resume"),
]
