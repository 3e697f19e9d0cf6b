from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.sysdeps import require_program

from .cdp import Browser, Page

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = Browser(require_program("chromium"), tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.new_page()


@pytest.fixture
def admin_page(page: Page, live_server, django_user_model) -> Page:
    """A page logged in to the admin as a superuser (the session cookie of a real login)."""
    user = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client = Client()
    client.force_login(user)
    page.set_cookie(
        url=live_server.url, name=django_settings.SESSION_COOKIE_NAME, value=client.cookies["sessionid"].value
    )
    return page
