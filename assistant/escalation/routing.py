"""Routing rules: who asked (tier, org) and what about (the cited sources' names and labels) decide the
Jira assignee, components, priority and JSM request type of an escalation's ticket.

Rules come from ANSWERDESK_ROUTING_RULES (JSON) or the `routing` section of the sources file, never
both; they are checked whole when the queue is built, so a typo stops the start with a message naming
the rule and the field. At delivery the first rule whose every condition matches wins; no match (or
no rules) sends no assignee and Jira gives the ticket to the project's default assignee."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator
from sqlalchemy.engine import Engine

from assistant import db
from assistant.config_file import read_config_file
from assistant.errors import ConfigError

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ACTIONS = ("assignee", "components", "priority", "request_type")


def _as_list(value: Any) -> Any:
    """`tier = "paid"` and `tier = ["paid", "enterprise"]` both read naturally in a config file."""
    return [value] if isinstance(value, str) else value


class RoutingRule(BaseModel):
    """One rule: conditions (all given must match; none given matches everything) and what to set."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    tier: list[Name] = Field(default_factory=list, description="plans: paid, free, community, agent, ...")
    org: list[Name] = Field(default_factory=list)
    topic: list[Name] = Field(default_factory=list, description="a cited source's name or one of its labels")
    # Cloud: the user's accountId; Data Center: the username. The client sends the field each expects.
    assignee: Name | None = None
    # How the staff page names the assignee (an accountId means nothing to a reader); without it, the name
    # Jira shows for the ticket's assignee once delivered.
    assignee_name: Name | None = None
    components: list[Name] = Field(default_factory=list)
    priority: Name | None = None
    request_type: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")] | None = Field(
        None, description="JSM request type id (ANSWERDESK_JSM_REQUEST_TYPE_ID is the default)")

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: _as_list(v) if k in ("tier", "org", "topic", "components") else v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _does_something(self) -> RoutingRule:
        if not any(getattr(self, a) for a in ACTIONS):
            raise ValueError(f"a rule must set at least one of: {', '.join(ACTIONS)}")
        return self

    def matches(self, plan: str, org: str | None, topics: set[str]) -> bool:
        return ((not self.tier or plan in self.tier) and (not self.org or org in self.org)
                and (not self.topic or bool(topics & set(self.topic))))

    def label(self, i: int) -> str:
        return self.name or f"rule #{i}"


RULES = TypeAdapter(list[RoutingRule])


class Route(BaseModel):
    """What routing decided for one ticket (stored with the escalation; shown on the staff page)."""

    rule: str | None = None
    assignee: str | None = None
    assignee_name: str | None = None  # the rule's, or Jira's display name for `assignee` (staff page)
    components: list[str] = Field(default_factory=list)
    priority: str | None = None
    request_type: str | None = None

    @property
    def assigns(self) -> bool:
        """Whether anything beyond the request type is set (JSM sets those on the issue after creating it)."""
        return bool(self.assignee or self.components or self.priority)


def parse_rules(raw: Any, where: str) -> list[RoutingRule]:
    """Rules from JSON-like data; ConfigError naming each bad rule and field."""
    if raw is None:
        return []
    try:
        return RULES.validate_python(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            rule = f"rule #{int(loc.pop(0)) + 1}" if loc and isinstance(loc[0], int) else "routing"
            field = ".".join(str(p) for p in loc if not isinstance(p, int))
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{rule}{': ' + field if field else ''}: {msg}")
        raise ConfigError(f"Invalid routing rules in {where}:\n  " + "\n  ".join(problems)) from None


def load_rules(env_json: str, sources_file: Path | None) -> list[RoutingRule]:
    """ANSWERDESK_ROUTING_RULES, or else the sources file's `routing` section (an error when both are set:
    one of them would be silently ignored)."""
    from_file: Any = None
    if sources_file is not None and sources_file.is_file():
        from_file = read_config_file(sources_file).get("routing")
    if env_json.strip():
        if from_file is not None:
            raise ConfigError(f"Routing rules are set in ANSWERDESK_ROUTING_RULES and in {sources_file}'s `routing` "
                              "section: keep one")
        try:
            data = json.loads(env_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"ANSWERDESK_ROUTING_RULES is not valid JSON: {exc}") from None
        return parse_rules(data, "ANSWERDESK_ROUTING_RULES")
    return parse_rules(from_file, f"{sources_file} (routing)")


class Router:
    """Applies the rules to an escalation at delivery time."""

    def __init__(self, rules: list[RoutingRule], engine: Engine | None = None) -> None:
        self.rules, self.engine = rules, engine

    def route(self, role: str | None, tier: str | None, org: str | None,
              sources: Iterable[dict[str, Any]]) -> Route:
        if not self.rules:
            return Route()
        plan = tier or ("free" if role == "customer" else role or "operator")
        topics = self.topics(list(sources))
        for i, rule in enumerate(self.rules, 1):
            if rule.matches(plan, org, topics):
                return Route(rule=rule.label(i), assignee=rule.assignee, assignee_name=rule.assignee_name,
                             components=list(rule.components),
                             priority=rule.priority, request_type=rule.request_type)
        return Route()

    def topics(self, sources: list[dict[str, Any]]) -> set[str]:
        """The cited sources' names, and the labels their documents were ingested with."""
        names = {str(s["source"]) for s in sources if s.get("source")}
        docs = [(str(s["source"]), str(s["doc_id"])) for s in sources if s.get("source") and s.get("doc_id")]
        if not docs or self.engine is None:
            return names
        d = db.documents.c
        with self.engine.connect() as conn:
            metas = conn.execute(sa.select(d.meta).where(sa.tuple_(d.source, d.doc_id).in_(docs))).scalars()
            for meta in metas:
                labels = (meta or {}).get("labels") or []
                if isinstance(labels, str):  # Confluence pages keep them comma-joined
                    labels = labels.split(",")
                names |= {str(x).strip() for x in labels if str(x).strip()}
        return names
