"""Under the production settings too, an oversized body is a 413 and no error is an HTML page.

Settings are read once per process: the requests run in a fresh `manage.py shell` with
commsplatform.settings.production (DEBUG off), through Django's test client there.
"""

import json
import subprocess
import sys

import pytest

from tests.deploy.conftest import production_environment
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.django_db

REQUESTS = """
import json
from django.test import Client

client = Client()
big = json.dumps({"description": "x" * 5 * 1024 * 1024})
answers = []
for path, host, body in [
    ("/api/v1/campaigns/", "127.0.0.1", big),
    ("/event", "127.0.0.1", big),
    ("/api/v1/users/", "evil.example", "{}"),
]:
    response = client.post(path, body, content_type="application/json", secure=True, HTTP_HOST=host)
    answers.append([path, response.status_code, response["Content-Type"], response.content.decode()])
print(json.dumps(answers))
"""


def test_production_answers_an_oversized_body_and_a_bad_host_with_json():
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", REQUESTS],
        cwd=REPO_ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answers = {path: rest for path, *rest in json.loads(result.stdout.strip().splitlines()[-1])}

    for path in ["/api/v1/campaigns/", "/event"]:
        status, content_type, content = answers[path]
        assert (status, content_type) == (413, "application/json"), answers[path]
        assert json.loads(content)["description"].endswith("at most 2621440 are accepted.")
    status, content_type, content = answers["/api/v1/users/"]
    assert (status, content_type) == (400, "application/json")
    assert json.loads(content) == {"status": 400, "title": "Bad Request", "description": "Bad request."}
