"""The escalation parts built from settings: the queue the assistant is given, and the Jira client
escalations and agent assist use. The composition root (assistant.services) calls these."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from assistant.atlassian.clients import Credentials
from assistant.errors import ConfigError
from assistant.escalation.jira_client import JiraClient, JsmTarget
from assistant.escalation.queue import LocalQueue, TicketQueue
from assistant.escalation.routing import Router, load_rules
from assistant.settings import Settings


def jira_credentials(settings: Settings) -> Credentials:
    s = settings
    token = s.jira_token.get_secret_value() if s.jira_token else None
    return Credentials("Jira", "JIRA", s.jira_url, s.jira_user, token, s.jira_cloud,
                       hint="Or keep escalations local: ANSWERDESK_ESCALATION=local.")


def build_jira_client(settings: Settings) -> JiraClient:
    """A Jira client for escalations and agent assist; ConfigError naming the setting when one is missing."""
    s = settings
    jsm = (JsmTarget(s.jsm_service_desk_id, s.jsm_request_type_id)
           if s.jsm_service_desk_id and s.jsm_request_type_id else None)
    return JiraClient(jira_credentials(s), s.jira_issue_type, jsm, s.jira_internal_role, s.jira_timeout)


def jira_client_factory(settings: Settings) -> Callable[[], JiraClient] | None:
    """How agent assist gets a Jira client; None when no Jira is configured."""
    return (lambda: build_jira_client(settings)) if settings.jira_url else None


def build_queue(settings: Settings, engine: Engine) -> TicketQueue:
    """The local queue, or with ANSWERDESK_ESCALATION=jira the Jira outbox (credentials checked now,
    not at the first escalation)."""
    s = settings
    if s.escalation != "jira":
        return LocalQueue(engine)
    from assistant.escalation.jira_queue import JiraQueue

    if not s.jira_project and not s.jsm_service_desk_id:
        raise ConfigError("ANSWERDESK_ESCALATION=jira needs ANSWERDESK_JIRA_PROJECT (or a JSM service desk: "
                          "ANSWERDESK_JSM_SERVICE_DESK_ID and ANSWERDESK_JSM_REQUEST_TYPE_ID).")
    build_jira_client(s)  # fail at start on missing credentials, not at the first escalation
    router = Router(load_rules(s.routing_rules, s.sources_file), engine)  # and on a bad rule
    # The ticket links to the staff page (agents sign in with their key), not to an API route.
    return JiraQueue(engine, lambda: build_jira_client(s), s.jira_project or "",
                     f"{s.public_url.rstrip('/')}/staff/conversations" if s.public_url else None,
                     timeout=s.jira_timeout, settle=s.jira_search_settle, status_refresh=s.jira_status_refresh,
                     router=router)
