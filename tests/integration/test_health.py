"""Health endpoints (seed 003 shape)."""

from sqlalchemy import create_engine

from pulse.api import system


def test_health_reports_database_and_version(client):
    for path in ("/api/health", "/health", "/api/v1/health"):
        response = client.get(path)
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "ok"
        assert body["db"] is True
        assert body["redis"] is None
        assert body["jobs"] == "in-process"
        assert body["version"] == "0.1.0"
        assert response.headers["X-Request-ID"].startswith("req_")


def test_health_is_503_when_the_database_is_unreachable(app, client, monkeypatch):
    from pulse.extensions import db

    dead = create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    monkeypatch.setattr(db.session, "execute", lambda *a, **k: dead.connect())
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.get_json()["db"] is False
    assert response.get_json()["status"] == "down"
    assert system.database_ok() is False


def test_health_reports_redis_down_as_degraded(settings, database_url):
    from pulse import create_app

    app = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0"})
    body = app.test_client().get("/api/health").get_json()
    assert body["redis"] is False
    assert body["status"] == "degraded"
