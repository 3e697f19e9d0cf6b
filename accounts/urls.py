from django.urls import path

from .apis import AccountDetailApi, AccountListApi

urlpatterns = [
    path("", AccountListApi.as_view(), name="list"),
    path("<int:account_id>/", AccountDetailApi.as_view(), name="detail"),
]
