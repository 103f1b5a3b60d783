"""The items of one request share what their client yields, and nothing else.

`pipeline.prepare` works out a client's verdict, columns, country and visitor id once
per request; each row must still be what preparing its item alone gives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask

from pulse.ingest import pipeline
from pulse.ingest.facts import RequestFacts
from pulse.ingest.sites import Sender

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _items() -> list[dict[str, object]]:
    page = {"name": "pageview", "url": "https://shop.example/a"}
    three_days_ago = (NOW - timedelta(days=3)).isoformat()
    return [
        {**page, "id": "a1", "ip": "203.0.113.5", "user_agent": CHROME},
        {**page, "id": "a2", "ip": "203.0.113.5", "user_agent": CHROME},
        {**page, "id": "b1", "ip": "203.0.113.5", "user_agent": GPTBOT},
        {**page, "id": "c1", "ip": "198.51.100.7", "user_agent": CHROME},
        {**page, "id": "a3", "ip": "203.0.113.5", "user_agent": CHROME, "ts": three_days_ago},
        {**page, "id": "d1"},  # the request's own client: its headers count
    ]


def test_a_batch_classifies_each_client_once_and_rows_match_items_prepared_alone(
    app: Flask, monkeypatch
) -> None:
    sender = Sender(site_id=1, team_id=1, tier="free", timezone="UTC", server=True)
    facts = RequestFacts(
        ip="192.0.2.10",
        user_agent="python-requests/2.32",
        origin=None,
        headers={"user-agent": "python-requests/2.32"},
        received_at=NOW,
    )
    alone = [pipeline.prepare_item(item, sender, facts, None, None) for item in _items()]

    calls: list[str] = []
    classify = pipeline.classify

    def counting_classify(user_agent, *args, **kwargs):
        calls.append(user_agent)
        return classify(user_agent, *args, **kwargs)

    monkeypatch.setattr(pipeline, "classify", counting_classify)
    prepared = pipeline.prepare(_items(), sender, facts)

    assert prepared.errors == []
    assert prepared.rows == alone
    assert len(calls) == 4  # Chrome and GPTBot on one address, Chrome on another, the caller
    by_id = {row["event_uid"]: row for row in prepared.rows}
    assert by_id["a1"]["visitor_id"] == by_id["a2"]["visitor_id"]
    assert by_id["a1"]["visitor_id"] != by_id["a3"]["visitor_id"]  # another day, another salt
    assert by_id["a1"]["visitor_id"] != by_id["b1"]["visitor_id"]
    assert by_id["a1"]["visitor_id"] != by_id["c1"]["visitor_id"]
    assert [by_id[i]["label"] for i in ("a1", "b1", "d1")] == ["human", "agent", "bot"]
    # Rows are the drainer's to change: nothing mutable is shared between two of them.
    assert by_id["a1"]["reasons"] is not by_id["a2"]["reasons"]
    assert by_id["a1"]["detection"] is not by_id["a2"]["detection"]
