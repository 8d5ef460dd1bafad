"""The reply outbox on SQLite and PostgreSQL: recording the same events again adds nothing, and workers
racing over the same rows deliver each reply exactly once (real SMTP through aiosmtpd)."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from assistant import db
from assistant.embeddings import SentenceTransformerEmbedder
from assistant.escalation.queue import EscalationRequest, LocalQueue
from assistant.replies.events import TicketEvent, webhook_events
from tests.conftest import fresh_services
from tests.replies_setup import smtp_server


def test_workers_racing_deliver_each_reply_once(tmp_path: Path, embedder: SentenceTransformerEmbedder,
                                                 database_url: str) -> None:
    with smtp_server() as (inbox, port):
        svc = fresh_services(tmp_path, embedder, database_url=database_url, smtp_host="127.0.0.1", smtp_port=port,
                             smtp_starttls=False, reply_retry_base=0)
        engine = svc.store.engine
        keys = []
        for i in range(6):
            cid = svc.conversations.ensure(None, owner=f"widget:s{i}")
            ref = LocalQueue(engine).open(EscalationRequest(cid, f"question {i}", [], "", [], 0.1, ["low"],
                                                            contact_email=f"p{i}@example.com", notify=True))
            with engine.begin() as conn:
                conn.execute(db.escalations.update().where(db.escalations.c.id == ref.id)
                             .values(ticket_key=f"SUP-{i + 1}", status="delivered"))
            keys.append(f"SUP-{i + 1}")
        events = [TicketEvent(k, "comment", f"c{k}", f"Answer for {k}", "Dana") for k in keys]
        events += [TicketEvent(k, "resolved", "resolved") for k in keys]
        events.append(TicketEvent("OTHER-1", "comment", "c1", "not our ticket"))
        assert svc.replies.record(events) == 24  # 12 events x (conversation, e-mail); OTHER-1 is not ours
        assert svc.replies.record(events) == 0
        inbox.refuse = 3  # a few first attempts fail: retried by whichever worker comes next

        def work() -> None:
            for _ in range(20):
                svc.replies.deliver_pending()

        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        with engine.connect() as conn:
            states = conn.execute(sa.select(db.replies.c.state, sa.func.count()).group_by(db.replies.c.state)).all()
            support = conn.execute(sa.select(db.messages.c.content).where(db.messages.c.role == "support")).all()
    assert dict(states) == {"delivered": 24}
    assert len(inbox.messages) == 12 and len({(m["To"], m["Subject"]) for m in inbox.messages}) == 12
    assert len(support) == 12


def test_only_public_comments_and_done_statuses_become_events() -> None:
    issue = {"key": "SUP-1", "fields": {"status": {"statusCategory": {"key": "indeterminate"}}}}
    def comment(**extra: object) -> dict[str, object]:
        return {"timestamp": 1, "webhookEvent": "comment_created", "issue": issue,
                "comment": {"id": "7", "body": "hello", "author": {"displayName": "Dana"}, **extra}}

    assert [e.body for e in webhook_events(comment())] == ["hello"]
    for internal in ({"jsdPublic": False}, {"visibility": {"type": "role", "value": "Developers"}},
                     {"properties": [{"key": "sd.public.comment", "value": {"internal": True}}]},
                     {"body": "context\nanswerdesk escalation: 1234"}, {"body": "  "}):
        assert webhook_events(comment(**internal)) == [], internal
    done = {"timestamp": 1, "webhookEvent": "jira:issue_updated",
            "issue": {"key": "SUP-1", "fields": {"status": {"statusCategory": {"key": "done"}}}}}
    assert [e.kind for e in webhook_events(done)] == ["resolved"]
    # Back to an open status: only analytics hear of it (the ticket is no longer resolved); nobody is told.
    assert [e.kind for e in webhook_events({**done, "issue": issue})] == ["reopened"]
    assert webhook_events({"webhookEvent": "comment_created"}) == []


def test_the_askers_and_the_bots_comments_are_skipped_and_jiras_dates_kept() -> None:
    from datetime import UTC, datetime

    reporter = {"accountId": "qm:1:alex", "emailAddress": "alex@customer.example", "displayName": "Alex"}
    issue = {"key": "SUP-1", "fields": {"status": {"statusCategory": {"key": "new"}}, "reporter": reporter}}

    def comment(author: dict[str, str], created: str = "2026-12-01T10:00:00.250+0000") -> dict[str, object]:
        return {"timestamp": 1, "webhookEvent": "comment_created", "issue": issue,
                "comment": {"id": "7", "body": "hello", "author": author, "created": created}}

    assert webhook_events(comment(reporter)) == []
    assert webhook_events(comment({"name": "answerdesk-bot", "key": "JIRAUSER1"}), bot={"JIRAUSER1"}) == []
    [answer] = webhook_events(comment({"accountId": "557058:dana", "displayName": "Dana"}), bot={"JIRAUSER1"})
    assert answer.at == datetime(2026, 12, 1, 10, 0, 0, 250000, tzinfo=UTC)

    def resolved(date: str) -> str:
        fields = {"status": {"statusCategory": {"key": "done"}}, "resolutiondate": date}
        [event] = webhook_events({"timestamp": 1, "webhookEvent": "jira:issue_updated",
                                  "issue": {"key": "SUP-1", "fields": fields}})
        return event.ref

    # Two resolutions of one ticket are two events; the same one in another time zone notation is one.
    assert resolved("2026-12-01T10:00:00.000+0000") != resolved("2026-12-02T09:00:00.000+0000")
    assert resolved("2026-12-01T10:00:00.000+0000") == resolved("2026-12-01T11:00:00.000+0100")


def test_an_address_with_a_line_break_is_refused_not_injected(tmp_path: Path) -> None:
    import pytest

    from assistant.escalation.queue import EscalationRecord
    from assistant.replies.channels import EmailChannel, Reply, SendFailed
    from assistant.settings import Settings
    from assistant.store import utcnow

    settings = Settings(data_dir=tmp_path, _env_file=None, smtp_host="127.0.0.1", smtp_port=9)  # type: ignore[call-arg]
    row = EscalationRecord("c", "q", [], "", [], None, [], id="e", status="delivered", created_at=utcnow(),
                           updated_at=utcnow(), contact_email="a@example.com\nBcc: victim@example.com", notify=True)
    with pytest.raises(SendFailed) as failed:
        EmailChannel(settings).send(Reply("r", "e", "SUP-1", "comment", "hi", None, "email", 0), row, None)
    assert failed.value.permanent


def test_signatures_and_tokens_with_any_characters_are_refused_not_errors() -> None:
    from assistant.replies.events import signature_ok
    from assistant.replies.ratings import RatingTokens

    tokens = RatingTokens(b"k" * 32)
    assert tokens.escalation(tokens.token("e1")) == "e1"
    assert tokens.escalation("e1.\u00e9t\u00e9") is None and tokens.escalation("e1." + tokens.token("e2")[3:]) is None
    assert tokens.escalation("e1.\u0661\u0662.x") is None  # non-ASCII digits are not a date
    assert not tokens.expired("e1.1.forged") and tokens.expired(tokens.token("e1", made=1))
    assert not signature_ok("secret", b"{}", "sha256=\u00e9") and not signature_ok("secret", b"{}", None)


def test_after_an_upgrade_a_resolution_told_before_is_not_told_again(tmp_path: Path,
                                                                      embedder: SentenceTransformerEmbedder) -> None:
    """Resolutions were recorded as "resolved" before they carried Jira's resolutiondate: the same
    resolution seen again after the upgrade (a poll, a Resolved -> Closed update) is not sent again; the
    next one, after a reopen, is."""
    from datetime import timedelta

    from assistant.store import utcnow

    svc = fresh_services(tmp_path, embedder)
    engine = svc.store.engine
    cid = svc.conversations.ensure(None, owner="widget:s1")
    ref = LocalQueue(engine).open(EscalationRequest(cid, "question", [], "", [], 0.1, ["low"]))
    with engine.begin() as conn:
        conn.execute(db.escalations.update().where(db.escalations.c.id == ref.id)
                     .values(ticket_key="SUP-1", status="delivered"))
    resolved_at = utcnow() - timedelta(hours=2)
    assert svc.replies.record([TicketEvent("SUP-1", "resolved", "resolved")]) == 1  # told, before the upgrade
    dated = "resolved@" + resolved_at.isoformat(timespec="milliseconds")
    assert svc.replies.record([TicketEvent("SUP-1", "resolved", dated, at=resolved_at)]) == 0
    later = utcnow() + timedelta(seconds=1)  # reopened and resolved again after that
    assert svc.replies.record([TicketEvent("SUP-1", "resolved", "resolved@" + later.isoformat(), at=later)]) == 1


def test_a_rating_link_from_before_links_were_dated_says_it_expired() -> None:
    import base64
    import hashlib
    import hmac

    from assistant.replies.ratings import RatingTokens

    secret = b"k" * 32
    digest = hmac.new(secret, b"answerdesk-rating-v1:e1", hashlib.sha256).digest()
    old = "e1." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()  # as an earlier version signed it
    tokens = RatingTokens(secret)
    assert tokens.escalation(old) is None and tokens.expired(old)  # 410 "expired", not 404 "not valid"
    assert not tokens.expired("e1." + "A" * 43) and not RatingTokens(b"x" * 32).expired(old)  # forged: not valid


def test_agent_assist_only_for_new_tickets_of_the_support_project_and_never_on_our_notes() -> None:
    from assistant.replies.events import comment_event, created_ticket

    def created(key: str, **fields: object) -> dict[str, object]:
        return {"webhookEvent": "jira:issue_created", "issue": {"key": key, "fields": fields}}

    assert created_ticket(created("SUP-7"), "SUP") == "SUP-7"
    assert created_ticket(created("HR-3"), "SUP") is None  # a site-wide webhook: not our queue
    assert created_ticket(created("X-3", project={"key": "sup"}), "SUP") == "X-3"
    assert created_ticket(created("SUP-8", labels=["answerdesk"]), "SUP") is None  # ours: assisted at delivery
    note = {"id": "9", "body": "The customer asked to be e-mailed.\nanswerdesk contact update: e1 #2"}
    assert comment_event("SUP-7", note) is None  # our contact note is never an answer, even if it looks public
