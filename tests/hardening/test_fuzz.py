"""schemathesis over /api/schema/: every operation, as staff, with the workers, Redis, PostgreSQL
and an SMTP server behind the app.

Every response must be a non-5xx that matches its documented status, content type and schema;
every 4xx is the JSON error shape. `make test` runs FUZZ_MAX_EXAMPLES (default 10) examples per
operation with a fixed seed; `make fuzz` runs more.
"""

import os
from collections import Counter

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from commsplatform.wsgi import application

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20240808"))
# Every stream consumer except the Kafka ingest (no broker here; it has its own tests).
CONSUMERS = [
    "notifications",
    "campaign-fanout",
    "notification-router",
    "email-sender",
    "email-retry",
    "weather",
    "inventory-reserve",
    "accounts-charge",
    "inventory-settle",
    "orders-status",
]
WORKER_ENV = {"WORKER_BLOCK_MS": "200", "EMAIL_RETRY_BASE_S": "0.2", "EMAIL_RETRY_POLL_S": "0.5"}

# Not checked: whether the server is as strict or as lenient as the schema. DRF coerces (0 → false,
# "5" → 5), a filter with an unknown value gives an empty page, a bad page_size falls back to the
# default; and referential rules (unknown customer, product) are 400s the schema cannot express.
# Every 4xx must still be the JSON error shape (asserted below) and match the documented Error.
NOT_CHECKED = [negative_data_rejection, positive_data_acceptance]
EXAMPLES: Counter[str] = Counter()

load_all_checks()
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def _report_examples():
    yield
    total = sum(EXAMPLES.values())
    print(f"\nfuzzed {len(EXAMPLES)} operations, {total} examples (max {MAX_EXAMPLES} per operation, seed {SEED})")


@pytest.fixture
def stack(staff_user, smtp_server, worker_process, settings):
    """The app's backing services: the workers (subprocess), SMTP, Redis, the test database."""
    from rest_framework.authtoken.models import Token

    settings.USERS_GENERATE_COUNT = 5  # GET /api/v1/user/generate, staff only
    settings.WEATHER_REPLY_TIMEOUT_S = 10.0
    workers = worker_process("runworker", *CONSUMERS, env=WORKER_ENV)
    yield {"Authorization": f"Token {Token.objects.create(user=staff_user).key}"}
    assert workers.running, workers.output()
    from weather.replies import stop_listeners

    stop_listeners()


@pytest.fixture
def api_schema(stack):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck), database=None)
def test_every_operation_survives_fuzzing(case, stack):
    EXAMPLES[case.operation.label] += 1
    response = case.call_and_validate(headers=stack, excluded_checks=NOT_CHECKED)
    if 400 <= response.status_code < 500:
        body = response.json()
        assert body["status"] == response.status_code and body["title"] and body["description"], body
