from django.urls import path

from .apis import BatteryDetailApi, BatteryListApi

urlpatterns = [
    path("", BatteryListApi.as_view(), name="list"),
    path("<int:battery_id>/", BatteryDetailApi.as_view(), name="detail"),
]
