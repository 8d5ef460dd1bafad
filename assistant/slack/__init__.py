"""The Slack bot (HTTP events mode): answers mentions and direct messages in threads, with the same
assistant, access rules, conversations and escalation queue as the API. See docs/slack.md."""
