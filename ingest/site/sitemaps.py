"""Reading a docs site's map: robots.txt (RFC 9309) and sitemap.xml, nested indexes and gzip
included, same host only (redirects to another host are refused, not followed), with size caps so
a runaway file cannot fill memory, and defusedxml so a sitemap cannot declare DTDs or entities."""

from __future__ import annotations

import gzip
import io
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from assistant.errors import SourceError

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed
MAX_SITEMAP_DEPTH = 5  # an index of indexes of ...: deeper than this is a loop or a mistake
MAX_REDIRECTS = 10


class FetchError(Exception):
    """One URL could not be fetched; the message is what the user sees next to the URL."""


# --- URLs ----------------------------------------------------------------------------------

def host_of(url: str) -> tuple[str, int | None]:
    """Host name and any non-default port: http://h and https://h are one site, h:8000 and h:9000 two."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), None if parts.port in (None, 80, 443) else parts.port


def clean_url(url: str) -> str:
    """The page itself: no fragment, surrounding blanks gone (sitemaps often indent <loc>)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_sitemap_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith((".xml", ".xml.gz", ".gz"))


def default_source_name(url: str) -> str:
    return urlsplit(url).hostname or "site"


# --- fetching ------------------------------------------------------------------------------

def _describe(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    return f"{type(exc).__name__}: {exc}"


def get_capped(client: httpx.Client, url: str, cap: int, headers: dict[str, str] | None = None,
               host: tuple[str, int | None] | None = None) -> tuple[httpx.Response, bytes]:
    """GET with a size cap, so a runaway page or sitemap cannot fill memory.

    host: follow redirects only within this host (host_of); one to another host is refused before it
    is requested, so a sitemap cannot send us to an internal address or make another site's list ours."""
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            with client.stream("GET", url, headers=headers, follow_redirects=host is None) as response:
                if host is not None and response.has_redirect_location:
                    url = urljoin(str(response.url), response.headers["location"])
                    if host_of(url) != host:
                        raise FetchError(f"redirects to another host ({clean_url(url)}), refused")
                    continue
                body = bytearray()
                for part in response.iter_bytes():
                    body += part
                    if len(body) > cap:
                        raise FetchError(f"larger than {cap // (1024 * 1024)} MB")
                return response, bytes(body)
        raise FetchError("too many redirects")
    except httpx.HTTPError as exc:
        timeout = client.timeout.read or 0.0
        raise FetchError(_describe(exc, timeout)) from exc


def read_robots(client: httpx.Client, origin: str) -> RobotFileParser:
    """RFC 9309: a 4xx robots.txt means no rules; an unreachable one means fetch nothing."""
    url = origin + "/robots.txt"
    robots = RobotFileParser(url)
    try:
        response, body = get_capped(client, url, 512 * 1024)
    except FetchError as exc:
        raise SourceError(f"Cannot read {url}: {exc}. Nothing was fetched (robots.txt must be readable "
                          "first); check that the site is up and retry.") from None
    if response.status_code >= 500:
        raise SourceError(f"{url} answered HTTP {response.status_code}. Nothing was fetched (robots.txt "
                          "must be readable first); retry when the site is healthy.")
    # A 4xx (none, or forbidden) means no rules: parsing nothing allows everything.
    robots.parse(body.decode("utf-8", "replace").splitlines() if response.status_code < 400 else [])
    return robots


# --- sitemaps ------------------------------------------------------------------------------

@dataclass
class Listing:
    pages: dict[str, datetime | None] = field(default_factory=dict)  # url -> <lastmod>, sitemap order
    other_host: int = 0
    sitemaps: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # nested sitemaps that failed


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> str | None:
    found = next((c for c in el if _local(c.tag) == name), None)
    return (found.text or "").strip() if found is not None else None


def _parse_lastmod(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fetch_sitemap(client: httpx.Client, url: str, host: tuple[str, int | None]) -> ET.Element:
    response, data = get_capped(client, url, MAX_SITEMAP_BYTES, host=host)
    if response.status_code != 200:
        raise FetchError(f"HTTP {response.status_code}")
    if data[:2] == b"\x1f\x8b":  # a .xml.gz served as a file, not as Content-Encoding
        try:
            data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(MAX_SITEMAP_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise FetchError(f"broken gzip ({exc})") from None
        if len(data) > MAX_SITEMAP_BYTES:
            raise FetchError("larger than 50 MB uncompressed")
    try:
        # The parser decides, after decoding: a byte search misses a DOCTYPE in a UTF-16 document.
        return parse_xml(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)  # type: ignore[no-any-return]
    except DefusedXmlException:  # sitemaps need no DTD; entities are an attack (billion laughs, XXE)
        raise FetchError("has a DOCTYPE or entity declarations, refused") from None
    except ET.ParseError as exc:
        raise FetchError(f"not valid XML ({exc})") from None


def read_sitemaps(client: httpx.Client, candidates: list[str], host: tuple[str, int | None]) -> Listing:
    """Breadth-first through sitemap indexes. The first readable candidate is the root; if none is,
    the run stops. A nested sitemap that fails is reported and its pages are kept, not deleted."""
    listing = Listing()
    root_errors = []
    for candidate in candidates:
        try:
            root = _fetch_sitemap(client, candidate, host)
            break
        except FetchError as exc:
            root_errors.append(f"{candidate}: {exc}")
    else:
        raise SourceError("No sitemap could be read (" + "; ".join(root_errors) + "). Pass the sitemap's own URL "
                          "(answerdesk ingest site https://HOST/path/sitemap.xml), or add a Sitemap: line to "
                          "robots.txt.")
    queue: deque[tuple[str, ET.Element | None, int]] = deque([(candidate, root, 0)])
    visited = {candidate}
    while queue:
        url, tree, depth = queue.popleft()
        if tree is None:
            try:
                tree = _fetch_sitemap(client, url, host)
            except FetchError as exc:
                listing.failures.append((url, f"sitemap not read: {exc}; the pages it lists were kept"))
                continue
        listing.sitemaps += 1
        kind = _local(tree.tag)
        if kind not in ("sitemapindex", "urlset"):
            listing.failures.append((url, f"not a sitemap (root element <{kind}>)"))
            continue
        for entry in tree:
            loc = _child(entry, "loc")
            if not loc:
                continue
            loc = urljoin(url, loc)
            if host_of(loc) != host:
                listing.other_host += 1
            elif kind == "urlset":
                listing.pages.setdefault(clean_url(loc), _parse_lastmod(_child(entry, "lastmod")))
            elif depth + 1 > MAX_SITEMAP_DEPTH:
                listing.failures.append((loc, f"sitemap nested deeper than {MAX_SITEMAP_DEPTH} levels, not read"))
            elif loc not in visited:
                visited.add(loc)
                queue.append((loc, None, depth + 1))
    return listing
