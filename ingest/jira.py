"""Resolved Jira tickets as a source: one document per ticket, titled "KEY: summary", holding the
description and the public comments, with personal data redacted before anything is stored.

Incremental by `updated`: every run lists the tickets cheaply (key, updated, project; Cloud pages with
nextPageToken on /rest/api/3/search/jql, Data Center with startAt on /rest/api/2/search) and hashes
them. Only tickets whose hash changed are fetched, in bulk with `key in (...)` searches (a first run
sweeps the JQL instead). Tickets gone from the JQL (reopened, moved, deleted) are removed.

A comment is indexed only when it is public: no `visibility` restriction, `jsdPublic` not false (Cloud),
and on Data Center, where the platform API does not say, listed as public by Jira Service Management.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from assistant.atlassian.adf import adf_to_text
from assistant.atlassian.clients import Credentials, jira_clients
from assistant.atlassian.errors import AtlassianError, status_of
from assistant.errors import ConfigError, SourceError
from assistant.escalation.candidates import collect_escalation_candidates
from assistant.services import Services
from assistant.types import AUDIENCES
from ingest.atlassian_source import AtlassianSource
from ingest.confluence.pages import record_failure
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import Section
from ingest.pipeline import Ingestor, IngestStats
from ingest.progress import SILENT, Progress
from ingest.redact import redact

if TYPE_CHECKING:
    from ingest.connectors import JiraSource

FIELDS = ("summary,description,comment,updated,created,resolution,resolutiondate,status,project,issuetype,"
          "reporter,assignee,labels")
PAGE = 100
FORMAT = "jira-1"  # bump when the document layout or the redaction rules change


def default_jql(projects: str | None) -> str:
    keys = [p.strip() for p in (projects or "").split(",") if p.strip()]
    if not keys:
        raise ConfigError("No JQL and no project: pass --jql, or set ANSWERDESK_JIRA_PROJECT (e.g. ABC or ABC,DEF).")
    return f"project in ({', '.join(keys)}) AND resolution is not EMPTY ORDER BY updated ASC"


class Client(AtlassianSource):
    product = "Jira"

    def __init__(self, url: str, cloud: bool, user: str | None, token: str | None) -> None:
        creds = Credentials("Jira", "JIRA", url, user, token, cloud)
        self.url, self.cloud = creds.base, cloud
        self.jira, self.desk = jira_clients(creds, timeout=60)

    def explain(self, exc: AtlassianError, what: str) -> str:
        """Our error for a failed call: what the status means for a Jira source, and what to do."""
        status = exc.status
        if status is None:
            return str(exc)  # unreachable or no answer: the adapter's message says so
        if status == 401:
            mode = ("If this is Jira Data Center, drop --cloud." if self.cloud
                    else "If this is Jira Cloud (*.atlassian.net), add --cloud.")
            return (f"Jira at {self.url} rejected the credentials (401 Unauthorized). Cloud: ANSWERDESK_JIRA_USER is "
                    "the account e-mail and ANSWERDESK_JIRA_TOKEN an API token; Data Center: a personal access "
                    f"token. Expired or revoked tokens give this too: create a new one. {mode}")
        if status == 403:
            return f"Jira refused {what} (403 Forbidden): the account needs 'Browse projects' on the projects."
        if status == 410:
            return (f"Jira at {self.url} answered 410 Gone on {what}: Jira Cloud removed /rest/api/2/search. This is "
                    "Jira Cloud: run with --cloud (or ANSWERDESK_JIRA_CLOUD=true) to use /rest/api/3/search/jql.")
        if status == 404 and what == "the ticket search" and self.cloud:
            return (f"{self.url} has no /rest/api/3/search/jql (404): that is Jira Cloud's search. For Jira Data "
                    "Center drop --cloud; otherwise check the URL (https://SITE.atlassian.net).")
        if status == 404:
            return f"Nothing at {self.url} for {what} (404 Not Found): check the Jira base URL."
        if status == 400:
            return f"Jira rejected {what} (400): {' '.join(str(exc.__cause__ or exc).split())[:400]}"
        if status >= 500:
            return f"Jira at {self.url} failed with {status} on {what}; try again later."
        return f"Jira answered {status} on {what}: {str(exc.__cause__ or exc).strip()[:300]}"

    def search(self, jql: str, fields: str) -> Iterator[dict[str, Any]]:
        """Every issue matching jql, paged the way the deployment pages."""
        if self.cloud:
            token: str | None = None
            while True:
                data = self.raw_call("the ticket search", self.jira.enhanced_jql, jql, fields=fields,
                                 nextPageToken=token, limit=PAGE)
                yield from data.get("issues") or []
                token = data.get("nextPageToken")
                if data.get("isLast", True) or not token or not data.get("issues"):
                    return
        start = 0
        while True:
            data = self.raw_call("the ticket search", self.jira.jql, jql, fields=fields, start=start, limit=PAGE)
            issues = data.get("issues") or []
            yield from issues
            start += len(issues)
            if not issues or start >= int(data.get("total", 0)):
                return

    def issue(self, key: str, org_field: str | None) -> dict[str, Any]:
        fields = FIELDS + (f",{org_field}" if org_field else "")
        return dict(self.raw_call(f"ticket {key}", self.jira.get_issue, key, fields=fields))

    def all_comments(self, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            data = self.raw_call(f"the comments of {key}", self.jira.get, f"rest/api/2/issue/{key}/comment",
                             params={"startAt": len(out), "maxResults": PAGE})
            batch = data.get("comments") or []
            out += batch
            if not batch or len(out) >= int(data.get("total", 0)):
                return out

    def public_comment_ids(self, key: str) -> set[str] | None:
        """Ids JSM lists as public; None when the ticket is not a service request (then Jira has no
        internal notes). Lower-case booleans: the library's own helper sends public=True."""
        ids: set[str] = set()
        start = 0
        while True:
            try:
                data = self.raw_call(f"the service desk comments of {key}", self.desk.get,
                                 f"rest/servicedeskapi/request/{key}/comment",
                                 params={"public": "true", "internal": "false", "start": start, "limit": PAGE},
                                 headers=self.desk.experimental_headers)
            except SourceError as exc:
                if status_of(exc.__cause__) == 404:
                    return None
                raise
            values = (data or {}).get("values") or []
            ids |= {str(v.get("id")) for v in values if v.get("public") is True}
            start += len(values)
            if not values or (data or {}).get("isLastPage", True):
                return ids

    def org_field(self) -> str | None:
        """Id of JSM's Organizations field, which differs per site; None without JSM."""
        try:
            fields = self.raw_call("the field list", self.jira.get, "rest/api/2/field")
        except SourceError:
            return None
        for f in fields if isinstance(fields, list) else []:
            if str(f.get("name", "")).lower() in ("organizations", "organisations", "organization"):
                return str(f["id"])
        return None


