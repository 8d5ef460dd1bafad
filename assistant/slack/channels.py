"""Who is asking, as far as Slack tells us: the channel decides, never the user's words.

A channel listed in ANSWERDESK_SLACK_CHANNELS has an audience; every other channel, and every direct
message, is a community channel that sees public sources only (the safe default)."""

from __future__ import annotations

from assistant.keys import COMMUNITY, Identity
from assistant.settings import SlackChannel


def channel_identity(channels: dict[str, SlackChannel], channel_id: str) -> Identity:
    conf = channels.get(channel_id)
    if conf is None or conf.audience == "public":
        return COMMUNITY
    if conf.audience == "internal":
        return Identity(role="agent")
    return Identity(role="customer", org=conf.org, tier=conf.tier or "free")
