from django.urls import path

from .apis import OrderDetailApi, OrderListApi

urlpatterns = [
    path("", OrderListApi.as_view(), name="list"),
    path("<int:order_id>/", OrderDetailApi.as_view(), name="detail"),
]