def wiki_to_markdown(text: str) -> str:
    """Jira wiki markup's code blocks, headings and links in Markdown form; the rest reads fine as is."""
    text = re.sub(r"\{code(?::([\w+#-]+)(?=[}|]))?[^}]*\}(.*?)\{code\}",
                  lambda m: f"```{m.group(1) or ''}\n{m.group(2).strip(chr(10))}\n```", text, flags=re.S)
    text = re.sub(r"\{noformat\}(.*?)\{noformat\}", lambda m: f"```\n{m.group(1).strip(chr(10))}\n```", text,
                  flags=re.S)
    text = re.sub(r"^h([1-6])\.\s+", lambda m: "#" * int(m.group(1)) + " ", text, flags=re.M)
    return re.sub(r"\[([^|\]\n]+)\|(https?://[^\]\s]+)\]", r"[\1](\2)", text)


def _digest(*parts: object) -> str:
    import hashlib

    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()


def _person(value: Any) -> str:
    return str(value.get("displayName") or "") if isinstance(value, dict) else ""


def _public(comment: dict[str, Any], jsm_public: set[str] | None) -> bool:
    if comment.get("visibility"):
        return False  # restricted to a role or group
    if "jsdPublic" in comment:
        return comment["jsdPublic"] is True
    return jsm_public is None or str(comment.get("id")) in jsm_public


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None


