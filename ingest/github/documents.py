"""Closed issues and answered discussions as documents: the question, the people's replies and the
resolution, without bots, "+1" noise or issue-template boilerplate, and with personal data redacted
(ingest/redact.py, given the logins and names of everyone involved) before anything is stored.

Issue and comment bodies are untrusted text from anyone with a GitHub account: they are indexed as
text only, never followed or executed, and a document's audience comes from the run, never from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.model import SourceDocument
from ingest.parsers import Section
from ingest.redact import redact

FORMAT = "github-1"  # bump when the document layout, the filters or the redaction rules change
MAINTAINERS = {"OWNER", "MEMBER", "COLLABORATOR"}  # author_association / authorAssociation values

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)  # issue templates leave their instructions in these
_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.S)
# @login (GitHub logins: letters, digits, single hyphens, up to 39); not @org/team, not e-mail addresses.
_MENTION = re.compile(r"(?<![\w.@/])@[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?![\w/@-])")
_WORD = re.compile(r"[a-z0-9+'-]+")
# Words that say nothing about the problem: a comment made only of these (and emoji, punctuation,
# mentions) is a reaction written as a comment.
_NOISE_TEXT = ("+1 -1 +100 1 me too same here also issue problem bug any update updates news progress on this "
               "bump bumping thanks thank you thx ty following follow subscribe subscribed subscribing please pls "
               "plz fix i am i'm im have having the a seeing getting experiencing still yes for it is there are an "
               "happening see")
_NOISE_WORDS = frozenset(_NOISE_TEXT.split())
NOISE_MAX_WORDS = 8


@dataclass(frozen=True)
class Repo:
    owner: str
    name: str
    full_name: str  # canonical OWNER/REPO as GitHub spells it now (renames followed)
    node_id: str  # stable across renames and transfers: how a moved issue is told apart
    private: bool
    has_issues: bool
    has_discussions: bool


def login(actor: Any) -> str:
    return str(actor.get("login") or "") if isinstance(actor, dict) else ""


def is_bot(actor: Any) -> bool:
    """REST users have type "Bot"; GraphQL actors are of type Bot; apps' logins end in [bot] in both."""
    if not isinstance(actor, dict):
        return False
    return actor.get("type") == "Bot" or actor.get("__typename") == "Bot" or login(actor).endswith("[bot]")


def is_noise(body: str | None) -> bool:
    """Only "+1", emoji, "same here", "any update?" and the like: nothing a reader could learn from."""
    if _CODE.search(body or ""):
        return False  # a code block or a command is content
    text = _MENTION.sub(" ", _HTML_COMMENT.sub(" ", body or "")).lower()
    words = _WORD.findall(text)
    return len(words) <= NOISE_MAX_WORDS and all(w in _NOISE_WORDS for w in words)


def clean(text: str | None, names: list[str]) -> str:
    """Template comments dropped, @mentions outside code replaced, personal data redacted."""
    parts = _CODE.split(_HTML_COMMENT.sub("", text or "").replace("\r\n", "\n"))
    # Odd parts are code (kept as written: "@property" there is a decorator, not a person).
    text = "".join(p if i % 2 else _MENTION.sub("[NAME]", p) for i, p in enumerate(parts))
    return redact(text.strip(), names)


