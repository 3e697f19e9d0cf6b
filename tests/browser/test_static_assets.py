"""`make run` (DEBUG, no collectstatic): WhiteNoise serves Swagger UI's assets from the
sidecar app, and the docs page names no other host."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_docs_assets_are_local_and_served_by_whitenoise(settings):
    # given make run's static settings (WhiteNoise reads the apps' static folders)
    settings.WHITENOISE_USE_FINDERS = True
    client = Client()  # a new handler: its WhiteNoise middleware reads the setting
    # when the docs page is read
    html = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # then its scripts, stylesheet and icon come from the sidecar, under /static/
    assert sorted(assets) == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    ]
    assert "http://" not in html and "https://" not in html
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert type(response).__module__.startswith("whitenoise"), asset
