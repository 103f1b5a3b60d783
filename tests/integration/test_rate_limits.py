"""Per-tier API limits with the seed's headers and 429 body, in memory and on real Redis."""

from __future__ import annotations

import time

import pytest
import redis

from pulse import create_app
from pulse.extensions import db
from tests.factories import bearer, make_tenant


def _limited_app(settings, storage: str):
    return create_app({**settings, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": storage})


def _exhaust(client, key: str, allowed: int):
    for n in range(allowed):
        response = client.get("/api/v1/teams", headers=bearer(key))
        assert response.status_code == 200, n
        assert response.headers["X-RateLimit-Limit"] == str(allowed)
        assert int(response.headers["X-RateLimit-Remaining"]) == allowed - n - 1
        assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
    return client.get("/api/v1/teams", headers=bearer(key))


def _assert_429(response, allowed: int):
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "rate_limit_exceeded"
    assert body["limit"] == allowed and body["remaining"] == 0
    assert 0 <= body["retry_after"] <= 60
    assert int(response.headers["Retry-After"]) == body["retry_after"]
    assert response.headers["X-RateLimit-Remaining"] == "0"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_free_tier_key_gets_60_per_minute(settings, request, backend):
    storage = "memory://"
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        storage = url
    app = _limited_app(settings, storage)
    with app.app_context():
        try:
            tenant = make_tenant("alpha")
            client = app.test_client()
            _assert_429(_exhaust(client, tenant.key, 60), 60)
            # Another caller has its own bucket.
            other = make_tenant("bravo")
            assert client.get("/api/v1/teams", headers=bearer(other.key)).status_code == 200
            # Health is never limited.
            assert client.get("/api/health").status_code == 200
        finally:
            db.session.remove()
            from tests.conftest import _empty_tables

            _empty_tables()
    if backend == "redis":
        keys = redis.Redis.from_url(storage).keys("*pulse-rl*")
        assert keys, "the limiter kept its counters in Redis"


def test_team_tier_raises_the_limit(settings):
    app = _limited_app(settings, "memory://")
    with app.app_context():
        try:
            tenant = make_tenant("alpha")
            tenant.team.tier = "pro"
            db.session.commit()
            response = app.test_client().get("/api/v1/teams", headers=bearer(tenant.key))
            assert response.headers["X-RateLimit-Limit"] == "5000"
        finally:
            db.session.remove()
            from tests.conftest import _empty_tables

            _empty_tables()


def test_sign_in_is_limited_per_account(settings):
    app = _limited_app(settings, "memory://")
    with app.app_context():
        try:
            client = app.test_client()
            statuses = [
                client.post(
                    "/api/v1/auth/login",
                    json={"email": "victim@example.test", "password": f"guess{i}"},
                    environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
                ).status_code
                for i in range(7)
            ]
            assert statuses[:5] == [401] * 5
            assert statuses[5:] == [429, 429]
            # Another account from the same addresses is not blocked.
            other = client.post(
                "/api/v1/auth/login",
                json={"email": "other@example.test", "password": "x"},
                environ_base={"REMOTE_ADDR": "10.0.0.1"},
            )
            assert other.status_code == 401
        finally:
            db.session.remove()


def test_sign_in_is_limited_per_ip(settings):
    app = _limited_app(settings, "memory://")
    with app.app_context():
        client = app.test_client()
        statuses = [
            client.post(
                "/api/v1/auth/login", json={"email": f"u{i}@example.test", "password": "x"}
            ).status_code
            for i in range(21)
        ]
        db.session.remove()
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
