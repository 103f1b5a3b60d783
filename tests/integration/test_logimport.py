"""`pulse import-log`: access logs in, labelled pageviews out, exactly once, resumable."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pulse.extensions import db
from pulse.ingest import logimport
from pulse.ingest.sites import clear_cache
from pulse.models import Event, Visit
from tests.factories import make_tenant

DATA = Path(__file__).resolve().parents[1] / "data"
RECENT, OLD = "14/Nov/2025", "02/Sep/2025"  # the days written in the sample logs
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
IPS = (
    "81.2.69.142",
    "2a01:4f8:c17:1234::1",
    "89.160.20.112",
    "20.171.207.34",
    "34.162.46.91",
    "54.90.207.250",
    "66.249.66.1",
    "185.199.108.1",
    "35.180.1.1",
    "45.148.10.5",
    "198.51.100.7",
    "203.0.113.9",
)
# access.log: 26 lines = 19 pageviews + 4 skipped + 1 malformed + 2 past the 400-day limit.
LABELS = {"human": 7, "agent": 6, "bot": 6}


def log_day(days_ago: int) -> str:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return f"{day.day:02d}/{MONTHS[day.month - 1]}/{day.year}"


def shifted(source: Path, dest: Path, compress: bool | None = None) -> Path:
    """A copy of a sample log with its days moved near today (imports stop at 400 days)."""
    data = source.read_bytes()
    packed = data[:2] == b"\x1f\x8b"
    text = (gzip.decompress(data) if packed else data).decode()
    text = text.replace(RECENT, log_day(1)).replace(OLD, log_day(500))
    out = text.encode()
    dest.write_bytes(gzip.compress(out) if (packed if compress is None else compress) else out)
    return dest


@pytest.fixture
def settings(settings, tmp_path):
    """Checkpoints in the test's own folder, never in the real instance folder."""
    return {**settings, "IMPORT_CHECKPOINTS": str(tmp_path / "checkpoints.json")}


@pytest.fixture
def tenant(app):
    clear_cache()
    yield make_tenant("alpha")
    clear_cache()


@pytest.fixture
def logs(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "logs"
    folder.mkdir()
    access = shifted(DATA / "access.log", folder / "access.log")
    return {
        "access": access,
        "copy.gz": shifted(access, folder / "access-copy.log", compress=True),  # no .gz name
        "rotated": shifted(DATA / "access.log.1.gz", folder / "access.log.1.gz"),
        "common": shifted(DATA / "access_common.log", folder / "access_common.log"),
    }


def run(runner, site, *files: Path, options: tuple[str, ...] = ()) -> str:
    result = runner.invoke(
        args=["import-log", "--site", str(site), *options, *(str(f) for f in files)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def count(model=Event) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def events() -> list[Event]:
    return list(db.session.scalars(select(Event).order_by(Event.ts, Event.id)))


def test_a_combined_log_becomes_labelled_pageviews(runner, tenant, logs):
    output = run(runner, tenant.site.id, logs["access"])

    assert "lines read 26, imported 19, duplicates 0, skipped 4, malformed 1" in output
    assert "static assets 2" in output and "other methods 1" in output
    assert "not a request 1" in output
    assert "2 lines older than 400 days were not imported" in output
    assert "access.log:18: not combined or common log format" in output
    assert "human 7, bot 6, agent 6" in output

    stored = events()
    assert Counter(e.label for e in stored) == LABELS
    assert {e.hostname for e in stored} == {"alpha.example"}
    first = stored[0]
    assert (first.pathname, first.label, first.browser) == ("/", "human", "Chrome")
    assert first.ts == datetime.now(UTC).replace(
        hour=8, minute=2, second=11, microsecond=0
    ) - timedelta(days=1)  # 09:02:11 +0100, stored in UTC
    assert first.referrer_host == "google.com"
    assert first.props == {"status": 200, "method": "GET", "bytes": 18342}
    assert first.user_agent is None  # kept only for non-human traffic

    gptbot = [e for e in stored if e.agent_name == "GPTBot"]
    assert len(gptbot) == 4  # robots.txt, the same page twice in one second, a 404
    assert {(e.label, e.agent_category) for e in gptbot} == {("agent", "ai-crawler")}
    assert [e.pathname for e in gptbot].count("/blog/hello-world") == 2
    [missing] = [e for e in gptbot if e.props["status"] == 404]
    assert missing.pathname == "/2019/old-announcement" and "GPTBot" in missing.user_agent
    google = [e for e in stored if e.agent_name == "Googlebot"]
    assert {(e.label, e.agent_category) for e in google} == {("bot", "search-crawler")}
    assert {e.agent_name for e in stored if e.label == "agent"} == {
        "GPTBot",
        "ClaudeBot",
        "PerplexityBot",
    }
    assert {e.agent_name for e in stored if e.agent_category == "http-library"} == {
        "curl",
        "python-requests",
    }
    [head] = [e for e in stored if e.props["method"] == "HEAD"]
    assert head.pathname == "/" and head.agent_name == "curl"
    [pricing] = [e for e in stored if e.utm_source]
    assert (pricing.pathname, pricing.utm_source, pricing.utm_medium) == (
        "/pricing",
        "newsletter",
        "email",
    )
    [ipv6] = [e for e in stored if e.browser == "Safari" and e.device == "desktop"]
    assert ipv6.country == "DE" and ipv6.pathname == "/blog/hello-world"
    assert count(Visit) >= 10


def test_no_ip_address_is_stored_anywhere(runner, tenant, logs):
    run(runner, tenant.site.site_key, logs["access"], logs["common"])
    assert count() == 21
    for model in (Event, Visit):
        for row in db.session.scalars(select(model)):
            for column in model.__table__.columns:
                value = str(getattr(row, column.name))
                assert not any(ip in value for ip in IPS), (model.__name__, column.name)


def test_importing_again_or_an_overlapping_file_adds_nothing(runner, tenant, logs):
    run(runner, tenant.site.id, logs["access"])
    visits = count(Visit)
    assert count() == 19

    again = run(runner, tenant.site.id, logs["access"])
    assert "resuming after line 26" in again and "lines read 0" in again
    restarted = run(runner, tenant.site.id, logs["access"], options=("--restart",))
    assert "imported 0, duplicates 19" in restarted
    copy = run(runner, tenant.site.id, logs["copy.gz"])  # the same lines, gzip-compressed
    assert "lines read 26, imported 0, duplicates 19" in copy
    assert (count(), count(Visit)) == (19, visits)

    rotated = run(runner, tenant.site.id, logs["rotated"])  # 3 older lines + 4 shared ones
    assert "lines read 7, imported 3, duplicates 2, skipped 2" in rotated
    assert count() == 22
    assert {e.pathname for e in events()} >= {"/about", "/llms.txt"}


def test_a_replaced_file_is_read_from_the_start(runner, tenant, logs, tmp_path):
    path = tmp_path / "live.log"
    lines = logs["access"].read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:6]))
    assert "imported 4" in run(runner, tenant.site.id, path)
    path.write_text("".join(lines[:12]))  # appended to: only the new lines are read
    appended = run(runner, tenant.site.id, path)
    assert "resuming after line 6" in appended and "lines read 6, imported 5" in appended
    path.unlink()
    path.write_text("".join(lines[6:]))  # rotated: a new file under the same name
    replaced = run(runner, tenant.site.id, path)
    assert "resuming" not in replaced and "lines read 20, imported 10, duplicates 5" in replaced
    assert count() == 19
    path.write_text("".join(lines[6:8]))  # truncated in place, same first line
    truncated = run(runner, tenant.site.id, path)
    assert "resuming" not in truncated and "lines read 2, imported 0, duplicates 1" in truncated


