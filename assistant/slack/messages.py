"""The bot's messages as Block Kit: an answer with its sources, a handoff, a suggested reply.

Every function returns (text, blocks): `text` is the notification and fallback, `blocks` what Slack
shows. Block Kit limits are respected here (50 blocks, 3000 characters a section, 75 a button label)
so a long answer is split or shortened, never rejected by Slack. Text objects are `verbatim`: Slack
then links nothing by itself, and the only links are the ones built in mrkdwn.py.
"""

from __future__ import annotations

from typing import Any

from assistant.escalation.agent import Suggestion
from assistant.results import ChatResult
from assistant.slack.mrkdwn import SECTION_LIMIT, escape, link, split_text, to_mrkdwn, truncate

MAX_BLOCKS = 50
BUTTON_LABEL = 75
MAX_BUTTONS = 5
HUMAN_ACTION = "answerdesk_human"
LINK_ACTION = "answerdesk_link"  # link buttons: Slack opens the URL and still sends us the click
SHORTENED = "\n… _(shortened; the sources have the rest)_"

Block = dict[str, Any]


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _lines_within(heading: str, lines: list[str], limit: int = SECTION_LIMIT) -> str:
    """The heading and as many whole lines as fit."""
    text = heading
    for line in lines:
        if len(text) + 1 + len(line) > limit:
            break
        text += "\n" + line
    return text


def sources_block(citations: list[dict[str, Any]]) -> Block | None:
    if not citations:
        return None
    lines = [f"[{c['n']}] {link(c['url'], truncate(c.get('title') or c['url'], 150))}" for c in citations]
    return context(_lines_within("*Sources*", lines))


def handoff_blocks(options: list[dict[str, Any]]) -> list[Block]:
    """The configured ways to reach a human for the asker's plan: links in text, and link buttons."""
    if not options:
        return []
    lines = [f"• {link(o['url'], o['label'])}" + (f" — {escape(o['description'])}" if o.get("description") else "")
             for o in options]
    blocks = [section(_lines_within("*Other ways to reach us*", lines))]
    # Buttons only for web links: Slack rejects a button whose url is not http(s).
    buttons = [{"type": "button", "action_id": f"{LINK_ACTION}_{i}", "url": o["url"][:3000],
                "text": {"type": "plain_text", "text": truncate(o["label"], BUTTON_LABEL)}}
               for i, o in enumerate(options) if o["url"].lower().startswith(("https://", "http://"))]
    if buttons:
        blocks.append({"type": "actions", "block_id": "answerdesk_handoff", "elements": buttons[:MAX_BUTTONS]})
    return blocks


def human_button() -> Block:
    return {"type": "actions", "block_id": "answerdesk_actions", "elements": [
        {"type": "button", "action_id": HUMAN_ACTION, "value": "human",
         "text": {"type": "plain_text", "text": "Talk to a human"}}]}


def _body(mrkdwn: str, room: int) -> list[Block]:
    pieces = split_text(mrkdwn) or ["_(no answer text)_"]
    if len(pieces) > room:
        pieces = pieces[:room]
        pieces[-1] = truncate(pieces[-1], SECTION_LIMIT - len(SHORTENED), "") + SHORTENED
    return [section(p) for p in pieces]


def answer_message(result: ChatResult) -> tuple[str, list[Block]]:
    """An assistant response: the answer with [n] linked to its sources, the sources, then either the
    "Talk to a human" button or, when it was escalated already, the ways to reach a human it offers."""
    citations = [c.to_dict() for c in result.citations]
    urls = {c.n: c.url for c in result.citations}
    body = to_mrkdwn(result.answer, urls) or "I couldn't find anything about this in the documentation."
    tail = [b for b in [sources_block(citations)] if b]
    tail += handoff_blocks(result.handoff) if result.escalated else [human_button()]
    return truncate(body, SECTION_LIMIT), _body(body, MAX_BLOCKS - len(tail)) + tail


def handoff_message(reference: str, ticket_url: str | None, options: list[dict[str, Any]],
                    asked_by: str | None) -> tuple[str, list[Block]]:
    who = f"<@{asked_by}> " if asked_by else ""
    text = f"{who}I've passed this conversation to the support team (reference {escape(reference)})."
    if ticket_url:
        text += f" {link(ticket_url, 'Open the ticket')}"
    return text, [section(text), *handoff_blocks(options)]


def suggestion_message(result: Suggestion) -> tuple[str, list[Block]]:
    """Agent assist, shown to the agent only: the draft with its sources and similar resolved tickets."""
    urls = {c["n"]: c["url"] for c in result.citations}
    head = (f"*Suggested reply for {escape(result.ticket_key)}*: {escape(truncate(result.summary, 300))}\n"
            "_Only you can see this; nothing was sent to the customer._")
    tail = [b for b in [sources_block(result.citations)] if b]
    similar = [f"• {link(t.url, truncate(t.heading(), 150))} "
               f"({escape(t.resolution or 'resolved')})" for t in result.similar_tickets]
    if similar:
        tail.append(context(_lines_within("*Similar resolved tickets*", similar)))
    tail.append(context(f"Confidence {result.confidence:.2f}"))
    draft = to_mrkdwn(result.draft, urls) or "_No draft: nothing relevant was found._"
    text = f"Suggested reply for {escape(result.ticket_key)}"
    return text, [section(head), *_body(draft, MAX_BLOCKS - 1 - len(tail)), *tail]
