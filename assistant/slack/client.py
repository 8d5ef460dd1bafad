"""The Slack Web API client, built from settings: the bot and reply delivery (assistant/replies) share it."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from assistant.settings import Settings


def web_client(settings: Settings) -> WebClient:
    """slack_sdk's client with retries for rate limits (429: Slack did nothing, waiting Retry-After is
    safe) and dropped connections. Not for 5xx: a retried chat.postMessage could post twice."""
    assert settings.slack_bot_token is not None
    retries = [ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)]
    return WebClient(token=settings.slack_bot_token.get_secret_value(),
                     base_url=settings.slack_api_url.rstrip("/") + "/", timeout=15, retry_handlers=retries)
