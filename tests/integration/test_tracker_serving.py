"""pulse.js as built and as served: size budgets, freshness of dist, HTTP caching."""

from __future__ import annotations

import gzip
import hashlib
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pulse import tracker
from pulse.tracker import build, views

DIST = build.DIST
SHORT = "public, max-age=86400, stale-while-revalidate=604800"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The conftest client, with the tracker views registered until create_app does it."""
    if "tracker" not in app.blueprints:
        tracker.init_app(app)
    return app.test_client()


def dist(name: str) -> bytes:
    return (DIST / name).read_bytes()


@pytest.mark.parametrize(("name", "budget"), [("pulse.js", 3072), ("pulse.core.js", 1536)])
def test_builds_fit_their_gzip_budget(name: str, budget: int) -> None:
    size = len(gzip.compress(dist(name), compresslevel=9))
    assert size <= budget, f"{name} is {size} B gzipped, over its {budget} B budget"


@pytest.mark.parametrize("name", ["pulse.js", "pulse.core.js"])
def test_dist_is_built_from_the_current_source(name: str) -> None:
    source = hashlib.sha256((DIST.parent / "src" / "pulse.js").read_bytes()).hexdigest()
    header = dist(name).split(b"\n", 1)[0].decode()
    assert re.fullmatch(rf"/\*! Pulse {re.escape(name)} src-sha256:[0-9a-f]{{64}} \*/", header)
    assert header.split("src-sha256:")[1][:64] == source, (
        "src/pulse.js changed since dist was built: run `python -m pulse.tracker.build`"
    )
    assert build.problems() == []


def test_core_build_leaves_out_the_full_features() -> None:
    full, core = dist("pulse.js").decode(), dist("pulse.core.js").decode()
    for marker in ("session_end", "outbound_click", "file_download", "element_click", "webdriver"):
        assert marker in full
        assert marker not in core
    for marker in ("pageview", "/api/v1/track/batch", "pushState", "pulse_ignore", "sendBeacon"):
        assert marker in full and marker in core
    assert "PULSE_FULL" not in full + core


def test_pulse_js_is_served_with_caching_headers(client: FlaskClient) -> None:
    response = client.get("/pulse.js")
    assert response.status_code == 200
    assert response.data == dist("pulse.js")
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == SHORT
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert "Content-Encoding" not in response.headers
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag), "a strong ETag from the content hash"
    assert etag.strip('"') == hashlib.sha256(dist("pulse.js")).hexdigest()[:16]
    assert "Set-Cookie" not in response.headers


def test_matching_etag_gets_304(client: FlaskClient) -> None:
    etag = client.get("/pulse.js").headers["ETag"]
    response = client.get("/pulse.js", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == SHORT
    stale = client.get("/pulse.js", headers={"If-None-Match": '"0000000000000000"'})
    assert stale.status_code == 200


def test_gzip_when_the_client_accepts_it(client: FlaskClient) -> None:
    response = client.get("/pulse.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(response.data) == dist("pulse.js")
    assert int(response.headers["Content-Length"]) == len(response.data) < len(dist("pulse.js"))
    etag = response.headers["ETag"]
    assert etag != client.get("/pulse.js").headers["ETag"], "other bytes, other strong ETag"
    again = client.get("/pulse.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304
    refused = client.get("/pulse.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers
    assert refused.data == dist("pulse.js")


@pytest.mark.parametrize("path", ["/tracker.js", "/js/pulse.js"])
def test_aliases_serve_the_same_file(client: FlaskClient, path: str) -> None:
    main, alias = client.get("/pulse.js"), client.get(path)
    assert alias.status_code == 200
    assert alias.data == main.data
    assert alias.headers["ETag"] == main.headers["ETag"]
    assert alias.headers["Content-Type"] == main.headers["Content-Type"]


def test_core_build_is_served(client: FlaskClient) -> None:
    response = client.get("/pulse.core.js")
    assert response.status_code == 200
    assert response.data == dist("pulse.core.js")
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.headers["ETag"] != client.get("/pulse.js").headers["ETag"]


def test_versioned_url_is_cached_for_good(client: FlaskClient) -> None:
    path = views.versioned_path("pulse.js")
    assert re.fullmatch(r"/pulse\.js\?v=[0-9a-f]{16}", path)
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.data == dist("pulse.js")
    outdated = client.get("/pulse.js?v=0123456789abcdef")
    assert outdated.headers["Cache-Control"] == SHORT, "an old version must not be pinned"
    core = client.get(views.versioned_path("pulse.core.js"))
    assert core.headers["Cache-Control"] == IMMUTABLE


def test_head_answers_headers_without_a_body(client: FlaskClient) -> None:
    response = client.head("/pulse.js")
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == len(dist("pulse.js"))
    assert response.headers["ETag"] == client.get("/pulse.js").headers["ETag"]
    assert response.headers["Cache-Control"] == SHORT


def test_init_app_twice_is_harmless(app: Flask, client: FlaskClient) -> None:
    rules = sorted(
        str(rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("tracker.")
    )
    tracker.init_app(app)
    again = sorted(
        str(rule) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("tracker.")
    )
    assert (
        rules
        == again
        == ["/js/pulse.core.js", "/js/pulse.js", "/pulse.core.js", "/pulse.js", "/tracker.js"]
    )
