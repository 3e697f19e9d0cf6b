"""The OpenAPI schema is valid and has no warnings (clashing component names described the wrong bodies)."""

from django.core.management import call_command


def test_the_openapi_schema_generates_without_a_warning(tmp_path):
    # when / then: --fail-on-warn raises SchemaGenerationError on any warning
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    assert "CampaignRetryFailedOutput:" in text and "StreamListOutput:" in text
    assert "\n    Output:" not in text and "\n    InputRequest:" not in text
