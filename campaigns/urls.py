from django.urls import path

from .apis import (
    CampaignCancelApi,
    CampaignDetailApi,
    CampaignListApi,
    CampaignPauseApi,
    CampaignPreviewApi,
    CampaignResumeApi,
    CampaignRetryFailedApi,
    CampaignSendApi,
    CampaignSendTestApi,
)

urlpatterns = [
    path("", CampaignListApi.as_view(), name="list"),
    path("<int:campaign_id>/", CampaignDetailApi.as_view(), name="detail"),
    path("<int:campaign_id>/send/", CampaignSendApi.as_view(), name="send"),
    path("<int:campaign_id>/cancel/", CampaignCancelApi.as_view(), name="cancel"),
    path("<int:campaign_id>/retry-failed/", CampaignRetryFailedApi.as_view(), name="retry-failed"),
    path("<int:campaign_id>/pause/", CampaignPauseApi.as_view(), name="pause"),
    path("<int:campaign_id>/resume/", CampaignResumeApi.as_view(), name="resume"),
    path("<int:campaign_id>/preview/", CampaignPreviewApi.as_view(), name="preview"),
    path("<int:campaign_id>/send-test/", CampaignSendTestApi.as_view(), name="send-test"),
]