def build_ticket(client: Client, issue: dict[str, Any], audience: str, org_field: str | None) -> SourceDocument:
    f = issue.get("fields") or {}
    key = str(issue["key"])
    comments = f.get("comment") or {}
    items = list(comments.get("comments") or [])
    if int(comments.get("total", len(items))) > len(items):
        items = client.all_comments(key)
    needs_jsm = any("jsdPublic" not in c and not c.get("visibility") for c in items)
    jsm_public = client.public_comment_ids(key) if needs_jsm else None
    public = [c for c in items if _public(c, jsm_public)]
    names = [_person(f.get("reporter")), _person(f.get("assignee"))] + [_person(c.get("author")) for c in items]
    summary = redact(str(f.get("summary") or ""), names)
    title = f"{key}: {summary}"
    resolution = (f.get("resolution") or {}).get("name")
    description = redact(wiki_to_markdown(adf_to_text(f.get("description"))), names)
    thread = [f"Comment ({str(c.get('created', ''))[:10]}):\n"
              + redact(wiki_to_markdown(adf_to_text(c.get("body"))), names) for c in public]
    sections = [Section(["Description"], None, "\n\n".join(x for x in (
        f"{key}: {summary}", f"Resolution: {resolution}" if resolution else "", description) if x))]
    if thread:
        sections.append(Section(["Comments"], None, "\n\n".join(thread)))
    orgs = [str(o.get("name")) for o in (f.get(org_field) or []) if isinstance(o, dict)] if org_field else []
    updated = _time(f.get("updated"))
    return SourceDocument(
        doc_id=key, title=title, url=f"{client.url}/browse/{key}", sections=sections, audience=audience,
        updated_at=updated,
        meta={"key": key, "project": (f.get("project") or {}).get("key"), "resolution": resolution,
              "status": (f.get("status") or {}).get("name"), "resolved": f.get("resolutiondate"),
              "labels": list(f.get("labels") or []), "issue_type": (f.get("issuetype") or {}).get("name"),
              "org": orgs[0] if orgs else None, "organizations": orgs,  # chunks carry "org" for per-org filtering
              "comments_indexed": len(public), "comments_withheld": len(items) - len(public),
              # For golden eval sets: what the customer asked and the last public reply (both redacted).
              "question": "\n\n".join(x for x in (summary, description) if x)[:4000],
              "final_answer": redact(wiki_to_markdown(adf_to_text(public[-1].get("body"))), names)[:4000]
              if public else ""},
    )


def _load(client: Client, key: str, audience: str, org: Callable[[], str | None],
          issue: dict[str, Any] | None = None) -> SourceDocument:
    try:
        return build_ticket(client, issue or client.issue(key, org()), audience, org())
    except SourceError as exc:  # one ticket failing is that ticket's failure, reported at the end
        raise ValueError(str(exc)) from exc


