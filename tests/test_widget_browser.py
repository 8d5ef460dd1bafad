"""The chat widget in a real browser (Debian's Chromium via Playwright) against the real app on a
free port, over the bundled docs: streamed cited answers whose links open the exact section, the
unsure state and the human handoff, feedback that shows up in analytics, markup in sources shown
as text, keyboard-only use, a phone-sized viewport, and embedding on another origin (CORS).

Without Chromium or the playwright package the browser tests skip and say how to get them."""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.api import create_app
from assistant.embeddings import Embedder
from assistant.escalation.queue import get_escalation
from assistant.services import Services
from assistant.settings import Settings
from tests.browser import chromium, with_web_routes
from tests.conftest import ROOT, free_port, index_docs
from tests.servers import serve, serve_handler, shut
from tests.test_analytics import seed_escalation

BUBBLE = "Ask a question about these docs"
HOSTILE = """---
title: Zanzibar <img src=x onerror="window.__pwned='title'"> notes
audience: public
---
# Zanzibar gateway logs

The zanzibar gateway logs <script>window.__pwned='script'</script> and <img src=x onerror="window.__pwned='img'"> \
exactly as received, so zanzibar log lines may contain markup.
Before you restart the zanzibar gateway, read the [zanzibar manual](javascript:window.__pwned='link') first.
"""


@dataclass
class Site:
    url: str
    services: Services
    other_port: int  # a second local origin that embeds the widget


