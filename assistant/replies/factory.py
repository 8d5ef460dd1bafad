"""The reply outbox built from settings: the conversation always; Slack when the bot is configured;
e-mail when ANSWERDESK_SMTP_HOST is set."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from assistant.escalation.factory import jira_client_factory
from assistant.replies.account import BotAccount
from assistant.replies.channels import Channel, EmailChannel, SlackChannel, WidgetChannel
from assistant.replies.outbox import ReplyOutbox, lease_for
from assistant.replies.ratings import RatingTokens
from assistant.settings import Settings


def build_outbox(settings: Settings, engine: Engine) -> ReplyOutbox:
    s = settings
    channels: dict[str, Channel] = {"widget": WidgetChannel(engine)}
    if s.slack_bot_token is not None:
        from assistant.slack.client import web_client

        channels["slack"] = SlackChannel(engine, web_client(s))
    if s.smtp_host:
        channels["email"] = EmailChannel(s)
    return ReplyOutbox(engine, channels, RatingTokens.from_settings(s), s.public_url, s.reply_max_attempts,
                       s.reply_retry_base, lease_for(s.smtp_timeout), BotAccount(jira_client_factory(s), s.jira_user))