def ticket_refs(client: Client, jql: str, listed: dict[str, tuple[str, str]],
                stale: set[str]) -> Iterator[DocumentRef]:
    org_cache: list[str | None] = []

    def org() -> str | None:
        if not org_cache:
            org_cache.append(client.org_field())
        return org_cache[0]

    done: set[str] = set()
    if len(stale) > len(listed) / 2:  # mostly new (a first run): one sweep of the JQL
        queries = [jql]
    else:  # exactly the changed tickets
        keys = sorted(stale, key=_key_order)
        queries = [f"key in ({', '.join(keys[i:i + PAGE])})" for i in range(0, len(keys), PAGE)]
    for query in queries if stale else []:
        try:
            found = list(client.search(query, FIELDS + (f",{org()}" if org() else "")))
        except SourceError:
            if query == jql:
                raise
            continue  # e.g. a ticket deleted since the listing: its batch is fetched one by one below
        for issue in found:
            key = str(issue.get("key"))
            if key in stale and key not in done:
                done.add(key)
                yield DocumentRef(key, listed[key][0], partial(_load, client, key, listed[key][1], org, issue), key)
    for key in sorted(stale - done, key=_key_order):
        yield DocumentRef(key, listed[key][0], partial(_load, client, key, listed[key][1], org), key)
    for key in sorted(set(listed) - stale, key=_key_order):
        yield DocumentRef(key, listed[key][0], partial(_load, client, key, listed[key][1], org), key)


def _key_order(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return project, int(number) if number.isdigit() else 0


def list_tickets(client: Client, jql: str, project_audience: dict[str, str]) -> dict[str, tuple[str, str]]:
    """key -> (hash, audience) for every ticket the JQL matches, from a cheap search (two fields)."""
    listed: dict[str, tuple[str, str]] = {}
    for issue in client.search(jql, "updated,project"):
        key = str(issue["key"])
        fields = issue.get("fields") or {}
        project = str((fields.get("project") or {}).get("key") or key.rpartition("-")[0])
        audience = project_audience.get(project.upper(), "internal")
        listed[key] = (_digest(FORMAT, key, fields.get("updated"), audience, client.url), audience)
    if not listed:
        raise SourceError(f"The JQL matched no tickets at {client.url}: {jql!r}. Check the project keys and that "
                          "the account may browse them.")
    return listed


def sync_jira(services: Services, source: str, url: str, jql: str | None, cloud: bool,
              project_audience: dict[str, str] | None = None,
              on_document: Callable[[str], None] | None = None) -> IngestStats:
    """Index the resolved tickets matching jql (default: resolved tickets of ANSWERDESK_JIRA_PROJECT)."""
    s = services.settings
    jql = (jql or "").strip() or default_jql(s.jira_project)
    project_audience = {k.upper(): v.strip().lower() for k, v in (project_audience or {}).items()}
    for project, audience in project_audience.items():
        if audience not in AUDIENCES:
            raise ConfigError(f"Audience of project {project} must be one of {', '.join(AUDIENCES)}, got {audience!r}.")
    token = s.jira_token.get_secret_value() if s.jira_token else None
    client = Client(url, cloud, s.jira_user, token)
    try:
        listed = list_tickets(client, jql, project_audience)
    except SourceError as exc:
        record_failure(services, source, "jira", f"{client.url} {jql}", exc)
        raise
    known = services.store.document_hashes(source)
    stale = {key for key, (h, _a) in listed.items() if known.get(key) != h}
    refs = ticket_refs(client, jql, listed, stale)
    ingestor = Ingestor(services, source, on_document=on_document)
    stats = ingestor.run(refs, kind="jira", location=f"{client.url} {jql}", complete=False,
                         removed=sorted(set(known) - set(listed)))
    # Escalations whose tickets are now resolved become candidate eval cases.
    collect_escalation_candidates(services.store)
    return stats


def sync(services: Services, config: JiraSource, progress: Progress = SILENT) -> IngestStats:
    """The connector seam (ingest/connectors.py); url and cloud left out come from the settings."""
    settings = services.settings
    url = config.url or settings.jira_url
    if not url:
        raise ConfigError("no Jira URL: set url in the sources file or ANSWERDESK_JIRA_URL")
    cloud = settings.jira_cloud if config.cloud is None else config.cloud
    return sync_jira(services, config.name, url, config.jql, cloud, dict(config.project_audience),
                     on_document=progress.advance)
