import pytest
from django.core.management import call_command

from users.models import Recipient
from users.services import recipients_generate

pytestmark = pytest.mark.django_db


def test_seed_users_creates_unique_realistic_recipients(capsys):
    # when
    call_command("seed_users", "--count", "2500", "--seed", "7")

    # then
    assert Recipient.objects.count() == 2500
    assert Recipient.objects.values("username").distinct().count() == 2500
    assert Recipient.objects.values("email").distinct().count() == 2500
    sample = Recipient.objects.order_by("id").first()
    assert sample.name and sample.last_name and sample.mobile.startswith("+1") and len(sample.device_id) == 36
    assert sample.email.endswith((".com", ".org", ".net"))
    assert "created 2500 recipients" in capsys.readouterr().out


def test_generate_twice_never_collides():
    # given
    recipients_generate(count=300, seed=1)

    # when: the same random seed again
    created = recipients_generate(count=300, seed=1)

    # then
    assert created == 300
    assert Recipient.objects.values("username").distinct().count() == 600


def test_user_api_list_create_detail(api_client):
    # when
    created = api_client.post(
        "/api/v1/users/",
        {
            "username": "ada",
            "name": "Ada",
            "last_name": "Lovelace",
            "email": "ADA@example.com",
            "device_id": "d-1",
        },
    )

    # then /api/v1/ answers snake_case, like every /api/v1/ route
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {
        "id", "username", "name", "last_name", "email", "mobile", "device_id", "opted_out", "created_at", "updated_at",
    }  # fmt: skip
    assert {k: body[k] for k in ("username", "name", "last_name", "email", "mobile", "device_id", "opted_out")} == {
        "username": "ada",
        "name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "mobile": "",
        "device_id": "d-1",
        "opted_out": False,
    }
    assert api_client.get(f"/api/v1/users/{body['id']}/").json()["username"] == "ada"
    assert api_client.get("/api/v1/users/").json()["count"] == 1
    # and the seed's route keeps the seed's exact fields
    seed = api_client.get(f"/api/v1/user/{body['id']}")
    assert seed.status_code == 200
    assert seed.json() == {
        "id": body["id"],
        "username": "ada",
        "name": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "mobile": "",
        "deviceId": "d-1",
    }


def test_every_api_v1_field_is_snake_case_and_seed_routes_keep_their_fields():
    # one convention under /api/v1/ (the schema is the contract); seed routes are the seeds'
    import re

    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    referenced: set[str] = set()
    for path, operations in schema["paths"].items():
        if "{" in path and "/api/v1/user/" in path or not path.startswith("/api/v1/") or "seed" in str(operations):
            continue
        referenced |= set(re.findall(r"#/components/schemas/(\w+)", str(operations)))
    camel = {
        (name, field)
        for name in referenced
        for field in components.get(name, {}).get("properties", {})
        if re.search(r"[a-z][A-Z]", field)
    }
    assert camel == set()


def test_user_api_refuses_duplicate_username(api_client):
    # given
    Recipient.objects.create(username="ada", email="ada@example.com")

    # when
    response = api_client.post("/api/v1/users/", {"username": "ada"})

    # then
    assert response.status_code == 400
    assert Recipient.objects.count() == 1


def test_seed_user_detail_unknown_is_404(api_client):
    assert api_client.get("/api/v1/user/999999").status_code == 404


def test_seed_generate_adds_configured_count(staff_client, api_client, settings):
    # given
    settings.USERS_GENERATE_COUNT = 40

    # when
    refused = api_client.get("/api/v1/user/generate")
    response = staff_client.get("/api/v1/user/generate")

    # then
    assert refused.status_code == 403
    assert response.status_code == 200 and response.json() == {"created": 40}
    assert Recipient.objects.count() == 40
