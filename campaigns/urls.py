from django.urls import path

from .apis import (
    CampaignCancelApi,
    CampaignDetailApi,
    CampaignListApi,
    CampaignRetryFailedApi,
    CampaignSendApi,
)

urlpatterns = [
    path("", CampaignListApi.as_view(), name="list"),
    path("<int:campaign_id>/", CampaignDetailApi.as_view(), name="detail"),
    path("<int:campaign_id>/send/", CampaignSendApi.as_view(), name="send"),
    path("<int:campaign_id>/cancel/", CampaignCancelApi.as_view(), name="cancel"),
    path("<int:campaign_id>/retry-failed/", CampaignRetryFailedApi.as_view(), name="retry-failed"),
]