def test_an_interrupted_import_resumes_exactly(app, runner, tenant, logs, tmp_path):
    def crash(batch: int) -> None:
        if batch == 3:
            raise RuntimeError("the machine lost power")

    with pytest.raises(RuntimeError):
        logimport.import_files(
            [str(logs["access"])], tenant.site, batch_size=4, before_commit=crash
        )
    assert count() == 8  # two batches committed, the third rolled back
    saved = json.loads((tmp_path / "checkpoints.json").read_text())
    [entry] = saved.values()
    assert entry["line"] == 11  # after the first of the two identical GPTBot lines

    output = run(runner, tenant.site.id, logs["access"], options=("--batch-size", "4"))
    assert "resuming after line 11" in output
    assert "lines read 15, imported 11, duplicates 0" in output
    assert count() == 19  # the second identical line kept its own id across the restart
    assert Counter(e.label for e in events()) == LABELS


def test_common_format_and_unknown_sites(runner, tenant, logs):
    output = run(runner, tenant.site.site_key, logs["common"])
    assert "lines read 4, imported 2" in output
    assert {(e.pathname, e.label) for e in events()} == {
        ("/index.html", "bot"),
        ("/reports/2025-q3.pdf", "bot"),
    }
    unknown = runner.invoke(args=["import-log", "--site", "ps_nope", str(logs["common"])])
    assert unknown.exit_code != 0 and "no site ps_nope" in unknown.output


def test_parse_line_reads_both_formats_and_escapes():
    line = logimport.parse_line(
        b'2001:db8::1 - - [01/Jan/2026:00:00:01 -0530] "GET /a%20b?x=1 HTTP/1.1" 404 - '
        b'"https://r.example/\\x22q\\x22" "Agent \\"quoted\\""'
    )
    assert (line.ip, line.method, line.target, line.status, line.size) == (
        "2001:db8::1",
        "GET",
        "/a%20b?x=1",
        404,
        0,
    )
    assert line.ts.utcoffset() == -timedelta(hours=5, minutes=30)
    assert line.referrer == 'https://r.example/"q"' and line.user_agent == 'Agent "quoted"'
    with pytest.raises(logimport.Malformed):
        logimport.parse_line(b'1.2.3.4 - - [32/Foo/2026:00:00:01 +0000] "GET / HTTP/1.1" 200 1')
