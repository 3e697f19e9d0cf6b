from django.urls import path

from .apis import RecipientDetailApi, RecipientListApi

urlpatterns = [
    path("", RecipientListApi.as_view(), name="list"),
    path("<int:recipient_id>/", RecipientDetailApi.as_view(), name="detail"),
]
