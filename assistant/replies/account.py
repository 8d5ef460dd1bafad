"""Answerdesk's own Jira account, as comment authors name it: its comments (the context comment, agent
assist's note, anything else posted with its token) are never the support team's answer.

Jira Cloud may hide an account's e-mail, so the account is read once from `/myself` (accountId on
Cloud, username and key on Data Center). Until that succeeds the configured user (e-mail or username)
stands in (on Cloud and Data Center alike Jira shows it where the account's profile allows), and the
lookup is tried again at most once a minute."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from assistant.errors import AnswerdeskError
from assistant.escalation.jira_client import JiraClient
from assistant.replies.events import person_ids

log = logging.getLogger("answerdesk.replies")
RETRY_S = 60.0


class BotAccount:
    def __init__(self, client_factory: Callable[[], JiraClient] | None, configured_user: str | None) -> None:
        self.client_factory = client_factory
        self.configured = frozenset({configured_user, configured_user.lower()}) if configured_user else frozenset()
        self._known: frozenset[str] | None = None
        self._tried = -RETRY_S
        self._lock = threading.Lock()

    @property
    def known(self) -> bool:
        """Read from Jira already, or nothing to read it with: nothing left to look up."""
        return self._known is not None or self.client_factory is None

    def ids(self, fetch: bool = True) -> frozenset[str]:
        """fetch=False: what is known now, never a Jira call (the webhook answers without waiting on
        Jira; the reply worker does the lookup)."""
        with self._lock:
            if self._known is not None or self.client_factory is None or not fetch:
                return self._known or self.configured
            if time.monotonic() - self._tried < RETRY_S:
                return self.configured
            self._tried = time.monotonic()
            try:
                found = person_ids(self.client_factory().myself())
            except AnswerdeskError as exc:
                log.warning("Jira account of answerdesk not read (%s): its comments are recognised by "
                            "ANSWERDESK_JIRA_USER only", exc)
                return self.configured
            self._known = found | self.configured
            return self._known
