"""A local static docs site for tests: pages, robots.txt, sitemap.xml (flat or a sitemap index over
a plain and a gzipped child), ETag and Last-Modified with 304 answers, a request log, and switches
to break a page (404/500/slow), redirect a path, serve raw files, or change, add and unlist pages
while it runs.

    with StaticSite({"/docs/a.html": "<html>...", ...}, robots="User-agent: *\\nDisallow: /private/") as site:
        site.url("/")            # http://127.0.0.1:PORT/
        site.status["/docs/a.html"] = 500
        site.set_page("/docs/a.html", "<html>new</html>")   # new ETag, later Last-Modified
        site.log                 # every request: path, status, conditional headers, body bytes
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from tests.fakes import reply
from tests.servers import FakeServer, serve_handler, shut

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Request:
    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    body_bytes: int  # bytes of body sent back (0 for a 304)
    user_agent: str


class StaticSite:
    def __init__(self, pages: dict[str, str], robots: str | None = "User-agent: *\nAllow: /\n",
                 layout: str = "index", validators: str = "both", extra_urls: list[str] | None = None,
                 content_types: dict[str, str] | None = None) -> None:
        self.pages = dict(pages)
        self.modified = {path: EPOCH for path in pages}
        self.robots = robots  # None: robots.txt answers 404
        self.layout = layout  # "index": /sitemap.xml indexes two children; "flat": one urlset
        self.validators = validators  # both | etag | last-modified | none
        self.extra_urls = list(extra_urls or [])  # absolute URLs added to the sitemap as they are
        self.content_types = dict(content_types or {})
        self.unlisted: set[str] = set()  # served, but left out of the sitemap
        self.status: dict[str, int] = {}  # path -> forced status (pages, sitemaps, robots.txt)
        self.delay: dict[str, float] = {}  # path -> seconds to wait before answering
        self.redirects: dict[str, str] = {}  # path -> URL answered with 302 Found
        self.files: dict[str, tuple[str, bytes]] = {}  # path -> (content type, body), served as they are
        self.log: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- switches ------------------------------------------------------------------------
    def set_page(self, path: str, html: str) -> None:
        """Add or change a page: its ETag follows the content, its Last-Modified moves a minute on."""
        with self._lock:
            self.pages[path] = html
            self.modified[path] = max(self.modified.values(), default=EPOCH) + timedelta(minutes=1)

    def url(self, path: str = "/") -> str:
        assert self._server is not None, "start the site first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def page_requests(self) -> list[Request]:
        return [r for r in self.log if r.path in self.pages]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.max_in_flight = 0

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> StaticSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                site._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
                pass

        class Server(FakeServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected here

        self._server = serve_handler(Handler, Server)
        return self

    def __exit__(self, *exc: object) -> None:
        shut(self._server)

    # -- serving ---------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        is_page = path in self.pages
        with self._lock:
            if is_page:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay.get(path, 0.0))
            status, headers, body = self._answer(path, h.headers.get("If-None-Match"),
                                                 h.headers.get("If-Modified-Since"))
        finally:
            with self._lock:
                self.in_flight -= is_page
        with self._lock:
            self.log.append(Request(path, status, h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since"),
                                    len(body), h.headers.get("User-Agent", "")))
        reply(h, status, headers, body)

    def _answer(self, path: str, if_none_match: str | None, if_modified_since: str | None
                ) -> tuple[int, dict[str, str], bytes]:
        if path in self.status:
            return self.status[path], {"Content-Type": "text/html"}, b"<h1>error</h1>"
        if path in self.redirects:
            return 302, {"Location": self.redirects[path], "Content-Type": "text/html"}, b"<h1>moved</h1>"
        if path in self.files:
            return 200, {"Content-Type": self.files[path][0]}, self.files[path][1]
        if path == "/robots.txt":
            if self.robots is None:
                return 404, {"Content-Type": "text/plain"}, b"not found"
            return 200, {"Content-Type": "text/plain"}, self.robots.encode()
        sitemaps = self._sitemaps()
        if path in sitemaps:
            data = sitemaps[path]
            return 200, {"Content-Type": "application/xml" if path.endswith(".xml") else "application/gzip"}, data
        if path not in self.pages:
            return 404, {"Content-Type": "text/html"}, b"<h1>not found</h1>"
        with self._lock:
            html, modified = self.pages[path], self.modified[path]
        headers = {"Content-Type": self.content_types.get(path, "text/html; charset=utf-8")}
        etag = '"' + hashlib.sha1(html.encode()).hexdigest()[:16] + '"'
        if self.validators in ("both", "etag"):
            headers["ETag"] = etag
        if self.validators in ("both", "last-modified"):
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        if _not_modified(headers, if_none_match, if_modified_since, modified):
            return 304, {k: v for k, v in headers.items() if k != "Content-Type"}, b""
        return 200, headers, html.encode()

    def _sitemaps(self) -> dict[str, bytes]:
        base = self.url("")
        listed = [base + p for p in self.pages if p not in self.unlisted] + self.extra_urls
        if self.layout == "flat":
            return {"/sitemap.xml": _urlset(listed)}
        half = (len(listed) + 1) // 2
        index = (f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">'
                 f"<sitemap><loc>{base}/sitemaps/pages-1.xml</loc></sitemap>"
                 f"<sitemap><loc>{base}/sitemaps/pages-2.xml.gz</loc></sitemap></sitemapindex>")
        return {"/sitemap.xml": index.encode(), "/sitemaps/pages-1.xml": _urlset(listed[:half]),
                "/sitemaps/pages-2.xml.gz": gzip.compress(_urlset(listed[half:]))}


def _urlset(urls: list[str]) -> bytes:
    entries = "".join(f"<url><loc>\n  {escape(u)}\n</loc><lastmod>2024-01-01</lastmod></url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}">{entries}</urlset>'.encode()


def _not_modified(headers: dict[str, str], if_none_match: str | None, if_modified_since: str | None,
                  modified: datetime) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; If-Modified-Since only without it."""
    if if_none_match is not None:
        etag = headers.get("ETag")
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return etag is not None and (etag in tags or "*" in tags)
    if if_modified_since is not None and "Last-Modified" in headers:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False
