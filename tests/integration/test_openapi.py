"""The OpenAPI document covers every route and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from pulse.api.openapi import openapi_path


def test_every_api_route_is_documented(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path, _ = openapi_path(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in doc["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_document_is_valid_openapi_31(client):
    validate(client.get("/api/v1/openapi.json").get_json())


def test_documented_models_are_the_validated_ones(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    site_in = doc["components"]["schemas"]["SiteIn"]
    assert site_in["additionalProperties"] is False
    assert site_in["properties"]["name"]["maxLength"] == 255
    create = doc["paths"]["/api/v1/teams/{team}/sites"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("SiteIn")
    assert create["x-required-scope"] == "sites:write"
    assert "201" in create["responses"] and "422" in create["responses"]
    listing = doc["paths"]["/api/v1/projects"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"page", "per_page", "sort", "fields"}
    assert all(re.fullmatch(r"/[a-z0-9/{}_.-]*", p) for p in doc["paths"])
