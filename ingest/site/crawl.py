"""A published docs site as a source: robots.txt -> sitemap.xml (and nested sitemap indexes) ->
same-host pages -> conditional GETs -> main content split by headings, deep links URL#anchor.

An unchanged site costs no page downloads and no embeddings: each page's ETag / Last-Modified
from the last run goes back as If-None-Match / If-Modified-Since, and a 304 hands the pipeline
the content hash stored with those validators, so the page is skipped without being fetched.
Validators live in the `state` table (one row per page, key ``site:{source}:{url}``) and are
written only after the pipeline has stored the documents; a page the index lacks despite a 304
(a run that died half way) is simply fetched again in full, so the state can never hide content.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from assistant import db
from assistant.errors import SourceError
from assistant.services import Services
from assistant.types import AUDIENCES
from ingest.chunking import digest
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import ParseError, parse_text
from ingest.pipeline import Ingestor, IngestStats
from ingest.progress import SILENT, Progress
from ingest.site.sitemaps import (
    FetchError,
    clean_url,
    get_capped,
    host_of,
    is_sitemap_url,
    origin_of,
    read_robots,
    read_sitemaps,
)

if TYPE_CHECKING:
    from ingest.connectors import SiteSource

USER_AGENT = "answerdesk/0.1 (docs-site connector)"
ROBOTS_AGENT = "answerdesk"  # the token a site's robots.txt addresses us by (User-agent: answerdesk)
MAX_PAGE_BYTES = 20 * 1024 * 1024
MAX_CRAWL_DELAY = 30.0  # seconds; honoured up to this, so one odd robots.txt cannot stall a run for days
HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass
class SiteStats(IngestStats):
    """The pipeline's counts plus what the site cost: a second run over an unchanged site shows
    downloaded 0 and not_modified == every page."""

    downloaded: int = 0  # pages whose body came over the wire (200)
    not_modified: int = 0  # pages answered 304
    disallowed: int = 0  # skipped: robots.txt Disallow
    other_host: int = 0  # sitemap entries on another host, ignored
    not_html: int = 0  # sitemap entries that are PDFs, images ...

    def summary(self) -> str:
        extra = [f"pages downloaded {self.downloaded} / not modified {self.not_modified}"]
        extra += [f"{label} {n}" for label, n in (("disallowed by robots.txt", self.disallowed),
                                                 ("other host", self.other_host),
                                                 ("not HTML", self.not_html)) if n]
        return super().summary() + "; " + " / ".join(extra)


# --- per-page state ------------------------------------------------------------------------

class SiteState:
    """ETag / Last-Modified / content hash per page, one `state` row each, so runs stay incremental."""

    def __init__(self, engine: sa.Engine, source: str) -> None:
        self.engine = engine
        self.source = source
        self.prefix = f"site:{source}:"

    def key(self, url: str) -> str:
        key = self.prefix + url
        # The key column holds 200 characters; long URLs are named by their hash (the URL is in the value).
        return key if len(key) <= 200 else self.prefix + "sha256:" + hashlib.sha256(url.encode()).hexdigest()

    def load(self) -> dict[str, dict[str, Any]]:
        q = sa.select(db.state.c.value).where(db.state.c.key.startswith(self.prefix, autoescape=True))
        out = {}
        with self.engine.connect() as conn:
            for (value,) in conn.execute(q):
                item = json.loads(value)
                if item.get("source") == self.source:  # source "a" must not read source "a:b"'s rows
                    out[item["url"]] = item
        return out

    def save(self, changed: dict[str, dict[str, Any]], gone: Iterable[str]) -> None:
        drop = [self.key(u) for u in changed] + [self.key(u) for u in gone]
        with self.engine.begin() as conn:
            for i in range(0, len(drop), 500):
                conn.execute(db.state.delete().where(db.state.c.key.in_(drop[i:i + 500])))
            rows = [{"key": self.key(u), "value": json.dumps({**v, "source": self.source, "url": u})}
                    for u, v in changed.items()]
            if rows:
                conn.execute(db.state.insert(), rows)


# --- pages ---------------------------------------------------------------------------------

@dataclass
class _Result:
    url: str
    outcome: str  # downloaded | not_modified | failed | not_html
    ref: DocumentRef | None = None
    validators: dict[str, Any] | None = None  # to store when the run ends; None: keep what is stored


def _decode(body: bytes, response: httpx.Response) -> str:
    charset = response.charset_encoding
    if not charset:
        m = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", body[:4096], re.I)
        charset = m.group(1).decode() if m else "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _document_hash(doc: SourceDocument) -> str:
    """Of what we index, not of the raw HTML: a new build stamp in the footer is not a change."""
    parts = [f"{s.anchor}\x00{' > '.join(s.heading_path)}\x00{s.text}" for s in doc.sections]
    return digest(doc.title, doc.url, doc.audience, *parts)


class _Fetcher:
    def __init__(self, client: httpx.Client, host: tuple[str, int | None], known: dict[str, dict[str, Any]],
                 delay: float) -> None:
        self.client = client
        self.host = host
        self.known = known
        self.delay = delay
        self.lock = threading.Lock()
        self.next_at = 0.0

    def _throttle(self) -> None:
        if self.delay:  # robots.txt Crawl-delay: one request at a time, spaced out
            with self.lock:
                time.sleep(max(0.0, self.next_at - time.monotonic()))
                self.next_at = time.monotonic() + self.delay

    def fetch(self, url: str, lastmod: datetime | None) -> _Result:
        old = self.known.get(url)
        headers = {}
        if old and old.get("etag"):
            headers["If-None-Match"] = old["etag"]
        if old and old.get("last_modified"):
            headers["If-Modified-Since"] = old["last_modified"]
        try:
            self._throttle()
            response, body = get_capped(self.client, url, MAX_PAGE_BYTES, headers, host=self.host)
            if response.status_code == 304 and old:
                load = partial(self.refetch, url, lastmod)  # only if the index lacks the page
                validators = {**old, **_validators(response, old)}
                return _Result(url, "not_modified", DocumentRef(url, old["hash"], load, url),
                               validators if validators != old else None)
            doc = self._document(url, response, body, lastmod)
        except (FetchError, ParseError) as exc:
            return self._failed(url, str(exc))
        if doc is None:
            return _Result(url, "not_html")
        content_hash = _document_hash(doc)
        validators = {**_validators(response, {}), "hash": content_hash}
        return _Result(url, "downloaded", DocumentRef(url, content_hash, lambda: doc, url), validators)

    def refetch(self, url: str, lastmod: datetime | None) -> SourceDocument:
        try:
            response, body = get_capped(self.client, url, MAX_PAGE_BYTES, host=self.host)
            doc = self._document(url, response, body, lastmod)
        except FetchError as exc:
            raise ParseError(str(exc)) from None
        if doc is None:
            raise ParseError("no longer an HTML page")
        return doc

    def _failed(self, url: str, message: str) -> _Result:
        def fail() -> SourceDocument:
            raise ParseError(message)

        # An empty hash never matches a stored one, so the pipeline calls fail() and counts the page
        # as failed; it stays "seen", so its last good content stays in the index.
        return _Result(url, "failed", DocumentRef(url, "", fail, url))

    def _document(self, url: str, response: httpx.Response, body: bytes, lastmod: datetime | None
                  ) -> SourceDocument | None:
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code}")
        final = str(response.url)
        if host_of(final) != self.host:
            raise FetchError(f"redirects to another host ({final}), not indexed")
        ctype = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
        if ctype not in HTML_TYPES:
            return None
        try:
            parsed = parse_text(_decode(body, response), ".html", name=urlsplit(url).path.rstrip("/") or "index")
        except Exception as exc:  # one hostile page must not stop the run: it is reported by URL
            raise ParseError(f"cannot be parsed ({type(exc).__name__}: {exc})") from exc
        audience = str(parsed.meta.get("audience", "public")).strip().lower()
        if audience not in AUDIENCES:
            raise ParseError(f'<meta name="audience"> must be one of {", ".join(AUDIENCES)}, got {audience!r}')
        modified = response.headers.get("last-modified")
        updated = _http_date(modified) or lastmod
        meta = {k: parsed.meta[k] for k in ("description",) if k in parsed.meta}
        return SourceDocument(url, parsed.title, clean_url(final), parsed.sections, audience, updated, meta)


def _validators(response: httpx.Response, old: dict[str, Any]) -> dict[str, Any]:
    return {"etag": response.headers.get("etag") or old.get("etag"),
            "last_modified": response.headers.get("last-modified") or old.get("last_modified")}


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _fetch_all(fetcher: _Fetcher, pages: dict[str, datetime | None], concurrency: int) -> Iterator[_Result]:
    """In sitemap order, at most `concurrency` requests in flight; results are handed over as they
    come, so a large site is never held in memory."""
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="answerdesk-site")
    window: deque[Future[_Result]] = deque()
    try:
        for url, lastmod in pages.items():
            window.append(pool.submit(fetcher.fetch, url, lastmod))
            if len(window) >= 2 * concurrency:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- the source ----------------------------------------------------------------------------

def sync_site(services: Services, source: str, url: str, concurrency: int = 4,
              on_document: Callable[[str], None] | None = None, *, timeout: float = 20.0,
              on_total: Callable[[int], None] | None = None) -> SiteStats:
    """Index the same-host pages listed by the site's sitemap(s) that robots.txt allows.

    url: the site (its /sitemap.xml, then robots.txt's Sitemap: lines are tried) or a sitemap.
    Pages gone from the sitemap, or newly disallowed, are deleted; a page that fails keeps its
    last good content and is reported. Raises SourceError when nothing at all could be indexed."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise SourceError(f"Not a web address: {url!r}. Give the site's URL, e.g. https://docs.example.com/")
    if concurrency < 1:
        raise SourceError(f"concurrency must be at least 1, got {concurrency}")
    start, host, notify = url.strip(), host_of(url), on_document or (lambda _label: None)
    state = SiteState(services.store.engine, source)
    transport = httpx.HTTPTransport(retries=1, limits=httpx.Limits(max_connections=concurrency + 1))
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True,
                      headers={"User-Agent": USER_AGENT}) as client:
        robots = read_robots(client, origin_of(start))
        candidates = [start] if is_sitemap_url(start) else [start.rstrip("/") + "/sitemap.xml"]
        candidates += [s for s in robots.site_maps() or [] if host_of(s) == host and s not in candidates]
        listing = read_sitemaps(client, candidates, host)
        allowed = {u: m for u, m in listing.pages.items() if robots.can_fetch(ROBOTS_AGENT, u)}
        disallowed = len(listing.pages) - len(allowed)
        if not allowed:
            raise SourceError(
                f"No page to index from {start}: the sitemap lists {len(listing.pages)} page(s) on this host, "
                f"{disallowed} disallowed by robots.txt, {listing.other_host} entries on other hosts ignored."
                + "".join(f" {u}: {m}." for u, m in listing.failures))
        delay = min(robots.crawl_delay(ROBOTS_AGENT) or 0.0, MAX_CRAWL_DELAY)
        if on_total:
            on_total(len(allowed))
        fetcher = _Fetcher(client, host, state.load(), float(delay))
        results: list[_Result] = []

        def refs() -> Iterator[DocumentRef]:
            for result in _fetch_all(fetcher, allowed, 1 if delay else concurrency):
                results.append(result)
                if result.ref is None:
                    notify(result.url)  # not HTML: nothing to index, but the page was handled
                else:
                    yield result.ref
                    result.ref = None  # consumed: do not keep every page's text until the run ends

        # A nested sitemap that failed leaves the page list incomplete: delete nothing this time.
        ingested = Ingestor(services, source, on_document=on_document).run(
            refs(), kind="site", location=start, complete=not listing.failures, removed=())
    changed = {r.url: r.validators for r in results if r.validators is not None}
    state.save(changed, gone=[] if listing.failures else [u for u in fetcher.known if u not in allowed])
    stats = SiteStats(**{f.name: getattr(ingested, f.name) for f in fields(IngestStats)})
    stats.downloaded = sum(r.outcome in ("downloaded", "not_html") for r in results)
    stats.not_modified = sum(r.outcome == "not_modified" for r in results)
    stats.not_html = sum(r.outcome == "not_html" for r in results)
    stats.disallowed, stats.other_host = disallowed, listing.other_host
    stats.failures += listing.failures
    stats.failed += len(listing.failures)
    if not stats.seen:
        raise SourceError(f"No HTML page in the sitemap of {start} ({stats.not_html} other files skipped).")
    if stats.seen == sum(r.outcome == "failed" for r in results):
        shown = "; ".join(f"{label}: {msg}" for label, msg in stats.failures[:5])
        raise SourceError(f"No page of {start} could be fetched ({stats.failed} failed: {shown}"
                          f"{' ...' if stats.failed > 5 else ''}). Check that the site is up and retry.")
    return stats


def sync(services: Services, config: SiteSource, progress: Progress = SILENT) -> IngestStats:
    """The connector seam (ingest/connectors.py)."""
    return sync_site(services, config.name, config.url, config.concurrency, on_document=progress.advance,
                     on_total=progress.start)
