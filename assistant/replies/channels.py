"""Where a reply goes: the conversation (what the widget shows), the Slack thread the question came from,
and e-mail. Each `send` either delivers or raises SendFailed, saying whether trying again can help.

Ticket text is untrusted: it goes out as plain text everywhere (e-mail text/plain, Slack with its
mrkdwn control characters escaped and mentions defused, the widget renders it as text)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.escalation.queue import EscalationRecord
from assistant.settings import Settings
from assistant.store import utcnow

SUPPORT_ROLE = "support"  # the role of the team's replies in a conversation's messages
# Slack errors that a retry cannot fix: the thread or the bot's access to it is gone.
SLACK_PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
                   "account_inactive", "thread_not_found", "restricted_action", "msg_too_long", "no_text"}


class SendFailed(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Reply:
    """One row of db.replies, with what a channel needs to say it."""

    id: str
    escalation_id: str
    ticket_key: str
    kind: str  # comment | resolved
    body: str
    author: str | None
    channel: str
    attempts: int

    @classmethod
    def from_row(cls, row: Any) -> Reply:
        return cls(row.id, row.escalation_id, row.ticket_key, row.kind, row.body, row.author, row.channel,
                   row.attempts)


def resolved_text(ticket_key: str) -> str:
    return f"The support team marked your request {ticket_key} as resolved. Did this solve your problem?"


def reply_text(reply: Reply, rating_url: str | None = None) -> str:
    """The words every channel uses, plain text."""
    if reply.kind == "resolved":
        text = resolved_text(reply.ticket_key)
        return f"{text}\nAnswer here: {rating_url}" if rating_url else text
    who = f"{reply.author} from the support team" if reply.author else "The support team"
    return f"{who} replied to your request {reply.ticket_key}:\n\n{reply.body}"


class Channel(Protocol):
    name: str

    def send(self, reply: Reply, escalation: EscalationRecord, rating_url: str | None) -> None: ...


class WidgetChannel:
    """The reply becomes a message of the conversation, from "support": the widget shows it when it opens
    (GET /v1/conversations/{id}/messages). The message's id is the reply's, so delivering twice is
    impossible: a second insert is refused by the primary key and counts as delivered."""

    name = "widget"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, reply: Reply, escalation: EscalationRecord, rating_url: str | None) -> None:
        m = db.messages.c
        try:
            with self.engine.begin() as conn:
                seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(m.seq), 0)).where(
                    m.conversation_id == escalation.conversation_id)).scalar_one()
                conn.execute(db.messages.insert(), {
                    "id": reply.id, "conversation_id": escalation.conversation_id, "seq": seq + 1,
                    "role": SUPPORT_ROLE, "content": reply.body if reply.kind == "comment" else resolved_text(
                        reply.ticket_key), "search_query": None, "citations": None, "confidence": None,
                    "flags": [reply.kind, f"ticket:{reply.ticket_key}", f"escalation:{escalation.id}"]
                    + ([f"author:{reply.author}"] if reply.author else []),
                    "answerer": None, "latency_ms": None, "first_token_ms": None, "created_at": utcnow()})
                conn.execute(db.conversations.update().where(db.conversations.c.id == escalation.conversation_id)
                             .values(updated_at=utcnow()))
        except sa.exc.IntegrityError:
            with self.engine.connect() as conn:
                if conn.execute(sa.select(m.id).where(m.id == reply.id)).first() is None:
                    raise SendFailed("could not add the reply to the conversation") from None
        except sa.exc.SQLAlchemyError as exc:
            raise SendFailed(f"database: {exc.__class__.__name__}") from exc


class SlackChannel:
    """A reply in the Slack thread where the question was asked (assistant/slack keeps thread -> conversation)."""

    name = "slack"

    def __init__(self, engine: Engine, client: Any) -> None:
        self.engine, self.client = engine, client

    def thread_of(self, conversation_id: str) -> tuple[str, str] | None:
        t = db.slack_threads.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.channel_id, t.thread_ts).where(t.conversation_id == conversation_id)
                               .limit(1)).first()
        return (row.channel_id, row.thread_ts) if row else None

    def send(self, reply: Reply, escalation: EscalationRecord, rating_url: str | None) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        from assistant.slack.mrkdwn import escape, truncate

        where = self.thread_of(escalation.conversation_id)
        if where is None:
            raise SendFailed("the Slack thread of this conversation is not known", permanent=True)
        text = truncate(escape(reply_text(reply, rating_url)), 3900)
        try:
            self.client.chat_postMessage(channel=where[0], thread_ts=where[1], text=text, unfurl_links=False,
                                         unfurl_media=False)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            raise SendFailed(f"Slack: {error}", permanent=error in SLACK_PERMANENT) from exc
        except (SlackClientError, OSError) as exc:
            raise SendFailed(f"Slack: {exc.__class__.__name__}") from exc


class EmailChannel:
    """An e-mail through SMTP (STARTTLS and login when configured) to the address given at handoff. The
    Message-ID is derived from the reply, so a mail client shows a repeat as the same message."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def message(self, reply: Reply, to: str, rating_url: str | None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.s.smtp_from
        msg["To"] = to
        what = "resolved" if reply.kind == "resolved" else "an answer from the support team"
        msg["Subject"] = f"[{reply.ticket_key}] Your question: {what}"
        msg["Message-ID"] = make_msgid(idstring=reply.id, domain="answerdesk")
        text = reply_text(reply, rating_url)
        if reply.kind == "resolved" and not rating_url:
            text += "\n(Reply to this e-mail to tell us.)"
        msg.set_content(text + f"\n\nReference: {reply.ticket_key}\n")
        return msg

    def send(self, reply: Reply, escalation: EscalationRecord, rating_url: str | None) -> None:
        s = self.s
        if not escalation.contact_email or not s.smtp_host:
            raise SendFailed("no contact e-mail or no ANSWERDESK_SMTP_HOST", permanent=True)
        try:
            msg = self.message(reply, escalation.contact_email, rating_url)
        except ValueError as exc:  # e.g. an address with a line break: no header injection, no retry
            raise SendFailed(f"cannot address the e-mail: {exc}", permanent=True) from exc
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_user and s.smtp_password:
                    smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise SendFailed(f"SMTP refused the recipient: {codes}", permanent=all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            raise SendFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300],
                             permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"SMTP: {exc.__class__.__name__}: {exc}"[:300]) from exc


def conversation_replies(engine: Engine, conversation_id: str) -> list[dict[str, Any]]:
    """The support team's replies in a conversation, oldest first, with what the flags say about each."""
    m = db.messages.c
    q = (sa.select(m.id, m.content, m.flags, m.created_at).where(m.conversation_id == conversation_id,
                                                                 m.role == SUPPORT_ROLE).order_by(m.seq))
    with engine.connect() as conn:
        rows = list(conn.execute(q))
    out = []
    for row in rows:
        flags = [str(f) for f in row.flags or []]
        tagged = {k: v for k, _, v in (f.partition(":") for f in flags if ":" in f)}
        out.append({"id": row.id, "kind": flags[0] if flags else "comment", "text": row.content,
                    "author": tagged.get("author"), "ticket_key": tagged.get("ticket"),
                    "escalation_id": tagged.get("escalation"), "created_at": row.created_at})
    return out
