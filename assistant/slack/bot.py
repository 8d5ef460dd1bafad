"""The Slack bot: slack-bolt listeners over the same assistant, conversations and queue as the API.

Bolt acknowledges events at once (process_before_response=False) and runs listeners on its own small
thread pool. Our listeners only filter, de-duplicate and hand the slow part (answering, escalating,
agent assist) to a separate bounded pool: a button click or a slash command is then acknowledged
within Slack's 3 seconds even while every answer slot is busy, and Slack never retries for lack of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from assistant.access import access_filter
from assistant.conversations import NotFound
from assistant.errors import AnswerdeskError
from assistant.escalation.handoff import request_human
from assistant.escalation.queue import get_escalation
from assistant.keys import Identity
from assistant.services import Services
from assistant.slack.channels import channel_identity
from assistant.slack.client import web_client
from assistant.slack.messages import HUMAN_ACTION, LINK_ACTION, answer_message, handoff_message, suggestion_message
from assistant.slack.mrkdwn import SECTION_LIMIT, escape, from_slack, truncate
from assistant.slack.store import PostedAnswer, SlackStore
from assistant.widget_identity import EMAIL

log = logging.getLogger("answerdesk.slack")

RATINGS = {"+1": "up", "thumbsup": "up", "-1": "down", "thumbsdown": "down"}
# Real user messages; every other subtype (edits, deletions, joins, bot messages...) is not a question.
QUESTION_SUBTYPES = {None, "thread_broadcast", "file_share"}
TICKET_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,30}-\d{1,9}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
USAGE = "Usage: `/answerdesk suggest KEY` (for example `/answerdesk suggest SUP-123`) in an internal support channel."
EMPTY = "Ask me a question about the product, for example: _How do I set the database URL?_"


@dataclass(frozen=True)
class Question:
    team_id: str
    channel: str
    thread_ts: str
    text: str


Gate = Callable[[Identity, str], AbstractContextManager[None]]


def no_gate(_identity: Identity, _label: str) -> AbstractContextManager[None]:
    return nullcontext()


class SlackBot:
    def __init__(self, services: Services, client: WebClient | None = None, gate: Gate | None = None) -> None:
        """gate: the API's priority queue (assistant/traffic.py SlotGate), so Slack answers count
        against the same concurrency limit and paid customers' channels go first; none: the pool alone."""
        settings = services.settings
        assert settings.slack_signing_secret is not None
        self.services = services
        self.settings = settings
        self.store = SlackStore(services.store.engine)
        self.client = client or web_client(settings)
        # auth.test (who the bot is, to ignore its own messages) is called on the first event, in a worker
        # thread, rather than here: building the app must not depend on Slack being reachable.
        self.app = App(client=self.client, signing_secret=settings.slack_signing_secret.get_secret_value(),
                       token_verification_enabled=False, process_before_response=False, logger=log, name="answerdesk")
        self.gate = gate or no_gate
        # With a gate, most workers wait in the priority queue: enough of them that the queue, not this
        # pool's FIFO, decides who goes first.
        workers = settings.max_concurrent_answers * (4 if gate else 1)
        self.work = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-answer")
        self.app.event("app_mention")(self.on_mention)
        self.app.event("message")(self.on_message)
        self.app.event("reaction_added")(self.on_reaction)
        self.app.action(HUMAN_ACTION)(self.on_human)
        self.app.action(re.compile(f"^{LINK_ACTION}"))(self.on_link)
        self.app.command("/answerdesk")(self.on_command)
        self.store.forget_old_deliveries()

    def close(self) -> None:
        self.work.shutdown(wait=True, cancel_futures=True)

    # -- listeners (bolt's pool: quick) ---------------------------------------------------------
    def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if event.get("subtype") not in QUESTION_SUBTYPES or event.get("bot_id"):
            return
        self._question(body, event, context.bot_user_id)

    def on_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if event.get("subtype") not in QUESTION_SUBTYPES or event.get("bot_id") or "channel" not in event:
            return  # edits, joins and bots (this one included) are never answered: no loops
        if event.get("channel_type") == "im" or self._our_thread(body, event, context.bot_user_id):
            self._question(body, event, context.bot_user_id)

    def _our_thread(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> bool:
        """In channels only replies in a thread we answered are ours, until it went to a human: then the
        people talk, and the bot answers only when mentioned (a mention arrives as app_mention too)."""
        thread_ts = event.get("thread_ts")
        if not thread_ts or (bot_user_id and f"<@{bot_user_id}" in event.get("text", "")):
            return False
        return (self.store.thread_conversation(_team(body), event["channel"], thread_ts) is not None
                and not self.store.thread_escalated(event["channel"], thread_ts))

    def on_reaction(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        rating = RATINGS.get(str(event.get("reaction", "")).split("::")[0])  # "+1::skin-tone-3" is a +1
        if rating is None or item.get("type") != "message":
            return
        answer = self.store.answer_at(item.get("channel", ""), item.get("ts", ""))
        if answer is None:
            return  # a reaction on anything but one of our answers
        if not self._first(body, f"reaction:{answer.channel_id}:{answer.ts}:{event.get('user')}:{rating}"):
            return
        try:
            self.services.conversations.add_feedback(answer.message_id, rating, None)
        except (NotFound, AnswerdeskError) as exc:
            log.warning("could not record Slack feedback on %s: %s", answer.message_id, exc)

    def on_human(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
        user = (body.get("user") or {}).get("id")
        self._submit(self._escalate, channel, container.get("message_ts", ""), user)

    def on_link(self, ack: Ack) -> None:
        ack()  # Slack opened the link itself; the click only needs acknowledging

    def on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        words = str(command.get("text", "")).split()
        if len(words) != 2 or words[0].lower() != "suggest" or not TICKET_KEY.match(words[1].upper()):
            ack(text=USAGE)
            return
        if channel_identity(self.settings.slack_channels, command.get("channel_id", "")).role != "agent":
            ack(text="`/answerdesk suggest` only works in internal support channels: a suggested reply quotes "
                     "internal documents and tickets. This channel is not listed as `internal` in "
                     "ANSWERDESK_SLACK_CHANNELS.")
            return
        key = words[1].upper()
        ack(text=f"Drafting a suggested reply for {key}…")
        self._submit(self._suggest, key, respond)

    # -- the slow part (our pool) -----------------------------------------------------------------
    def _question(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> None:
        team, channel, ts = _team(body), event["channel"], event["ts"]
        if not self._first(body, f"message:{team}:{channel}:{ts}"):
            return
        q = Question(team, channel, event.get("thread_ts") or ts, from_slack(event.get("text", ""), bot_user_id))
        if not q.text:
            self._post(q.channel, q.thread_ts, EMPTY)
        elif len(q.text) > self.settings.max_question_chars:
            self._post(q.channel, q.thread_ts, f"That question is too long ({len(q.text)} characters; the limit is "
                                               f"{self.settings.max_question_chars}). Could you shorten it?")
        else:
            self._submit(self._answer, q)

    def _answer(self, q: Question) -> None:
        identity = self._identity(q.team_id, q.channel)
        try:
            cid = self._conversation(q, identity)
            with self.gate(identity, f"slack:{identity.plan}"):
                result = self.services.assistant.respond(q.text, cid, access_filter(identity), identity,
                                                         origin=lambda: self._where(q.channel, q.thread_ts))
        except Exception as exc:  # any failure: an apology in the thread, never silence
            if isinstance(exc, AnswerdeskError):
                log.error("answering a Slack question in %s failed: %s", q.channel, exc)
            else:
                log.exception("answering a Slack question in %s failed", q.channel)
            self._post(q.channel, q.thread_ts, _apology(exc, identity))
            return
        text, blocks = answer_message(result)  # an escalated answer carries its plan's handoff options
        ts = self._post(q.channel, q.thread_ts, text, blocks)
        if ts:
            self.store.record_answer(PostedAnswer(q.team_id, q.channel, ts, q.thread_ts, cid, result.message_id,
                                                  result.escalation_id))

    def _conversation(self, q: Question, identity: Identity) -> str:
        """The thread's conversation, started (and mapped to the thread) on its first question."""
        cid = self.store.thread_conversation(q.team_id, q.channel, q.thread_ts)
        if cid is not None:
            try:
                return self.services.conversations.ensure(cid, owner=identity.owner, staff=identity.staff)
            except NotFound:
                pass  # deleted since, or from before owners were recorded: start afresh
        cid = self.services.conversations.ensure(None, owner=identity.owner, staff=identity.staff)
        return self.store.link_thread(q.team_id, q.channel, q.thread_ts, cid)

    def _identity(self, team_id: str, channel: str) -> Identity:
        """The channel's identity, owning what it starts: a thread's conversation belongs to its channel, so
        its reference number lets nobody outside the channel read or continue it (over the API, say)."""
        return replace(channel_identity(self.settings.slack_channels, channel), session=f"slack:{team_id}/{channel}")

    def _escalate(self, channel: str, ts: str, user: str | None) -> None:
        answer = self.store.answer_at(channel, ts)
        if answer is None:
            if user:
                self._ephemeral(channel, user, None, "I can't find that answer any more; please ask again.")
            return
        if answer.escalation_id is not None or not self.store.claim(f"human:{channel}:{ts}"):
            if user:
                self._ephemeral(channel, user, answer.thread_ts,
                                "This conversation is already with the support team" + self._reference(answer) + ".")
            return
        identity = channel_identity(self.settings.slack_channels, channel)
        try:
            svc = self.services
            ref = request_human(svc.conversations, svc.queue, svc.routing, answer.conversation_id, identity,
                                self._where(channel, answer.thread_ts), self._email(user))
        except Exception as exc:
            log.exception("escalating Slack conversation %s failed", answer.conversation_id)
            self.store.release(f"human:{channel}:{ts}")  # let them try again
            self._post(channel, answer.thread_ts, _apology(exc, identity, "pass this to the support team"))
            return
        self.store.set_escalation(channel, ts, ref.id)
        text, blocks = handoff_message(ref.ticket_key or ref.id, ref.ticket_url if identity.staff else None,
                                       self.services.routing.options(identity),
                                       user if user and USER_ID.match(user) else None)
        self._post(channel, answer.thread_ts, text, blocks)

    def _email(self, user: str | None) -> str | None:
        """The clicker's profile e-mail, for the agent and for telling them of the answer; None when Slack
        does not give it (no users:read.email scope, a bot or guest, any error). Never logged."""
        if not user or not USER_ID.match(user):
            return None
        try:
            profile = (self.client.users_info(user=user).get("user") or {}).get("profile") or {}
        except SlackClientError as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.info("no e-mail from Slack users.info for an escalation: %s", error)
            return None
        email = profile.get("email")
        return email if isinstance(email, str) and EMAIL.match(email) else None

    def _suggest(self, key: str, respond: Respond) -> None:
        try:
            text, blocks = suggestion_message(self.services.agent_assist.suggest(key))
        except AnswerdeskError as exc:  # e.g. Jira not configured, unknown ticket: the message says what to do
            self._respond(respond, escape(str(exc)))
            return
        except Exception:
            log.exception("suggesting a reply for %s failed", key)
            self._respond(respond, f"Sorry, drafting a reply for {key} failed; the server log has the details.")
            return
        self._respond(respond, text, blocks)

    # -- talking to Slack: failures are logged, never raised into a worker ----------------------
    def _post(self, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
        try:
            resp = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks,
                                                unfurl_links=False, unfurl_media=False)
            return str(resp["ts"])
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.error("Slack chat.postMessage to %s failed: %s", channel, error)
            if blocks and error in ("invalid_blocks", "invalid_blocks_format", "msg_too_long"):
                return self._post(channel, thread_ts, truncate(text, SECTION_LIMIT))  # the words, unformatted
        except (SlackClientError, OSError) as exc:
            log.error("Slack chat.postMessage to %s failed: %s", channel, exc.__class__.__name__)
        return None

    def _ephemeral(self, channel: str, user: str, thread_ts: str | None, text: str) -> None:
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
        except SlackApiError as exc:
            log.warning("Slack chat.postEphemeral in %s failed: %s", channel, exc.response.get("error"))
        except (SlackClientError, OSError) as exc:
            log.warning("Slack chat.postEphemeral in %s failed: %s", channel, exc.__class__.__name__)

    def _respond(self, respond: Respond, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        try:
            sent = respond(text=text, blocks=blocks, response_type="ephemeral")
            if sent.status_code != 200:
                log.warning("Slack response_url answered %s: %s", sent.status_code, sent.body[:200])
        except (SlackClientError, OSError, ValueError) as exc:
            log.warning("Slack response_url failed: %s", exc.__class__.__name__)

    def _where(self, channel: str, thread_ts: str) -> str:
        """What an escalation records of where it came from: the thread's link when Slack gives one."""
        return f"Slack: {self._permalink(channel, thread_ts) or f'channel {channel}, thread {thread_ts}'}"

    def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except (SlackClientError, OSError, KeyError) as exc:
            log.info("no permalink for %s/%s: %s", channel, ts, exc.__class__.__name__)
            return None

    # -- helpers --------------------------------------------------------------------------------
    def _first(self, body: dict[str, Any], key: str) -> bool:
        """Claim the delivery (Slack's event_id: its retries carry the same one) and the thing it is about."""
        event_id = body.get("event_id")
        if event_id and not self.store.claim(f"event:{event_id}"):
            log.info("Slack redelivered %s; already handled", event_id)
            return False
        return self.store.claim(key)

    def _reference(self, answer: PostedAnswer) -> str:
        if answer.escalation_id is None:
            return ""
        row = get_escalation(self.services.store.engine, answer.escalation_id)
        return f" (reference {escape((row.ticket_key if row else None) or answer.escalation_id)})"

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            try:
                fn(*args)
            except Exception:  # a worker must outlive any one failure; each is logged
                log.exception("Slack task %s failed", fn.__name__)

        self.work.submit(guarded)


def _team(body: dict[str, Any]) -> str:
    return str(body.get("team_id") or (body.get("team") or {}).get("id") or "")


def _apology(exc: Exception, identity: Identity, doing: str = "answer that") -> str:
    """Staff see the cause (it names the fix); everyone else a plain apology, no internals."""
    cause = f" ({escape(truncate(str(exc), 300))})" if identity.staff and isinstance(exc, AnswerdeskError) else ""
    return f"Sorry, I couldn't {doing} just now{cause}. Please try again in a few minutes."
