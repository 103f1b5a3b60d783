"""The analytics dashboard through the Flask test client: pages, partials, URL state, numbers.

The numbers a page shows are read back from its markup (`data-*` attributes) and
compared with the JSON API's answer to the same query, and with the plain-Python
reference computation of tests/analytics_reference.py.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from pulse.analytics.dimensions import dimension
from pulse.analytics.query import parse_query
from pulse.extensions import db
from tests import analytics_reference as ref
from tests.factories import add_member, bearer, make_tenant, make_user, sign_in

SPAN = {"since": "2024-10-30", "until": "2024-11-05"}
KPI = re.compile(r'data-kpi="(\w+)" data-value="([^"]*)"')
ROW = re.compile(
    r'<tr data-visitors="(\d+)" data-second="(\d+)"[^>]*>\s*<th[^>]*>.*?'
    r'<a href="([^"]+)"[^>]*>([^<]*)</a>',
    re.S,
)
HTMX = {"HX-Request": "true"}
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)


@pytest.fixture
def tenant(app):
    tenant = make_tenant("dash")
    tenant.site.timezone = "America/New_York"
    db.session.commit()
    tenant.data = ref.generate(tenant.site.id, tenant.site.timezone, seed=5, visits=80)
    return tenant


@pytest.fixture
def empty(app):
    return make_tenant("empty")


def base(tenant) -> str:
    return f"/t/{tenant.team.slug}/sites/{tenant.site.id}"


def qs(args: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(args)


def text(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def kpis(body: str) -> dict[str, float]:
    return {name: float(value) for name, value in KPI.findall(body)}


def rows(body: str) -> list[dict]:
    return [
        {"visitors": int(v), "second": int(s), "href": html.unescape(h), "label": html.unescape(t)}
        for v, s, h, t in ROW.findall(body)
    ]


def api(client, tenant, path: str, args: dict[str, str]) -> dict:
    url = f"/api/v1/sites/{tenant.site.id}/{path}?{qs(args)}"
    response = client.get(url, headers=bearer(tenant.key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def signed_in(client, tenant) -> None:
    sign_in(client, tenant.owner.email)


PAGES = ["overview", "realtime", "agents"]
PARTIALS = [
    "overview/summary",
    "overview/panels/pages",
    "overview/panels/pages?tab=exit_page",
    "overview/panels/sources",
    "overview/panels/sources?tab=utm_campaign",
    "overview/panels/locations",
    "overview/panels/devices?tab=os",
    "overview/panels/traffic",
    "realtime/now",
    "agents/list",
    "agents/list?agent=ClaudeBot",
]


@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_every_page_and_partial_renders_for_a_site_without_data(client, empty, role):
    if role == "viewer":
        viewer = make_user("viewer@example.test")
        add_member(empty.team, viewer, "viewer")
        sign_in(client, viewer.email)
    else:
        sign_in(client, empty.owner.email)
    settings_link = f'href="{base(empty)}"'
    for path in PAGES:
        body = text(client.get(f"{base(empty)}/{path}"))
        assert "No visits recorded yet" in body
        assert empty.site.site_key in body  # the snippet, to get started
        assert (settings_link in body) is (role == "owner"), path
        assert "allowed origins" in body if role == "owner" else "allowed origins" not in body
    for path in PARTIALS:
        body = text(client.get(f"{base(empty)}/{path}"))
        assert "Error" not in body
    summary = kpis(text(client.get(f"{base(empty)}/overview/summary")))
    assert summary == {
        "visitors": 0,
        "pageviews": 0,
        "bounce_rate": 0,
        "visit_duration": 0,
        "agent_share": 0,
    }


def test_pages_need_a_member_of_the_sites_team(client, tenant):
    other = make_tenant("other")
    sign_in(client, other.owner.email)
    for path in PAGES + PARTIALS:
        assert client.get(f"{base(tenant)}/{path}").status_code == 404, path
        assert client.get(f"/t/{other.team.slug}/sites/{tenant.site.id}/{path}").status_code == 404
    anonymous = client.application.test_client()
    response = anonymous.get(f"{base(tenant)}/overview")
    assert response.status_code in (302, 303) and "/signin" in response.headers["Location"]
    partial = anonymous.get(f"{base(tenant)}/overview/summary", headers=HTMX)
    assert partial.status_code == 204 and "/signin" in partial.headers["HX-Redirect"]


def test_bad_query_arguments_are_a_422_page_not_a_500(client, tenant):
    signed_in(client, tenant)
    for args in ("period=fortnight", "since=yesterday-ish", "country=Narnia", "classification=x"):
        response = client.get(f"{base(tenant)}/overview?{args}")
        assert response.status_code == 422, args
        assert "text/html" in response.content_type
    assert client.get(f"{base(tenant)}/overview/panels/nope").status_code == 404


@pytest.mark.parametrize(
    "args",
    [
        SPAN,
        {**SPAN, "classification": "all"},
        {**SPAN, "country": "DE"},
        {**SPAN, "source": "Google", "classification": "human,agent"},
        {"since": "2024-11-01", "until": "2024-11-03", "page": "/pricing"},
    ],
)
def test_kpis_match_the_json_api_and_the_reference(client, tenant, args):
    signed_in(client, tenant)
    shown = kpis(text(client.get(f"{base(tenant)}/overview/summary?{qs(args)}")))
    stats = api(client, tenant, "stats", {**args, "compare": "previous"})
    for name in ("visitors", "pageviews", "bounce_rate", "visit_duration"):
        assert shown[name] == stats[name] == stats["metrics"][name]["current"], name
    total = stats["humans"] + stats["agents"] + stats["bots"]
    assert shown["agent_share"] == (round(100 * stats["agents"] / total, 1) if total else 0)
    q = parse_query(tenant.site, args, now=datetime.now(UTC))
    expected = ref.ref_overview(q, tenant.data)
    assert shown["visitors"] == expected["visitors"]
    assert shown["pageviews"] == expected["pageviews"]
    assert shown["bounce_rate"] == expected["bounce_rate"]


def test_filters_in_the_url_change_the_numbers(client, tenant):
    signed_in(client, tenant)
    everything = kpis(text(client.get(f"{base(tenant)}/overview/summary?{qs(SPAN)}")))
    q = parse_query(tenant.site, SPAN)
    countries = ref.ref_breakdown(q, tenant.data, dimension("country"), 10)
    assert len(countries) >= 2, "the generated data should span several countries"
    one = countries[-1]["value"]
    filtered = kpis(
        text(client.get(f"{base(tenant)}/overview/summary?{qs({**SPAN, 'country': one})}"))
    )
    assert 0 < filtered["visitors"] < everything["visitors"]
    assert filtered["visitors"] == countries[-1]["visitors"]


@pytest.mark.parametrize(
    ("panel", "tab", "endpoint", "extra"),
    [
        ("pages", None, "pages", {}),
        ("pages", "entry_page", "pages/entry", {}),
        ("pages", "exit_page", "pages/exit", {}),
        ("sources", None, "channels", {}),
        ("sources", "source", "sources", {}),
        ("sources", "referrer", "referrers", {}),
        ("sources", "utm_campaign", "utm", {"field": "campaign"}),
        ("locations", None, "geo", {}),
        ("devices", None, "devices", {}),
        ("devices", "browser", "browsers", {}),
        ("devices", "os", "os", {}),
    ],
)
def test_panel_rows_match_the_json_api(client, tenant, panel, tab, endpoint, extra):
    signed_in(client, tenant)
    args = {**SPAN, "classification": "all"}
    url = f"{base(tenant)}/overview/panels/{panel}?{qs(args)}" + (f"&tab={tab}" if tab else "")
    shown = rows(text(client.get(url)))
    answer = api(client, tenant, endpoint, {**args, **extra})["rows"]
    assert answer, "the generated data should fill every panel"
    assert [r["visitors"] for r in shown] == [r["visitors"] for r in answer]
    second = "sessions" if "sessions" in answer[0] else "pageviews"
    assert [r["second"] for r in shown] == [r[second] for r in answer]
    for row, expected in zip(shown, answer, strict=True):
        if expected["value"] is not None:
            assert row["label"] == str(expected["value"])


def test_clicking_a_row_filters_the_whole_page(client, tenant):
    signed_in(client, tenant)
    body = text(client.get(f"{base(tenant)}/overview/panels/pages?{qs(SPAN)}"))
    first = rows(body)[0]
    link = urlsplit(first["href"])
    assert link.path == f"{base(tenant)}/overview"
    state = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert state == {**SPAN, "page": first["label"]}
    page = text(client.get(first["href"]))
    assert f"Page: <strong>{html.escape(first['label'])}</strong>" in page  # the chip
    remove = re.search(r'<a href="([^"]+)"[^>]*aria-label="Remove filter Page', page)
    assert "page=" not in html.unescape(remove.group(1))
    summary_url = re.search(r'hx-get="([^"]*/overview/summary[^"]*)"', page).group(1)
    shown = kpis(text(client.get(html.unescape(summary_url))))
    stats = api(client, tenant, "stats", state)
    assert shown["visitors"] == stats["visitors"] == first["visitors"]
    panel_urls = re.findall(r'hx-get="([^"]*/overview/panels/[^"]*)"', page)
    assert len(panel_urls) == 5 and all("page=" in u for u in panel_urls)


def test_htmx_navigation_answers_the_report_fragment(client, tenant):
    signed_in(client, tenant)
    url = f"{base(tenant)}/overview?period=30d&classification=all&compare=previous"
    full = client.get(url)
    partial = client.get(url, headers=HTMX)
    assert "<html" in text(full) and "<html" not in text(partial)
    assert text(partial).lstrip().startswith('<div id="report"')
    assert "HX-Request" in partial.headers["Vary"]
    restore = client.get(url, headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in text(restore)  # back/forward gets the whole page
    body = text(partial)
    assert 'hx-push-url="true"' in body
    presets = dict(re.findall(r'<a href="([^"]+)"[^>]*>(\d+ days|Today|24 hours)</a>', body))
    assert any("period=7d" in u for u in presets) and all("compare=previous" in u for u in presets)
    assert 'aria-current="true">30 days</a>' in body
    assert 'aria-current="true">All traffic</a>' in body
    assert "Comparing to previous period" in body


def test_compare_adds_the_previous_period_line(client, tenant):
    signed_in(client, tenant)
    plain = text(client.get(f"{base(tenant)}/overview/summary?{qs(SPAN)}"))
    compared = text(client.get(f"{base(tenant)}/overview/summary?{qs(SPAN)}&compare=previous"))
    assert 'class="line previous"' not in plain and 'class="line previous"' in compared
    assert "previous period:" in compared  # hover titles carry both values
    stats = api(client, tenant, "timeseries", SPAN)
    titles = re.findall(r"<title>([^<]*visitors)</title>", plain)
    assert [int(t.rsplit(": ", 1)[1].split()[0].replace(",", "")) for t in titles] == [
        p["visitors"] for p in stats["points"]
    ]


def test_traffic_split_matches_the_api(client, tenant):
    signed_in(client, tenant)
    body = text(client.get(f"{base(tenant)}/overview/panels/traffic?{qs(SPAN)}"))
    stats = api(client, tenant, "stats", SPAN)
    split = re.findall(
        r'aria-label="Show only ([^"]+)"[^>]*>[^<]*</a></th>\s*<td class="num">([\d,]+)', body
    )
    assert dict(split) == {
        "Humans": f"{stats['humans']:,}",
        "AI agents": f"{stats['agents']:,}",
        "Bots": f"{stats['bots']:,}",
    }
    by_agent = {**SPAN, "property": "agent", "classification": "agent,bot"}
    agents = api(client, tenant, "breakdown", by_agent)["rows"]
    assert [(r["label"], r["visitors"]) for r in rows(body)] == [
        (a["value"], a["visitors"]) for a in agents
    ]
    assert agents, "the generated data has agents and bots"


def test_agents_page_lists_agents_and_what_one_read(client, tenant):
    signed_in(client, tenant)
    listing = text(client.get(f"{base(tenant)}/agents/list?{qs(SPAN)}"))
    agents = api(client, tenant, "agents", SPAN)["rows"]
    assert agents
    shown = rows(listing)
    assert [(r["label"], r["visitors"], r["second"]) for r in shown] == [
        (a["name"], a["hits"], a["pages"]) for a in agents
    ]
    name = agents[0]["name"]
    assert shown[0]["href"].endswith(f"agent={name}") or f"agent={name}&" in shown[0]["href"]
    detail = text(client.get(f"{base(tenant)}/agents/list?{qs({**SPAN, 'agent': name})}"))
    assert f"What {html.escape(name)} read" in detail
    one = api(client, tenant, f"agents/{name}", {**SPAN, "limit": "50"})
    pages = re.findall(r'<tr data-page="([^"]*)" data-hits="(\d+)"', detail)
    assert [(html.unescape(p), int(h)) for p, h in pages] == [
        (p["page"], p["hits"]) for p in one["pages_read"]
    ]
    assert re.search(r'data-hits="(\d+)"', detail).group(1) == str(one["hits"])
    unknown = text(client.get(f"{base(tenant)}/agents/list?{qs({**SPAN, 'agent': 'NoSuchBot'})}"))
    assert "No agent or bot called NoSuchBot" in unknown


def test_realtime_shows_a_visit_sent_seconds_ago(client, tenant):
    signed_in(client, tenant)
    before = kpis(text(client.get(f"{base(tenant)}/realtime/now")))
    assert before["visitors"] == 0
    sent = client.post(
        "/api/v1/track/batch",
        json={
            "site": tenant.site.site_key,
            "events": [{"name": "pageview", "url": "https://dash.example/now-reading"}],
        },
        headers={"User-Agent": CHROME, "Accept-Language": "en", "Origin": "https://dash.example"},
        environ_base={"REMOTE_ADDR": "81.2.69.142"},
    )
    assert sent.status_code == 202, sent.get_json()
    body = text(client.get(f"{base(tenant)}/realtime/now?classification=all"))
    now = api(client, tenant, "realtime", {"classification": "all"})
    shown = kpis(body)
    assert shown["visitors"] == now["visitors"] == 1
    assert shown["pageviews"] == now["pageviews"] == 1
    assert [r["label"] for r in rows(body)] == ["/now-reading"]
    assert 'hx-trigger="every 5s' in body  # polls, and also listens to the SSE stream if any


EXPLORERS = ["sessions", "events", "funnels", "retention", "heatmap"]
# Each explorer partial, and what it says when there is nothing to show.
EMPTY_EXPLORERS = {
    "sessions/list": "No sessions in this range",
    "events/log": "No events in this range",
    "events/properties": "No events in this range",
    "funnels/result": "Give at least two steps",
    "funnels/result?step=/&step=/pricing": "0 visitors entered, 0 converted",
    "retention/grid": "Retention follows people across days",
    "retention/grid?cohort=day": "Retention follows people across days",
    "heatmap/grid": "No traffic in this range",
    "heatmap/grid?metric=pageviews": "No traffic in this range",
}
EXPLORER_PARTIALS = list(EMPTY_EXPLORERS)


@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_explorers_render_for_a_site_without_data(client, empty, role):
    user = empty.owner
    if role == "viewer":
        user = make_user("explorer-viewer@example.test")
        add_member(empty.team, user, "viewer")
    sign_in(client, user.email)
    for path in EXPLORERS:
        body = text(client.get(f"{base(empty)}/{path}"))
        assert "No visits recorded yet" in body and empty.site.site_key in body
        assert (f'href="{base(empty)}"' in body) is (role == "owner")
    for path, says in EMPTY_EXPLORERS.items():
        assert says in text(client.get(f"{base(empty)}/{path}")), path


def test_explorers_are_scoped_to_the_team(client, tenant):
    other = make_tenant("stranger")
    sign_in(client, other.owner.email)
    for path in EXPLORERS + EXPLORER_PARTIALS:
        assert client.get(f"{base(tenant)}/{path}").status_code == 404, path
    session_id = tenant.data["visits"][0]["id"]
    theirs = f"/t/{other.team.slug}/sites/{other.site.id}/sessions/{session_id}"
    assert client.get(theirs).status_code == 404  # a visit of another site


def test_sessions_list_and_timeline_match_the_api(client, tenant):
    signed_in(client, tenant)
    args = {**SPAN, "classification": "all"}
    body = text(client.get(f"{base(tenant)}/sessions/list?{qs(args)}"))
    shown = re.findall(r'data-session="([^"]+)"', body)
    listed = api(client, tenant, "sessions", {**args, "limit": "50"})["sessions"]
    assert shown == [s["session_id"] for s in listed] and shown
    assert "Older sessions" in body  # 80 visits: a second page
    timeline = text(client.get(f"{base(tenant)}/sessions/{shown[0]}"))
    events = [e for e in tenant.data["events"] if e["session_id"] == shown[0]]
    assert timeline.count("<time datetime=") == len(events) > 0


def test_funnel_matches_the_api(client, tenant):
    signed_in(client, tenant)
    args = {**SPAN, "classification": "all"}
    url = f"{base(tenant)}/funnels/result?{qs(args)}&step=/&step=/pricing&window=48&unit=session"
    body = text(client.get(url))
    answer = api(
        client,
        tenant,
        "funnel",
        {**args, "steps": "/,/pricing", "conversion_window_hours": "48", "unit": "session"},
    )
    counts = [int(c) for c in re.findall(r'<li data-count="(\d+)"', body)]
    assert counts == [s["count"] for s in answer["steps"]] and counts[0] > 0
    overall = float(re.search(r'data-overall="([^"]+)"', body).group(1))
    assert overall == answer["overall_conversion_rate"]
    bad = text(client.get(f"{base(tenant)}/funnels/result?step=/&step=nope;x&window=abc"))
    assert 'role="alert"' in bad  # a bad step is explained, not a 500


def test_heatmap_matches_the_api(client, tenant):
    signed_in(client, tenant)
    args = {**SPAN, "classification": "all"}
    body = text(client.get(f"{base(tenant)}/heatmap/grid?{qs(args)}"))
    grid = api(client, tenant, "heatmap", args)["grid"]
    cells = [int(v or 0) for v in re.findall(r'<td class="heat-\d"[^>]*>(\d*)</td>', body)]
    assert cells == [v for row in grid for v in row] and sum(cells) > 0


def test_classification_aliases_become_canonical_links(client, tenant):
    signed_in(client, tenant)
    body = text(client.get(f"{base(tenant)}/overview?label=agents&period=30d", headers=HTMX))
    assert 'aria-current="true">AI agents</a>' in body
    presets = re.findall(r'<a href="([^"]+)" id="range-', body)
    assert presets and all("classification=agent" in html.unescape(u) for u in presets)
    assert not any("label=" in u for u in presets)


def test_chart_geometry_keeps_points_inside_and_titles_exact():
    from pulse.dashboard.charts import HEIGHT, PAD_BOTTOM, PAD_TOP, line_chart, nice_ceiling

    values = [0, 3, 17, 250, 249, 1]
    chart = line_chart(
        [f"2024-11-0{i + 1}" for i in range(6)], values, interval="day", previous=[5] * 6
    )
    baseline = HEIGHT - PAD_BOTTOM
    assert all(PAD_TOP <= p.y <= baseline for p in chart.points)
    assert [p.y for p in chart.points][0] == baseline  # zero sits on the axis
    top = nice_ceiling(250)
    assert top >= 250 and chart.y_ticks[-1][1] == f"{top:g}"
    assert [p.title.split(": ")[1].split()[0] for p in chart.points] == [str(v) for v in values]
    assert all("previous period: 5" in p.title for p in chart.points)
    small = line_chart(["2024-11-01", "2024-11-02"], [1, 2], interval="day")
    assert [label for _, label in small.y_ticks] == ["0", "1", "2", "3", "4"]


def test_events_log_and_properties_match_the_api(client, tenant):
    signed_in(client, tenant)
    args = {**SPAN, "classification": "all"}
    log = text(client.get(f"{base(tenant)}/events/log?{qs(args)}"))
    answer = api(client, tenant, "events", {**args, "limit": "50"})["events"]
    assert re.findall(r'<tr data-event="([^"]+)"', log) == [e["id"] for e in answer] and answer
    names = text(client.get(f"{base(tenant)}/events/properties?{qs(args)}"))
    props = api(client, tenant, "properties", args)
    shown = [
        (html.unescape(n), int(c))
        for n, c in re.findall(r'data-name="([^"]+)" data-count="(\d+)"', names)
    ]
    assert shown == [(e["event"], e["count"]) for e in props["events"]] and shown
    assert 'aria-label="Filter by plan ' in names  # property values filter the page
    link = re.search(r'href="([^"]+)"[^>]*aria-label="Filter by event signup"', names)
    filtered = text(client.get(html.unescape(link.group(1))))
    assert "Event: <strong>signup</strong>" in filtered
