"""The OpenAPI 3 schema is valid and complete; Swagger UI and ReDoc load only our own static files."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.validation import validate_schema


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn: an untyped parameter or an unnamed enum would fail here.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")


@pytest.fixture
def served(client, db) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_served_schema_is_valid_openapi_3(served):
    validate_schema(served)  # drf-spectacular's own check against the OpenAPI 3 JSON schema
    assert served["info"]["title"] == "Make Us Rich API"


def test_every_operation_documents_token_auth_and_the_error_body(served):
    assert served["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Token <key>`; create keys on the API tokens page or at /api/v1/tokens/.",
    }
    error = served["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["status", "code", "message", "fields"]
    operations = [(path, method, op) for path, ops in served["paths"].items() for method, op in ops.items()]
    assert len(operations) == 40  # every route of the access matrix but the browsable root
    for path, method, op in operations:
        assert {"tokenAuth": []} in op["security"], (path, method)
        for code in ("401", "403", "429"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (path, method, code)
        if "{" in path:
            assert "404" in op["responses"], (path, method)
        success = [c for c in op["responses"] if c.startswith("2")]
        assert success, (path, method)


def test_the_schema_describes_the_conventions(served):
    candle = served["components"]["schemas"]["Candle"]["properties"]
    assert candle["close"] == {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,20}(?:\.\d{0,8})?$"}
    assert candle["open_time"] == {"type": "string", "format": "date-time"}
    retrain = served["paths"]["/api/v1/assets/{symbol}/retrain/"]["post"]["responses"]["202"]
    assert "Location" in retrain["headers"]
    assert retrain["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TrainingRunAccepted"}
    limit = next(
        p for p in served["paths"]["/api/v1/assets/{symbol}/candles/"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert "at most 1000" in limit["description"]
    imports = served["paths"]["/api/v1/portfolios/{id}/import-csv/"]["post"]["requestBody"]["content"]
    assert set(imports) == {"multipart/form-data", "text/csv"}


def test_the_schema_describes_the_latest_forecasts_comparison(served):
    schemas = served["components"]["schemas"]
    assert schemas["LatestForecast"]["properties"]["comparison"]["allOf"] == [
        {"$ref": "#/components/schemas/Comparison"}
    ]
    assert "comparison" in schemas["LatestForecast"]["required"]
    comparison = schemas["Comparison"]
    assert comparison["properties"]["text"]["type"] == "string"
    assert (
        comparison["properties"]["verdict"]["type"] == "string" and comparison["properties"]["verdict"]["description"]
    )
    numbers = ("model_version", "pinball_ratio", "model_coverage", "baseline_coverage", "backtest_days")
    for name in numbers:
        field = comparison["properties"][name]
        assert field["nullable"] is True and field["description"], name
    assert set(comparison["required"]) == {"text", "verdict", *numbers}


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_load_their_code_from_our_static_files(client, db, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), url  # nothing from a CDN or any other host
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), url  # and it ships with the project
        else:  # served by the project: Swagger UI's start-up script, ReDoc's bundle without its badge logo
            script = client.get(url)
            assert script.status_code == 200 and "javascript" in script["Content-Type"], url
            assert b"cdn.redoc.ly" not in script.content
    assert not re.search(r"https?://(?!localhost)", re.sub(r"<script>.*?</script>", "", html, flags=re.S))


def test_every_operation_has_a_resource_tag_a_summary_and_a_readable_id(served):
    tags = [t["name"] for t in served["tags"]]
    assert tags == [
        "Assets",
        "Candles",
        "Forecasts",
        "Model versions",
        "Training runs",
        "Portfolios",
        "Transactions",
        "Exchange connections",
        "Tokens",
    ]
    assert all(t["description"] for t in served["tags"])
    operations = [(path, method, op) for path, ops in served["paths"].items() for method, op in ops.items()]
    assert len(operations) == 40
    ids = [op["operationId"] for _, _, op in operations]
    assert len(set(ids)) == len(ids)
    for path, method, op in operations:
        where = (path, method)
        assert len(op["tags"]) == 1 and op["tags"][0] in tags, where
        assert op["summary"] and "\n" not in op["summary"] and len(op["summary"]) <= 80, where
        assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", op["operationId"]), where
        assert not op["operationId"].startswith(("v1", "api")), where
    used = {op["tags"][0] for _, _, op in operations}
    assert used == set(tags)  # no tag declared for nothing
    by_id = {op["operationId"]: (path, method, op["tags"][0]) for path, method, op in operations}
    assert by_id["assets_list"] == ("/api/v1/assets/", "get", "Assets")
    assert by_id["assets_candles_list"] == ("/api/v1/assets/{symbol}/candles/", "get", "Candles")
    assert by_id["portfolios_transactions_create"][2] == "Transactions"
    assert served["paths"]["/api/v1/assets/{symbol}/candles/"]["get"]["summary"] == "List an asset's candles"


def test_the_schema_states_the_decimal_rule(served):
    description = served["info"]["description"]
    assert "no trailing zeros" in description and "`0.25`" in description and "`0.25000000`" in description
