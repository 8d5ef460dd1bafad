"""Confluence spaces as a source, through atlassian-python-api's Server client (Data Center, and Cloud's v1
API under https://SITE.atlassian.net/wiki; the library's Cloud class lacks get_page_by_id and builds wrong
paths, see ../shared/contracts/atlassian/NOTES.md).

Every run lists the spaces cheaply (ids, versions, ancestors, labels, read restrictions; no bodies) and
hashes each page from that. Pages whose hash matches what is stored are not fetched at all. The changed
ones come in bulk from CQL searches for exactly their ids (a first run sweeps the spaces instead), and
any the search index has not caught up with are fetched one by one. Pages gone from the listing
(deleted, or moved out of the spaces) are removed.

Why the listing rather than `lastmodified >= last run`: the listing is needed anyway to see deletions,
and it also catches what does not touch last-modified (a new read restriction, labels), with no
time-zone guesswork (CQL reads dates in the account's zone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from assistant.atlassian.clients import Credentials, confluence_client, confluence_site
from assistant.atlassian.errors import AtlassianError, status_of
from assistant.errors import ConfigError, SourceError
from assistant.services import Services
from assistant.types import AUDIENCES
from ingest.atlassian_source import AtlassianSource
from ingest.confluence.spaces import space_audiences
from ingest.confluence.storage import storage_to_markdown
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import parse_text
from ingest.pipeline import Ingestor, IngestStats
from ingest.progress import SILENT, Progress

if TYPE_CHECKING:
    from ingest.connectors import ConfluenceSource

LIST_EXPAND = ("version,ancestors,metadata.labels,"
               "restrictions.read.restrictions.user,restrictions.read.restrictions.group")
PAGE_EXPAND = "body.storage,version,ancestors,space,metadata.labels"
CQL_EXPAND = ",".join(f"content.{e}" for e in PAGE_EXPAND.split(","))
LIST_LIMIT = 200  # Confluence may serve fewer; paging goes by what came back, never by this number
CQL_LIMIT = 50
FORMAT = "confluence-1"  # bump when the conversion changes, so every page is rebuilt once


@dataclass
class Listed:
    """A page as the cheap listing sees it."""

    id: str
    space: str
    title: str
    version: int
    ancestors: list[tuple[str, str]]  # (id, title), root first
    labels: list[str]
    own_restriction: bool
    restricted: bool = False  # own or an ancestor's read restriction (Confluence inherits view restrictions)
    audience: str = "public"
    hash: str = ""


class Client(AtlassianSource):
    """The few calls we make, with failures turned into SourceErrors that name the cause."""

    product = "Confluence"

    def __init__(self, api: Any, url: str, cloud: bool = False) -> None:
        self.api, self.url, self.cloud = api, url, cloud
        self.base = url  # replaced by the site's own _links.base once seen

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        data = self.raw_call(what, fn, *args, **kwargs)
        if not isinstance(data, dict):
            raise SourceError(f"{self.url} did not answer like the Confluence REST API ({what}): check the base URL "
                              "(Cloud: https://SITE.atlassian.net/wiki; Data Center: the address you open "
                              "Confluence at, with its context path such as /confluence).")
        return data

    def explain(self, exc: AtlassianError, what: str) -> str:
        """What a failed call's status means for a Confluence source, and what to do."""
        status = exc.status
        if status is None:
            return str(exc)  # unreachable or no answer: the adapter's message says so
        if status == 401:
            return (f"Confluence at {self.url} rejected the credentials (401 Unauthorized) on {what}. Cloud: "
                    "ANSWERDESK_CONFLUENCE_USER is the account e-mail and ANSWERDESK_CONFLUENCE_TOKEN an API token; "
                    "Data Center: a personal access token. An expired or revoked token gives this too: create a new "
                    "one. " + ("If this is Confluence Data Center, drop --cloud." if self.cloud
                               else "If this is Confluence Cloud (*.atlassian.net), add --cloud."))
        if status == 403:
            return (f"Confluence refused {what} (403 Forbidden): give the account permission to view the space, "
                    "or use a token whose scopes allow reading content.")
        if status == 404:
            return (f"Nothing at {self.url} for {what} (404 Not Found): check the base URL (Cloud: "
                    "https://SITE.atlassian.net/wiki; Data Center: including any context path such as /confluence).")
        if status == 410:
            return (f"Confluence answered 410 Gone for {what}: this API was removed for this site or kind of token "
                    "(scoped tokens via api.atlassian.com cannot use v1). Use a classic API token with the site URL.")
        if status >= 500:
            return f"Confluence at {self.url} failed with {status} on {what}; try again later."
        return f"Confluence answered {status} on {what}: {str(exc.__cause__ or exc).strip()[:300]}"

    def space(self, key: str) -> dict[str, Any]:
        """The space; on Cloud with its permissions (v1 expand), where anonymous access is a flag."""
        params = {"expand": "permissions"} if self.cloud else None
        try:
            return self.call(f"space {key}", self.api.get, f"rest/api/space/{key}", params=params)
        except SourceError as exc:
            if status_of(exc.__cause__) == 404 and _confluence_json(exc.__cause__):
                raise SourceError(f"No Confluence space with key {key!r} at {self.url} (or the account cannot see "
                                  "it): check the key under Space settings and the account's space "
                                  "permissions.") from exc
            raise

    def list_space(self, key: str) -> list[Listed]:
        pages: list[Listed] = []
        start = 0
        while True:  # start/limit by hand: the library follows _links.next without /wiki (NOTES.md trap 1)
            data = self.call(f"the page list of space {key}", self.api.get, "rest/api/content", params={
                "spaceKey": key, "type": "page", "status": "current", "start": start, "limit": LIST_LIMIT,
                "expand": LIST_EXPAND})
            self.base = str((data.get("_links") or {}).get("base") or self.base).rstrip("/")
            results = data.get("results") or []
            pages += [_listed(item, key) for item in results]
            start += len(results)
            if not results or not (data.get("_links") or {}).get("next"):
                return pages

    def cql(self, cql: str) -> Iterator[dict[str, Any]]:
        data = self.call("a CQL search", self.api.get, "rest/api/search",
                         params={"cql": cql, "limit": CQL_LIMIT, "expand": CQL_EXPAND})
        while True:
            yield from data.get("results") or []
            next_link = (data.get("_links") or {}).get("next")
            if not next_link or not data.get("results"):
                return
            # Relative to _links.base, which carries /wiki on Cloud: join it to our URL, not to the host.
            data = self.call("a CQL search", self.api.get, self.url + next_link, absolute=True)

    def page(self, page_id: str) -> dict[str, Any]:
        return self.call(f"page {page_id}", self.api.get, f"rest/api/content/{page_id}",
                         params={"expand": PAGE_EXPAND})