def time_of(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _day(value: Any) -> str:
    return str(value or "")[:10]


def _people(*actors: Any) -> list[str]:
    """Logins and display names to redact. REST gives logins only; "jane-doe" also stands for "Jane Doe"."""
    names: list[str] = []
    for actor in actors:
        if isinstance(actor, dict) and not is_bot(actor):
            handle = login(actor)
            names += [handle, str(actor.get("name") or "")]
            if re.fullmatch(r"[A-Za-z]+(?:[-_][A-Za-z]+)+", handle):
                names.append(re.sub(r"[-_]", " ", handle))
    return [n for n in names if n]


def _header(key: str, title: str, lines: list[str], body: str) -> str:
    return "\n\n".join(x for x in (f"{key}: {title}", "\n".join(x for x in lines if x), body) if x)


def issue_document(repo: Repo, issue: dict[str, Any], comments: list[dict[str, Any]],
                   audience: str) -> SourceDocument:
    number = int(issue["number"])
    key = f"{repo.full_name}#{number}"
    reporter = issue.get("user")
    names = _people(reporter, issue.get("closed_by"), *(issue.get("assignees") or []),
                    *(c.get("user") for c in comments))
    kept = [c for c in comments if not is_bot(c.get("user")) and not is_noise(c.get("body"))]
    title = clean(issue.get("title"), names)
    labels = [str(lb.get("name") if isinstance(lb, dict) else lb) for lb in issue.get("labels") or []]
    resolution = issue.get("state_reason") or "closed"  # issues closed before 2022 have no state_reason
    body = clean(issue.get("body"), names)
    lines = [f"Labels: {', '.join(labels)}" if labels else "",
             f"Resolution: {resolution} ({_day(issue.get('closed_at'))})"]

    def role(c: dict[str, Any]) -> str:
        if c.get("author_association") in MAINTAINERS:
            return "Maintainer"
        return "Reporter" if login(c.get("user")) and login(c.get("user")) == login(reporter) else "Comment"

    thread = [f"{role(c)} ({_day(c.get('created_at'))}):\n{clean(c.get('body'), names)}" for c in kept]
    sections = [Section(["Issue"], None, _header(key, title, lines, body))]
    if thread:
        sections.append(Section(["Comments"], None, "\n\n".join(thread)))
    closer = login(issue.get("closed_by"))
    final = ([c for c in kept if c.get("author_association") in MAINTAINERS]
             or [c for c in kept if closer and login(c.get("user")) == closer] or kept)
    return SourceDocument(
        doc_id=f"issues/{number}", title=f"{key}: {title}", url=str(issue.get("html_url") or ""),
        sections=sections, audience=audience, updated_at=time_of(issue.get("updated_at")),
        meta={"key": key, "kind": "issue", "resolution": resolution, "labels": labels,
              "state": issue.get("state"), "closed_at": issue.get("closed_at"),
              "comments_indexed": len(kept), "comments_left_out": len(comments) - len(kept),
              # For eval golden sets and agent assist: what was asked and the closing word (both redacted).
              "question": "\n\n".join(x for x in (title, body) if x)[:4000],
              "final_answer": clean(final[-1].get("body"), names)[:4000] if final else ""},
    )


def discussion_document(repo: Repo, node: dict[str, Any], audience: str) -> SourceDocument:
    number = int(node["number"])
    key = f"{repo.full_name}#{number}"
    answer = node.get("answer") or {}
    comments = list((node.get("comments") or {}).get("nodes") or [])
    names = _people(node.get("author"), answer.get("author"), *(c.get("author") for c in comments))
    others = [c for c in comments if not c.get("isAnswer") and not is_bot(c.get("author"))
              and not is_noise(c.get("body"))]
    title = clean(node.get("title"), names)
    labels = [str(lb.get("name")) for lb in ((node.get("labels") or {}).get("nodes") or []) if lb]
    category = str((node.get("category") or {}).get("name") or "")
    body = clean(node.get("body"), names)
    lines = [f"Category: {category}" if category else "", f"Labels: {', '.join(labels)}" if labels else ""]
    answer_text = clean(answer.get("body"), names)
    sections = [Section(["Question"], None, _header(key, title, lines, body)),
                Section(["Accepted answer"], None, f"Accepted answer ({_day(answer.get('createdAt'))}):\n"
                                                   + answer_text)]
    if others:
        sections.append(Section(["Other replies"], None, "\n\n".join(
            f"Reply ({_day(c.get('createdAt'))}):\n{clean(c.get('body'), names)}" for c in others)))
    return SourceDocument(
        doc_id=f"discussions/{number}", title=f"{key}: {title}", url=str(node.get("url") or ""),
        sections=sections, audience=audience, updated_at=time_of(node.get("updatedAt")),
        meta={"key": key, "kind": "discussion", "resolution": "answered", "labels": labels,
              "category": category, "comments_indexed": len(others) + 1,
              "comments_left_out": len(comments) - len(others) - (1 if any(c.get("isAnswer") for c in comments)
                                                                    else 0),
              "question": "\n\n".join(x for x in (title, body) if x)[:4000], "final_answer": answer_text[:4000]},
    )
