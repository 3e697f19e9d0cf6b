from django.urls import path

from .apis import ConsumerListApi, ConsumerPauseApi, ConsumerResumeApi

urlpatterns = [
    path("", ConsumerListApi.as_view(), name="list"),
    path("<str:name>/pause/", ConsumerPauseApi.as_view(), name="pause"),
    path("<str:name>/resume/", ConsumerResumeApi.as_view(), name="resume"),
]