def _confluence_json(exc: BaseException | None) -> bool:
    """A 404 that Confluence itself wrote (JSON with its statusCode), as opposed to a wrong base URL."""
    response = getattr(exc, "response", None)  # not `or`: a 404 Response is falsy
    if response is None:
        response = getattr(getattr(exc, "reason", None), "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return False
    return isinstance(body, dict) and "statusCode" in body


def _restricted(item: dict[str, Any]) -> bool:
    read = ((item.get("restrictions") or {}).get("read") or {}).get("restrictions") or {}
    return any((read.get(kind) or {}).get("results") for kind in ("user", "group"))


def _labels(item: dict[str, Any]) -> list[str]:
    results = (((item.get("metadata") or {}).get("labels") or {}).get("results")) or []
    return sorted(str(label.get("name", "")) for label in results if label.get("name"))


def _listed(item: dict[str, Any], space: str) -> Listed:
    return Listed(
        id=str(item["id"]), space=space, title=str(item.get("title", "")),
        version=int((item.get("version") or {}).get("number", 0)),
        ancestors=[(str(a.get("id")), str(a.get("title", ""))) for a in item.get("ancestors") or []],
        labels=_labels(item), own_restriction=_restricted(item),
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()


def classify(pages: dict[str, Listed], space_audience: dict[str, str], base: str) -> None:
    """Effective restriction (own or inherited), audience and hash for every listed page."""
    for page in pages.values():
        page.restricted = page.own_restriction or any(
            pages[a].own_restriction for a, _ in page.ancestors if a in pages)
        page.audience = "internal" if page.restricted else space_audience.get(page.space, "internal")
        page.hash = _digest(FORMAT, page.id, page.space, page.version, page.title, page.audience, base,
                            " > ".join(t for _, t in page.ancestors), ",".join(page.labels))


def build_document(content: dict[str, Any], page: Listed, base: str) -> SourceDocument:
    storage = (((content.get("body") or {}).get("storage")) or {}).get("value", "")
    title = str(content.get("title") or page.title)
    parsed = parse_text(storage_to_markdown(storage), ".md", name=title)
    version = content.get("version") or {}
    when = _parse_time(version.get("when"))
    ancestors = [str(a.get("title", "")) for a in content.get("ancestors") or []]
    webui = str((content.get("_links") or {}).get("webui", f"/pages/viewpage.action?pageId={page.id}"))
    return SourceDocument(
        doc_id=page.id, title=title, url=base + webui, sections=parsed.sections, audience=page.audience,
        updated_at=when,
        meta={"space": page.space, "page_id": page.id, "version": int(version.get("number", page.version)),
              "labels": _labels(content) or page.labels, "ancestors": ancestors,
              "breadcrumb": " > ".join([*ancestors, title]), "last_modified": when.isoformat() if when else None,
              "restricted": page.restricted},
    )


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _load(client: Client, page: Listed, content: dict[str, Any] | None = None) -> SourceDocument:
    if content is None:
        try:
            content = client.page(page.id)
        except SourceError as exc:  # one page failing (deleted meanwhile, 403) is that page's failure
            raise ValueError(str(exc)) from exc
    return build_document(content, page, client.base)


def page_refs(client: Client, pages: dict[str, Listed], stale: set[str], spaces: list[str]) -> Iterator[DocumentRef]:
    """Changed pages first, their bodies in bulk from CQL searches; then the unchanged ones (never loaded)."""
    done: set[str] = set()
    if len(stale) > len(pages) / 2:  # mostly new (a first run): one sweep of the spaces
        keys = ", ".join(f'"{k}"' for k in spaces)
        queries = [f"space in ({keys}) and type = page"]
    else:  # exactly the changed pages, a search page at a time
        ids = sorted(stale, key=_numeric)
        queries = [f"id in ({', '.join(ids[i:i + CQL_LIMIT])}) and type = page" for i in range(0, len(ids), CQL_LIMIT)]
    for cql in queries if stale else []:
        for result in client.cql(cql):
            content = result.get("content") or {}
            page_id = str(content.get("id", ""))
            if page_id in stale and page_id not in done:
                done.add(page_id)
                page = pages[page_id]
                yield DocumentRef(page_id, page.hash, partial(_load, client, page, content), _label(page))
    for page_id in sorted(stale - done, key=_numeric):  # the search index can lag behind an edit
        page = pages[page_id]
        yield DocumentRef(page_id, page.hash, partial(_load, client, page), _label(page))
    for page_id in sorted(set(pages) - stale, key=_numeric):
        page = pages[page_id]
        yield DocumentRef(page_id, page.hash, partial(_load, client, page), _label(page))


def _numeric(page_id: str) -> tuple[int, str]:
    return len(page_id), page_id  # page ids are numbers as text: this sorts them as numbers, never fails


def _label(page: Listed) -> str:
    return f"{page.space}/{page.title}"


def list_spaces(client: Client, spaces: list[str]) -> tuple[dict[str, Listed], dict[str, dict[str, Any]]]:
    """The pages of every space, and each space as Confluence describes it."""
    pages: dict[str, Listed] = {}
    found: dict[str, dict[str, Any]] = {}
    for key in spaces:
        found[key] = client.space(key)
        listed = client.list_space(key)
        if not listed:
            raise SourceError(f"Confluence space {key!r} has no pages the account can see: check that it is the "
                              "right space and that the account may view its pages.")
        pages.update((p.id, p) for p in listed)
    return pages, found


def record_failure(services: Services, source: str, kind: str, location: str, exc: Exception) -> None:
    """A run that failed before any document was read still shows up in `answerdesk status`."""
    run = services.store.start_run(source, kind, location)
    services.store.finish_run(run, "failed", {}, str(exc))


def sync_confluence(services: Services, source: str, url: str, spaces: list[str], cloud: bool,
                    space_audience: dict[str, str] | None = None,
                    on_document: Callable[[str], None] | None = None) -> IngestStats:
    """Index the pages of `spaces` incrementally; raises SourceError naming the cause on any failure."""
    if not spaces:
        raise ConfigError("Name at least one Confluence space: --space KEY.")
    space_audience = {k: v.strip().lower() for k, v in (space_audience or {}).items()}
    for key, audience in space_audience.items():
        if audience not in AUDIENCES:
            raise ConfigError(f"Audience of space {key} must be one of {', '.join(AUDIENCES)}, got {audience!r}.")
    s = services.settings
    url = confluence_site(url, cloud)
    token = s.confluence_token.get_secret_value() if s.confluence_token else None
    client = Client(confluence_client(Credentials("Confluence", "CONFLUENCE", url, s.confluence_user, token, cloud)),
                    url, cloud)
    location = f"{url} spaces {','.join(spaces)}"
    try:
        pages, found = list_spaces(client, spaces)
    except SourceError as exc:
        record_failure(services, source, "confluence", location, exc)
        raise
    audiences, notes = space_audiences(client, found, space_audience)
    classify(pages, audiences, client.base)
    known = services.store.document_hashes(source)
    stale = {pid for pid, page in pages.items() if known.get(pid) != page.hash}
    removed = sorted(set(known) - set(pages))
    refs = page_refs(client, pages, stale, spaces)
    ingestor = Ingestor(services, source, on_document=on_document)
    return ingestor.run(refs, kind="confluence", location=location, complete=False, removed=removed, notes=notes)


def sync(services: Services, config: ConfluenceSource, progress: Progress = SILENT) -> IngestStats:
    """The connector seam (ingest/connectors.py)."""
    return sync_confluence(services, config.name, config.url, config.spaces, config.cloud, config.space_audience(),
                           on_document=progress.advance)
