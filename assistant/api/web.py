"""What browsers load: the embeddable widget, the demo docs site, and the analytics page and API.

The demo site renders the folder in ANSWERDESK_DEMO_DOCS_DIR (make run: docs/) at /kb, with the
widget on every page and heading ids equal to the anchors ingestion puts in citation links, so a
citation opens the exact section and the conversation follows the reader from page to page.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime.

import gzip
import hashlib
import html
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markdown_it import MarkdownIt
from pydantic import BaseModel

from assistant import analytics
from assistant.api.auth import require
from assistant.api.routes import Svc
from assistant.api.schemas import Problem
from assistant.markdown_pages import FrontMatterError, heading_anchors, page_title, split_front_matter

WEB = Path(__file__).resolve().parent.parent / "web"
# Pages we render run only our own script; the widget needs nothing looser than this.
DEMO_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
RAW_HTML_CSP = ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")
SITE_TITLE = "answerdesk documentation"
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}
# Raw HTML in a Markdown page is shown as text, never run.
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")

router = APIRouter()


# -- the widget ------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _asset(name: str, mtime_ns: int) -> tuple[bytes, bytes, str]:
    body = (WEB / name).read_bytes()
    return body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.get("/widget.js", include_in_schema=False)
def widget(request: Request) -> Response:
    path = WEB / "widget.js"
    body, packed, etag = _asset(path.name, path.stat().st_mtime_ns)
    # Short max-age plus an ETag: docs sites pick up a new version within minutes, and a
    # revalidation of an unchanged file costs a 304.
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag, "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "cross-origin"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="application/javascript; charset=utf-8",
                        headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


# -- the demo docs site ----------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def demo(svc: Svc) -> HTMLResponse:
    return _page(svc.settings.demo_docs_dir, None, None, None)


@router.get("/kb/{path:path}", include_in_schema=False)
def docs_page(svc: Svc, path: str) -> Response:
    root = svc.settings.demo_docs_dir
    if root is None or not root.is_dir():
        raise HTTPException(404, "No demo docs folder: set ANSWERDESK_DEMO_DOCS_DIR")
    root = root.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or any(p.startswith(".") for p in Path(path).parts):
        raise HTTPException(404, f"No page {path}")
    suffix = target.suffix.lower()
    if suffix in (".md", ".markdown"):
        title, body = render_markdown(target.read_text("utf-8", errors="replace"), target.stem)
        return _page(root, title, body, target.relative_to(root).as_posix())
    if suffix in (".html", ".htm"):
        # A docs folder's own HTML is not ours: sandboxed into an opaque origin, with no script at all,
        # it cannot read what this origin keeps (the analytics page's admin key) or call the API as it.
        return FileResponse(target, media_type="text/html", headers={"Content-Security-Policy": RAW_HTML_CSP,
                                                                     "X-Content-Type-Options": "nosniff"})
    if suffix in IMAGE_TYPES:
        return FileResponse(target, media_type=IMAGE_TYPES[suffix], headers={"X-Content-Type-Options": "nosniff"})
    return FileResponse(target, media_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"})


def _page(root: Path | None, title: str | None, body: str | None, current: str | None) -> HTMLResponse:
    page = (WEB / "demo.html").read_text("utf-8")
    nav = "".join(
        f'<li><a href="/kb/{html.escape(rel)}"{" aria-current=page" if rel == current else ""}>'
        f"{html.escape(name)}</a></li>"
        for rel, name in _pages(root)
    )
    page = _fill(page, "nav", nav)
    # Always filled: inside <title> the slot's comment markers are not comments but text in the browser tab.
    page = _fill(page, "title", html.escape(f"{title} — {SITE_TITLE}" if title is not None else SITE_TITLE))
    if title is not None and body is not None:
        page = _fill(page, "content", body)
    return HTMLResponse(page, headers={"Content-Security-Policy": DEMO_CSP, "Cache-Control": "no-cache"})


def _fill(page: str, slot: str, value: str) -> str:
    return re.sub(rf"<!--{slot}-->.*?<!--/{slot}-->", lambda _m: value, page, count=1, flags=re.S)


def _pages(root: Path | None) -> list[tuple[str, str]]:
    if root is None or not root.is_dir():
        return []
    out = []
    for path in sorted(root.rglob("*.md"))[:200]:
        rel = path.relative_to(root).as_posix()
        if not any(p.startswith(".") for p in Path(rel).parts):
            out.append((rel, _nav_title(str(path), path.stat().st_mtime_ns)))
    return sorted(out, key=lambda p: (p[0] != "index.md", p[1].lower()))


def render_markdown(text: str, fallback_title: str) -> tuple[str, str]:
    """(title, HTML). Top-level headings get the ids ingestion uses for citation anchors (the same
    assistant.markdown_pages rules; tests/test_widget_browser.py checks that citation anchors land)."""
    meta, body = _front_matter(text)
    tokens = _MD.parse(body)
    headings = heading_anchors(tokens)
    for i, _level, _text, anchor in headings:
        tokens[i].attrSet("id", anchor)
    return page_title(meta, headings, fallback_title), _MD.renderer.render(tokens, _MD.options, {})


@lru_cache(maxsize=512)
def _nav_title(path: str, mtime_ns: int) -> str:
    """A page's title for the navigation, read as ingestion reads it; cached until the file changes."""
    file = Path(path)
    meta, body = _front_matter(file.read_text("utf-8", errors="replace"))
    return page_title(meta, heading_anchors(_MD.parse(body)), file.stem)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Front matter as ingestion reads it; a page whose front matter ingestion rejects is shown as is."""
    text = text.replace("\r\n", "\n")
    try:
        return split_front_matter(text)
    except FrontMatterError:
        return {}, text


# -- analytics -------------------------------------------------------------------------------------
class DayRow(BaseModel):
    day: str
    questions: int
    answered: int
    escalated: int
    up: int
    down: int


class Gap(BaseModel):
    question: str
    count: int
    escalated: int
    thumbs_down: int
    examples: list[str]
    comments: list[str]
    last_asked: datetime


class CitedSource(BaseModel):
    title: str
    url: str
    citations: int
    top_section: str


class Totals(BaseModel):
    questions: int
    answered: int
    escalated: int
    deflection_rate: float | None
    human_requests: int
    thumbs_up: int
    thumbs_down: int
    thumbs_up_rate: float | None
    median_latency_ms: float | None
    median_first_token_ms: float | None


class ResolutionGroup(BaseModel):
    tier: str | None = None
    channel: str | None = None  # widget | slack | api | operator
    escalations: int
    resolved: int
    resolution_rate: float | None
    rated_yes: int
    rated_no: int


class Ratings(BaseModel):
    yes: int
    no: int
    unrated_resolved: int


class Resolution(BaseModel):
    """Escalations opened in the period and what became of them (resolved_at, first_response_at and
    rating are filled as the ticket moves in Jira)."""

    total: int
    resolved: int
    resolution_rate: float | None
    median_seconds_to_first_response: float | None
    median_seconds_to_resolution: float | None
    ratings: Ratings
    by_tier: list[ResolutionGroup]
    by_channel: list[ResolutionGroup]


class AnalyticsPeriod(BaseModel):
    since: datetime
    until: datetime
    days: int


class Analytics(BaseModel):
    period: AnalyticsPeriod
    totals: Totals
    per_day: list[DayRow]
    escalations: Resolution
    gaps: list[Gap]
    sources: list[CitedSource]


@router.get("/admin/analytics", include_in_schema=False)
def analytics_page() -> FileResponse:
    # The page itself is public: it holds no data, and asks for an admin key to fetch it.
    return FileResponse(WEB / "analytics.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"})


@router.get(
    "/v1/analytics",
    response_model=Analytics,
    dependencies=[require("admin")],
    tags=["analytics"],
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or with format=csv one table as CSV"},
        401: {"model": Problem, "description": "Unknown or revoked API key"},
        403: {"model": Problem, "description": "Not an admin key"},
    },
)
def analytics_report(
    svc: Svc,
    response: Response,
    days: Annotated[int, Query(ge=1, le=366, description="The last N days, today included (UTC).")] = 30,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
    table: Annotated[Literal["days", "gaps", "sources", "tiers", "channels"],
                     Query(description="With format=csv: which table.")] = "days",
    similarity: Annotated[float, Query(ge=0.3, le=0.95, description="Cosine similarity at which questions are "
                                       "grouped into one coverage gap; lower groups more.")] = analytics.GAP_SIMILARITY,
) -> Any:
    """Questions per day, deflection, feedback, latency, escalations' resolution (per tier and channel, time
    to first human answer and to resolution, ratings), coverage gaps and the sources cited most (admin)."""
    needs_gaps = fmt == "json" or table == "gaps"
    report = analytics.summary(svc.store.engine, analytics.Period.last(days),
                               svc.embedder if needs_gaps else None, similarity=similarity)
    if fmt == "csv":
        name = f"answerdesk-{table}-{report['period']['until'][:10]}.csv"
        return Response(analytics.to_csv(report, table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    response.headers["Cache-Control"] = "no-store"
    return report
