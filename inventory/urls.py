from django.urls import path

from .apis import ProductDetailApi, ProductListApi

urlpatterns = [
    path("", ProductListApi.as_view(), name="list"),
    path("<int:product_id>/", ProductDetailApi.as_view(), name="detail"),
]
