"""Support analytics over real conversations written the way the API writes them: per-day counts,
deflection, feedback (the last rating per answer), coverage gaps grouped by the real model,
sources cited most, CSV export, and the admin-only API. SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from assistant import analytics, db
from assistant.analytics import Period
from assistant.api import create_app
from assistant.conversations import Conversations
from assistant.embeddings import Embedder
from assistant.escalation.queue import EscalationRequest, LocalQueue
from assistant.results import Citation
from assistant.services import Services
from tests.browser import with_web_routes
from tests.builders import chat_result, citation

NOW = datetime.now(UTC)


def cite(page: str, anchor: str = "intro", title: str = "Page") -> Citation:
    return citation(1, f"{title} — Section", f"https://docs.example/{page}#{anchor}", doc_id=page)


def exchange(engine: Engine, question: str, flags: list[str] | None = None, when: datetime | None = None,
             citations: list[Citation] | None = None) -> tuple[str, str]:
    """A question and its answer stored as the chat flow stores them; returns (conversation, answer id)."""
    convs = Conversations(engine)
    cid = convs.ensure(None)
    mid = convs.add_exchange(cid, question, question, chat_result(
        "an answer [1]", citations, confidence=0.2 if flags else 0.9, flags=flags))
    if when is not None:
        with engine.begin() as conn:
            conn.execute(db.messages.update().where(db.messages.c.conversation_id == cid).values(created_at=when))
    return cid, mid


def ask_for_human(engine: Engine, cid: str, mid: str) -> None:
    """What POST /v1/escalations records: the user pressed "Talk to a human" after answer `mid`."""
    LocalQueue(engine).open(EscalationRequest(conversation_id=cid, question="q", transcript=[], draft_answer="",
                                              sources=[], confidence=0.9, reasons=["user_requested"],
                                              requested_by_user=True, message_id=mid))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.create_engine(database_url)
    db.init_db(engine)
    yield engine
    engine.dispose()


def test_counts_deflection_and_feedback_per_day(engine: Engine) -> None:
    convs = Conversations(engine)
    two_days_ago = NOW - timedelta(days=2)
    _, answered = exchange(engine, "How do I install it?", when=two_days_ago)
    exchange(engine, "Banana bread?", ["low_confidence"], when=two_days_ago)
    cid, helped_not = exchange(engine, "How do I upgrade?")
    ask_for_human(engine, cid, helped_not)
    _, wanted_human = exchange(engine, "Let me talk to a person", ["human_requested"])
    exchange(engine, "Too old to count", ["low_confidence"], when=NOW - timedelta(days=10))
    convs.add_feedback(answered, "up", None)
    convs.add_feedback(helped_not, "down", None)
    convs.add_feedback(helped_not, "down", "the upgrade page is missing")  # a comment added later: one rating
    convs.add_feedback(wanted_human, "up", None)
    convs.add_feedback(wanted_human, "down", None)  # changed their mind: the last rating counts

    report = analytics.summary(engine, Period.last(7))

    t = report["totals"]
    assert (t["questions"], t["answered"], t["escalated"]) == (4, 1, 3)
    assert t["deflection_rate"] == 0.25 and t["human_requests"] == 1
    assert (t["thumbs_up"], t["thumbs_down"]) == (1, 2) and t["thumbs_up_rate"] == pytest.approx(1 / 3, abs=1e-4)
    days = {d["day"]: d for d in report["per_day"]}
    assert len(days) == 7 and list(days) == sorted(days)
    assert days[two_days_ago.date().isoformat()] == {"day": two_days_ago.date().isoformat(), "questions": 2,
                                                     "answered": 1, "escalated": 1, "up": 0, "down": 0}
    today = days[NOW.date().isoformat()]
    assert (today["questions"], today["escalated"], today["up"], today["down"]) == (2, 2, 1, 2)
    assert sum(d["questions"] for d in report["per_day"]) == 4
    assert report["gaps"] == []  # no embedder given: no grouping


def test_empty_period_has_no_rates(engine: Engine) -> None:
    report = analytics.summary(engine, Period.last(3))
    assert report["totals"]["questions"] == 0 and report["totals"]["deflection_rate"] is None
    assert report["totals"]["thumbs_up_rate"] is None and report["sources"] == []
    assert [d["questions"] for d in report["per_day"]] == [0, 0, 0]


def test_coverage_gaps_group_questions_by_meaning(engine: Engine, embedder: Embedder) -> None:
    for q in ("How do I reset my password?", "I forgot my password, how can I reset it?",
              "password reset is not working", "Can I export my data to CSV?", "What is the best banana bread recipe?"):
        exchange(engine, q, ["low_confidence"])
    _, mid = exchange(engine, "How to export data as a CSV file?")
    Conversations(engine).add_feedback(mid, "down", "no word about CSV in the docs")
    _, fine = exchange(engine, "How do I install answerdesk?")
    Conversations(engine).add_feedback(fine, "up", None)

    gaps = analytics.coverage_gaps(engine, Period.last(1), embedder)

    assert [g["count"] for g in gaps] == [3, 2, 1]
    assert "password" in gaps[0]["question"].lower() and gaps[0]["escalated"] == 3
    assert all("password" in q.lower() for q in gaps[0]["examples"])
    assert "csv" in gaps[1]["question"].lower()
    assert (gaps[1]["escalated"], gaps[1]["thumbs_down"]) == (1, 1)
    assert gaps[1]["comments"] == ["no word about CSV in the docs"]
    assert gaps[2]["examples"] == ["What is the best banana bread recipe?"]
    assert not any("install" in q for g in gaps for q in g["examples"])  # answered and liked: no gap
    strict = analytics.coverage_gaps(engine, Period.last(1), embedder, threshold=0.95)
    assert sorted(g["count"] for g in strict) == [1] * 6  # a stricter similarity splits every group


def test_sources_cited_most_count_pages_once_per_answer(engine: Engine) -> None:
    exchange(engine, "a", citations=[cite("config.md", "db", "Configuration"), cite("config.md", "chroma"),
                                     cite("install.md", title="Installation")])
    exchange(engine, "b", citations=[cite("config.md", "db", "Configuration")])
    exchange(engine, "c", citations=[cite("api.md", title="HTTP API")])
    sources = analytics.summary(engine, Period.last(1))["sources"]
    assert [(s["title"], s["citations"]) for s in sources][:1] == [("Configuration", 2)]
    assert sources[0]["url"] == "https://docs.example/config.md"
    assert sources[0]["top_section"] == "https://docs.example/config.md#db"
    assert {s["title"] for s in sources[1:]} == {"Installation", "HTTP API"}


def test_csv_tables_and_formula_defusing(engine: Engine, embedder: Embedder) -> None:
    exchange(engine, '=HYPERLINK("http://evil.example","click")', ["low_confidence"])
    report = analytics.summary(engine, Period.last(2), embedder)
    rows = list(csv.reader(io.StringIO(analytics.to_csv(report, "gaps"))))
    assert rows[0][:2] == ["question", "count"]
    assert rows[1][0].startswith("'=HYPERLINK") and rows[1][1] == "1"
    days = list(csv.DictReader(io.StringIO(analytics.to_csv(report, "days"))))
    assert [d["day"] for d in days] == [d["day"] for d in report["per_day"]] and days[-1]["escalated"] == "1"


def test_latency_median_when_recorded(engine: Engine) -> None:
    if "latency_ms" not in db.messages.c:
        assert analytics.summary(engine, Period.last(1))["totals"]["median_latency_ms"] is None
        pytest.skip("messages.latency_ms is not in the schema yet: median latency reported as null")
    ids = [exchange(engine, q)[1] for q in ("a", "b", "c")]
    with engine.begin() as conn:
        for mid, ms in zip(ids, (100, 900, 300), strict=True):
            conn.execute(db.messages.update().where(db.messages.c.id == mid).values(latency_ms=ms))
    assert analytics.summary(engine, Period.last(1))["totals"]["median_latency_ms"] == 300


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(with_web_routes(create_app(services=services)), raise_server_exceptions=False) as c:
        yield c


def test_analytics_api_is_for_admins_only(client: TestClient, services: Services) -> None:
    engine = services.store.engine
    exchange(engine, "Where is the upgrade guide?", ["low_confidence"],
             citations=[cite("upgrade.md", title="Upgrading")])
    admin, _ = services.keys.create("admin")
    customer, _ = services.keys.create("customer", org="acme")

    assert client.get("/v1/analytics").status_code == 403  # no key: a community user
    assert client.get("/v1/analytics", headers={"Authorization": f"Bearer {customer}"}).status_code == 403
    assert client.get("/v1/analytics", headers={"Authorization": "Bearer adk_unknown"}).status_code == 401

    auth = {"Authorization": f"Bearer {admin}"}
    r = client.get("/v1/analytics?days=7", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["totals"]["questions"] == 1 and body["totals"]["escalated"] == 1 and len(body["per_day"]) == 7
    assert body["gaps"][0]["question"] == "Where is the upgrade guide?"
    assert body["sources"][0]["title"] == "Upgrading"

    r = client.get("/v1/analytics?format=csv&table=gaps", headers={"X-API-Key": admin})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="answerdesk-gaps-')
    assert "Where is the upgrade guide?" in r.text
    assert client.get("/v1/analytics?days=0", headers=auth).status_code == 422
    assert client.get("/v1/analytics?format=xml", headers=auth).status_code == 422
    assert client.get("/v1/analytics?similarity=2", headers=auth).status_code == 422
    assert client.get("/v1/analytics?similarity=0.3", headers=auth).json()["gaps"][0]["count"] == 1

    page = client.get("/admin/analytics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/analytics" in page.text and "Questions per day" in page.text
    assert "/v1/analytics" in client.get("/openapi.json").json()["paths"]


def test_day_buckets_are_utc_calendar_days(engine: Engine) -> None:
    late = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    early = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)
    exchange(engine, "late", when=late)
    exchange(engine, "early", when=early)
    report = analytics.summary(engine, Period.last(2, datetime(2026, 3, 2, 12, tzinfo=UTC)))
    assert [(d["day"], d["questions"]) for d in report["per_day"]] == [("2026-03-01", 1), ("2026-03-02", 1)]
    with engine.connect() as conn:  # and nothing outside the period leaks in
        assert conn.execute(sa.select(sa.func.count()).select_from(db.messages)).scalar_one() == 4


def seed_escalation(engine: Engine, owner: str | None, tier: str | None, role: str, created: datetime,
                    first_response: timedelta | None = None, resolved: timedelta | None = None,
                    rating: str | None = None) -> None:
    """An escalation row as the queue records it, with the fields the Jira side fills as the ticket moves."""
    cid = Conversations(engine).ensure(None, owner=owner)
    ref = LocalQueue(engine).open(EscalationRequest(conversation_id=cid, question="q", transcript=[], draft_answer="",
                                                    sources=[], confidence=0.1, reasons=["low_confidence"],
                                                    role=role, tier=tier))
    with engine.begin() as conn:
        conn.execute(db.escalations.update().where(db.escalations.c.id == ref.id).values(
            created_at=created, first_response_at=created + first_response if first_response else None,
            resolved_at=created + resolved if resolved else None, rating=rating))


def test_resolution_per_tier_and_channel_times_and_ratings(engine: Engine) -> None:
    day = NOW - timedelta(days=1)
    h = timedelta(hours=1)
    seed_escalation(engine, "widget:s1", "paid", "customer", day, first_response=h, resolved=4 * h, rating="yes")
    seed_escalation(engine, "key:k1", "paid", "customer", day, first_response=3 * h, resolved=10 * h, rating="no")
    seed_escalation(engine, "key:k1", "paid", "customer", day)  # nobody answered yet
    seed_escalation(engine, "slack:T1/C1", None, "community", day, first_response=2 * h, resolved=2 * h)
    # A user the host site signed in (widget identity) asked in the widget too.
    seed_escalation(engine, "user:docs.example/u-7", None, "community", day, first_response=5 * h)
    seed_escalation(engine, None, None, "customer", day - timedelta(days=30), resolved=h, rating="yes")  # too old

    esc = analytics.summary(engine, Period.last(7))["escalations"]

    assert (esc["total"], esc["resolved"], esc["resolution_rate"]) == (5, 3, 0.6)
    assert esc["median_seconds_to_first_response"] == 2.5 * 3600  # 1h, 2h, 3h, 5h
    assert esc["median_seconds_to_resolution"] == 4 * 3600  # 2h, 4h, 10h
    assert esc["ratings"] == {"yes": 1, "no": 1, "unrated_resolved": 1}
    tiers = {g["tier"]: g for g in esc["by_tier"]}
    assert tiers["paid"] == {"tier": "paid", "escalations": 3, "resolved": 2, "rated_yes": 1, "rated_no": 1,
                             "resolution_rate": 0.6667}
    assert (tiers["community"]["escalations"], tiers["community"]["resolution_rate"]) == (2, 0.5)
    channels = {g["channel"]: (g["escalations"], g["resolved"]) for g in esc["by_channel"]}
    assert channels == {"widget": (2, 1), "api": (2, 1), "slack": (1, 1)}
    assert analytics.to_csv({"escalations": esc}, "tiers").splitlines()[1] == "paid,3,2,0.6667,1,1"


def test_resolution_of_an_empty_period(engine: Engine) -> None:
    esc = analytics.resolution(engine, Period.last(3))
    assert esc["total"] == 0 and esc["resolution_rate"] is None and esc["median_seconds_to_resolution"] is None
    assert esc["by_tier"] == [] and esc["by_channel"] == []


def test_analytics_api_reports_resolution(client: TestClient, services: Services) -> None:
    engine = services.store.engine
    seed_escalation(engine, "widget:s1", "paid", "customer", NOW - timedelta(hours=5),
                    first_response=timedelta(minutes=30), resolved=timedelta(hours=2), rating="yes")
    admin, _ = services.keys.create("admin")
    r = client.get("/v1/analytics?days=7", headers={"X-API-Key": admin})
    assert r.status_code == 200, r.text
    esc = r.json()["escalations"]
    assert esc["resolution_rate"] == 1.0 and esc["median_seconds_to_first_response"] == 1800
    assert esc["by_channel"] == [{"tier": None, "channel": "widget", "escalations": 1, "resolved": 1,
                                  "resolution_rate": 1.0, "rated_yes": 1, "rated_no": 0}]
    csv_text = client.get("/v1/analytics?format=csv&table=channels", headers={"X-API-Key": admin}).text
    assert csv_text.splitlines() == ["channel,escalations,resolved,resolution_rate,rated_yes,rated_no",
                                     "widget,1,1,1.0,1,0"]