IDENTITY_SECRET = "the-host-sites-widget-secret-0123456789"
HANDOFF = {"default": [{"label": "Ask in the community forum", "url": "https://forum.example/c/help"}]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    port, other_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    # Until Settings has cors_origins this is ignored, and the cross-origin test says so.
    cors: dict[str, Any] = {"cors_origins": [f"http://127.0.0.1:{other_port}"]}
    # One browser asks every question of this module: the community rate limit is not under test here.
    limits = {"community": 10_000, "free": 10_000, "paid": 10_000, "agent": 10_000, "admin": 10_000}
    settings = Settings(data_dir=tmp_path_factory.mktemp("widget"), demo_docs_dir=ROOT / "docs",  # type: ignore[call-arg]
                        rate_limits=limits, _env_file=None, handoff_options=HANDOFF, **cors,
                        widget_identity_secret=IDENTITY_SECRET, widget_identity_audience="docs.example")
    services = Services(settings, embedder=embedder)
    index_docs(services, ROOT / "docs", base_url=f"{url}/kb")  # citation links open the demo site
    hostile = tmp_path_factory.mktemp("hostile")
    (hostile / "zanzibar.md").write_text(HOSTILE)
    index_docs(services, hostile, source="hostile", base_url=f"{url}/kb/hostile")
    with serve(with_web_routes(create_app(services=services)), port) as served:
        yield Site(served, services, other_port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def ask(page: Any, question: str) -> Any:
    """Type a question into the open widget, press Enter, return the finished answer."""
    n = page.locator("article.msg.bot").count()
    box = page.get_by_label("Your question")
    box.fill(question)
    box.press("Enter")
    answer = page.locator("article.msg.bot").nth(n)
    expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
    return answer


def focused(page: Any) -> dict[str, str]:
    """The focused element, looking inside the widget's shadow root."""
    return page.evaluate("""() => {
        let a = document.activeElement;
        while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
        return a ? {id: a.id, label: a.getAttribute("aria-label") || "", tag: a.tagName} : {};
    }""")  # type: ignore[no-any-return]


def stored_state(page: Any, site: Site) -> dict[str, Any]:
    return json.loads(page.evaluate(f"sessionStorage.getItem({json.dumps('answerdesk:' + site.url)})"))  # type: ignore[no-any-return]


def sse_events(body: str) -> list[tuple[str, Any]]:
    out = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_answer_streams_and_its_citation_opens_the_section(page: Any, site: Site) -> None:
    question = "How do I point answerdesk at a PostgreSQL database?"
    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    with page.expect_response("**/v1/chat") as response:
        answer = ask(page, question)
    events = sse_events(response.value.text())
    deltas = [d["text"] for kind, d in events if kind == "delta"]
    done = events[-1][1]
    assert len(deltas) > 1 and events[-1][0] == "done"
    shown = " ".join(answer.locator(".body").inner_text().split())
    assert re.sub(r"`|\s*\[\d+\]", "", deltas[0]).strip()[:60] in shown
    marks = page.evaluate("Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))")
    assert marks["answerdesk:ask"] < marks["answerdesk:first-token"] <= marks["answerdesk:done"]

    link = answer.locator("a.cite").first
    href = link.get_attribute("href")
    assert href == done["citations"][0]["url"] and href.startswith(f"{site.url}/kb/configuration.md#")
    assert link.get_attribute("aria-label").startswith("Source 1: Configuration")
    assert link.get_attribute("target") is None  # same site: the reader stays in this tab
    link.click()
    page.wait_for_url(href)
    anchor = href.split("#", 1)[1]
    expect(page.locator(f"main [id='{anchor}']")).to_be_in_viewport()

    # The new page's widget carries the conversation on, open, with the cited answer.
    expect(page.get_by_role("dialog", name="Ask the docs")).to_be_visible()
    expect(page.locator(".msg.user")).to_have_text([question])
    expect(page.locator("article.msg.bot a.cite").first).to_have_attribute("href", href)
    cid = stored_state(page, site)["cid"]
    assert cid == done["conversation_id"]
    ask(page, "How do I use SQLite instead?")
    assert stored_state(page, site)["cid"] == cid
    assert len(site.services.conversations.messages(cid)) == 4
    page.get_by_role("button", name="Close chat").click()
    page.screenshot(path="/tmp/widget-docs-page.png")


def test_off_topic_question_is_unsure_and_can_go_to_a_human(page: Any, site: Site) -> None:
    question = "How tall is Mount Everest?"  # nothing in the docs
    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    answer = ask(page, question)
    expect(answer).to_have_class(re.compile(r"\bunsure\b"))
    banner = answer.locator(".banner")
    expect(banner).to_contain_text("Not sure")
    auto = get_escalation(site.services.store.engine, banner.locator("code").inner_text())
    assert auto is not None and auto.question == question and not auto.requested_by_user
    forum = banner.get_by_role("link", name="Ask in the community forum")  # the plan's other way to a human
    expect(forum).to_have_attribute("href", HANDOFF["default"][0]["url"])
    page.screenshot(path="/tmp/widget-unsure.png")

    page.locator("footer").get_by_role("button", name="Talk to a human").click()
    offer = page.locator("form.handoff-offer")
    mail = offer.get_by_label("Email me the answer")
    expect(mail).to_be_editable()  # nobody is signed in: the visitor types an address, if they want to
    mail.fill("visitor@example.org")
    offer.get_by_role("checkbox").check()  # consent is explicit
    offer.get_by_role("button", name="Send to the support team").click()
    handoff = page.locator(".handoff").filter(has_text="Your reference")
    expect(handoff).to_contain_text("We will email the answer to visitor@example.org.")
    requested = get_escalation(site.services.store.engine, handoff.locator("code").inner_text())
    assert requested is not None and requested.requested_by_user
    assert (requested.contact_email, requested.notify) == ("visitor@example.org", True)
    assert requested.conversation_id == auto.conversation_id and requested.question == question
    page.reload()  # the panel comes back open, and the reference stays in the transcript
    expect(page.get_by_role("dialog", name="Ask the docs")).to_be_visible()
    expect(page.locator(".handoff code")).to_have_text(requested.id)
    expect(page.locator(".handoff").get_by_role("link", name="Ask in the community forum")).to_be_visible()


def test_feedback_shows_up_in_analytics(page: Any, site: Site) -> None:
    question = "How do I stream answers from the API?"
    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    answer = ask(page, question)
    page.screenshot(path="/tmp/widget-answer.png")
    down = answer.get_by_role("button", name="Not helpful")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    comment = answer.get_by_label("Comment (optional)")
    expect(comment).to_be_focused()
    comment.fill("Show a JavaScript example please")
    answer.get_by_role("button", name="Send").click()
    expect(answer.locator(".thanks")).to_have_text("Thanks, comment sent.")
    page.reload()  # the rating is part of the kept transcript
    expect(page.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")

    key, _ = site.services.keys.create("admin")
    assert page.request.get(site.url + "/v1/analytics").status == 403
    body = page.request.get(site.url + "/v1/analytics", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["totals"]["thumbs_down"] >= 1
    gap = next(g for g in body["gaps"] if question in g["examples"])
    assert gap["thumbs_down"] >= 1 and "Show a JavaScript example please" in gap["comments"]

    # A widget escalation a human answered and resolved, rated "solved" (the Jira side fills these fields).
    seed_escalation(site.services.store.engine, "widget:browser", "paid", "customer",
                    datetime.now(UTC) - timedelta(hours=3), first_response=timedelta(minutes=20),
                    resolved=timedelta(hours=1), rating="yes")
    admin = page.context.new_page()
    admin.set_viewport_size({"width": 1280, "height": 1000})
    admin.goto(site.url + "/admin/analytics")
    admin.get_by_label("Admin API key").fill("adk_not_a_key")
    admin.get_by_role("button", name="Show").click()
    expect(admin.locator("#status")).to_have_text("This key is unknown or revoked.")
    admin.get_by_label("Admin API key").fill(key)
    admin.get_by_role("button", name="Show").click()
    expect(admin.locator("#report")).to_be_visible()
    expect(admin.locator("#chart-gaps")).to_contain_text(question)
    expect(admin.locator("#k-questions")).to_have_text(str(body["totals"]["questions"]))
    assert admin.locator("#chart-days svg rect").count() >= 1 and admin.locator("#chart-feedback svg rect").count() >= 1
    expect(admin.locator("#esc-summary")).to_contain_text("median time to first human answer")
    expect(admin.locator("#esc-channel")).to_contain_text("widget")  # the widget's own escalations, by channel
    admin.screenshot(path="/tmp/widget-analytics.png", full_page=True)
    with admin.expect_download() as download:
        admin.get_by_role("button", name="coverage gaps").click()
    assert question in Path(download.value.path()).read_text()


def test_markup_in_a_source_is_shown_as_text(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    answer = ask(page, "What does the zanzibar gateway log? What should I read before I restart the zanzibar gateway?")
    text = answer.inner_text()
    assert "<script>window.__pwned='script'</script>" in text and "onerror" in text
    assert "zanzibar manual" in text  # the javascript: link's text, not a link
    assert "Zanzibar <img" in answer.locator(".sources").inner_text()  # the page title, as text
    planted = page.evaluate("""() => {
        const r = document.querySelector('#answerdesk-widget').shadowRoot;
        return {script: r.querySelectorAll('script').length, img: r.querySelectorAll('img').length,
                js: r.querySelectorAll('a[href^="javascript"]').length, pwned: window.__pwned ?? null};
    }""")
    assert planted == {"script": 0, "img": 0, "js": 0, "pwned": None}


def test_keyboard_only(page: Any, site: Site) -> None:
    page.goto(site.url + "/")
    for _ in range(40):
        page.keyboard.press("Tab")
        if focused(page)["label"] == BUBBLE:
            break
    else:
        pytest.fail("Tab never reached the chat bubble")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Ask the docs")
    expect(dialog).to_be_visible()
    assert focused(page)["id"] == "adk-q"
    page.keyboard.type("How do I install answerdesk?")
    page.keyboard.press("Enter")
    answer = page.locator("article.msg.bot").first
    expect(answer).to_have_attribute("data-state", "done", timeout=30_000)
    assert focused(page)["id"] == "adk-q"  # ready for the next question

    for _ in range(30):
        page.keyboard.press("Shift+Tab")
        if focused(page)["label"] == "Helpful answer":
            break
    else:
        pytest.fail("Shift+Tab never reached the thumbs-up button")
    page.keyboard.press("Space")
    expect(answer.get_by_role("button", name="Helpful answer")).to_have_attribute("aria-pressed", "true")
    assert focused(page)["label"] == "Comment (optional)"
    page.keyboard.type("clear steps")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(answer.locator(".thanks")).to_have_text("Thanks, comment sent.")
    assert focused(page)["label"] == "Helpful answer"  # not lost with the closed comment box
    message_id = stored_state(page, site)["items"][-1]["mid"]
    import sqlalchemy as sa

    from assistant import db

    with site.services.store.engine.connect() as conn:
        rows = conn.execute(sa.select(db.feedback.c.rating, db.feedback.c.comment)
                            .where(db.feedback.c.message_id == message_id)).all()
    assert [tuple(r) for r in rows] == [("up", None), ("up", "clear steps")]

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused(page)["label"] == BUBBLE
    expect(page.get_by_role("button", name=BUBBLE)).to_have_attribute("aria-expanded", "false")


def test_phone_viewport_and_style_isolation(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(site.url + "/kb/installation.md")
        # A host page with heavy-handed CSS must not restyle the widget.
        page.add_style_tag(content="button, p { background: red !important; font-size: 30px !important; } "
                                   "body { font: 30px/3 serif !important; color: red !important; }")
        page.get_by_role("button", name=BUBBLE).tap()
        dialog = page.get_by_role("dialog", name="Ask the docs")
        assert dialog.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 740}
        answer = ask(page, "How do I install answerdesk?")
        page.screenshot(path="/tmp/widget-mobile.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        for part in (answer, page.get_by_label("Your question"), page.get_by_role("button", name="Send question")):
            box = part.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
        style = page.evaluate("""() => {
            const r = document.querySelector('#answerdesk-widget').shadowRoot;
            const s = getComputedStyle(r.querySelector('.send')), p = getComputedStyle(r.querySelector('.body p'));
            return [s.backgroundColor, p.fontSize, p.color, p.backgroundColor];
        }""")
        assert style == ["rgb(11, 87, 208)", "15px", "rgb(31, 35, 40)", "rgba(0, 0, 0, 0)"]
        page.get_by_role("button", name="Close chat").tap()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("button", name=BUBBLE)).to_be_visible()
    finally:
        context.close()


class _HostPage(BaseHTTPRequestHandler):
    widget_origin = ""
    user_token = ""  # what a host site's server puts in the page for its signed-in user

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        token = f' data-user-token="{self.user_token}"' if self.user_token else ""
        body = (f'<!doctype html><title>Another docs site</title><h1>Another docs site</h1>'
                f'<script src="{self.widget_origin}/widget.js" data-answerdesk-url="{self.widget_origin}"{token}>'
                '</script>')
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args: Any) -> None:
        pass


def test_embedding_on_another_origin_needs_cors(page: Any, site: Site) -> None:
    if "cors_origins" not in Settings.model_fields:
        pytest.skip("ANSWERDESK_CORS_ORIGINS is not wired into Settings and the app yet: cross-origin embedding "
                    "not tested")
    handler = type("Host", (_HostPage,), {"widget_origin": site.url})
    server = serve_handler(handler, port=site.other_port)
    try:
        page.goto(f"http://127.0.0.1:{site.other_port}/")  # a configured origin
        page.get_by_role("button", name=BUBBLE).click()
        answer = ask(page, "How do I install answerdesk?")
        expect(answer.locator("a.cite").first).to_have_attribute("target", "_blank")  # another site: new tab
        # The session token crosses origins (an exposed, allowed header): the follow-up continues the same
        # conversation instead of being refused as someone else's and starting afresh.
        cid = stored_state(page, site)["cid"]
        ask(page, "and on Windows?")
        assert stored_state(page, site)["cid"] == cid and stored_state(page, site)["sid"]
        assert len(site.services.conversations.messages(cid)) == 4
        page.goto(f"http://localhost:{site.other_port}/")  # same page, an origin nobody configured
        page.get_by_role("button", name=BUBBLE).click()
        page.get_by_label("Your question").fill("How do I install answerdesk?")
        page.get_by_label("Your question").press("Enter")
        expect(page.locator(".note.error")).to_have_text(re.compile("Could not reach the assistant"))
    finally:
        shut(server)


def test_a_signed_in_customer_finds_their_email_at_handoff(page: Any, site: Site) -> None:
    """A host page carrying its user's signed token: the widget sends it (across origins), the server
    verifies it, and "Email me the answer" shows the verified address, read-only."""
    import time

    import jwt

    now = int(time.time())
    token = jwt.encode({"sub": "u-7", "email": "ada@acme.example", "org": "acme", "tier": "paid",
                        "aud": "docs.example", "iat": now, "exp": now + 600}, IDENTITY_SECRET, algorithm="HS256")
    handler = type("SignedHost", (_HostPage,), {"widget_origin": site.url, "user_token": token})
    server = serve_handler(handler, port=site.other_port)
    try:
        page.goto(f"http://127.0.0.1:{site.other_port}/")
        page.get_by_role("button", name=BUBBLE).click()
        answer = ask(page, "How tall is Mount Everest?")
        banner = answer.locator(".banner")
        mail = banner.get_by_label("Email me the answer")
        expect(mail).to_have_value("ada@acme.example")
        expect(mail).not_to_be_editable()
        banner.get_by_role("checkbox").check()
        answer.screenshot(path="/tmp/widget-signed-in-offer.png")
        banner.get_by_role("button", name="Email me the answer").click()
        answer.screenshot(path="/tmp/widget-signed-in-handoff.png")
        expect(banner).to_contain_text("We will email the answer to ada@acme.example.")
        row = get_escalation(site.services.store.engine, banner.locator("code").inner_text())
        assert row is not None and (row.role, row.org, row.tier) == ("customer", "acme", "paid")
        assert (row.contact_email, row.notify) == ("ada@acme.example", True)
        assert not stored_state(page, site)["sid"]  # a verified user needs no anonymous session
    finally:
        shut(server)


def test_time_to_first_token(page: Any, site: Site) -> None:
    """Browser-measured: from pressing Enter to the first streamed text, over the bundled docs."""
    questions = ["How do I install answerdesk?", "How do I set the database URL?", "How do I stream answers?",
                 "What does the ingest summary line show?", "How do I change the embedding model?",
                 "Which answerer is used by default?"]
    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    ask(page, "What is answerdesk?")  # warm-up: the first question loads what is still cold
    times = []
    for q in questions:
        ask(page, q)
        times.append(page.evaluate("""() => {
            const m = (n) => performance.getEntriesByName('answerdesk:' + n).at(-1).startTime;
            return m('first-token') - m('ask');
        }"""))
    figures = {"questions": len(times), "median_ms": round(statistics.median(times), 1),
               "max_ms": round(max(times), 1)}
    if os.environ.get("ANSWERDESK_TTFT_REPORT"):
        Path(os.environ["ANSWERDESK_TTFT_REPORT"]).write_text(json.dumps({**figures, "times_ms": times}, indent=2))
    assert 0 < figures["median_ms"] < 3000, figures


# -- without a browser: what the server sends ------------------------------------------------------
def test_widget_script_is_small_cached_and_compressed(site: Site) -> None:
    r = httpx.get(site.url + "/widget.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")
    assert r.headers["content-encoding"] == "gzip" and int(r.headers["content-length"]) < 30_000
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"]
    assert httpx.get(site.url + "/widget.js", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert "innerHTML" not in r.text and "eval(" not in r.text


def test_demo_site_pages_have_the_anchors_citations_use(site: Site) -> None:
    home = httpx.get(site.url + "/")
    assert '<script src="/widget.js"' in home.text and 'href="/docs"' in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    store = site.services.store
    pages: dict[str, set[str]] = {}
    for chunk in store.get_chunks(store.chunk_ids("answerdesk-docs", [d.doc_id for d in store.documents()])).values():
        page, _, anchor = chunk.meta["url"].partition("#")
        pages.setdefault(page, set()).add(anchor)
    assert len(pages) >= 8
    for page, anchors in pages.items():
        r = httpx.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        ids = set(re.findall(r' id="([^"]+)"', r.text))
        assert anchors - {""} <= ids, (page, anchors - ids)
        assert '<script src="/widget.js"' in r.text
    assert httpx.get(site.url + "/kb/../pyproject.toml").status_code == 404
    assert httpx.get(site.url + "/kb/%2e%2e/pyproject.toml").status_code == 404


def test_support_reply_and_the_rating_question_show_when_the_widget_opens(page: Any, site: Site) -> None:
    """The support team's answer (from the ticket, through the reply outbox) appears the next time the
    visitor opens the widget, as text; a resolved ticket asks whether it solved the problem."""
    import sqlalchemy as sa

    from assistant import db
    from assistant.replies.events import TicketEvent
    from assistant.replies.ratings import rating_of

    page.goto(site.url + "/")
    page.get_by_role("button", name=BUBBLE).click()
    answer = ask(page, "I want to talk to a human about restoring a backup")
    eid = answer.locator(".banner code").inner_text()
    engine = site.services.store.engine
    with engine.begin() as conn:  # as the Jira worker records a delivered ticket
        conn.execute(db.escalations.update().where(db.escalations.c.id == eid)
                     .values(ticket_key="SUP-77", status="delivered"))
    page.get_by_role("button", name="Close chat").click()
    reply = "Restore with <img src=x onerror=\"window.__pwned='reply'\"> the backup command, then restart."
    outbox = site.services.replies
    assert outbox.record([TicketEvent("SUP-77", "comment", "501", reply, "Dana Support"),
                          TicketEvent("SUP-77", "resolved", "resolved")]) == 2
    assert outbox.deliver_pending()["delivered"] == 2

    page.get_by_role("button", name=BUBBLE).click()  # opening the panel fetches the replies
    support = page.locator(".msg.support")
    expect(support).to_have_count(2)
    expect(support.first).to_contain_text("Dana Support replied")
    expect(support.first).to_contain_text(reply)  # shown as text, markup and all
    assert page.evaluate("window.__pwned") is None
    expect(support.nth(1)).to_contain_text("Did this solve your problem?")
    support.nth(1).get_by_role("button", name="Yes, solved").click()
    expect(support.nth(1)).to_contain_text("Thanks, noted.")
    assert rating_of(engine, eid) is True
    page.reload()  # kept in the transcript, not fetched twice
    expect(page.locator(".msg.support")).to_have_count(2)
    expect(page.locator(".msg.support").nth(1).get_by_role("button", name="Yes, solved")).to_have_attribute(
        "aria-pressed", "true")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(db.messages.c.role == "support")).scalar_one() == 2
