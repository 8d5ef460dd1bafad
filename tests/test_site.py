"""Docs-site ingestion against a local static site, with the real model, Chroma and SQLite:
sitemap indexes, same host only, robots.txt, conditional requests, per-page errors, deletions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from assistant.errors import SourceError
from assistant.services import Services
from cli.main import app
from ingest.site.crawl import SiteStats, sync_site
from tests.fakes.static_site import SITEMAP_NS, StaticSite


def page(title: str, body: str) -> str:
    return (f"<html><head><title>{title} — Widgetron docs</title></head><body>"
            "<header><a href='/'>Widgetron</a> BANNERWORD</header>"
            "<nav><a href='/docs/install.html'>Install</a> NAVWORD</nav>"
            f"<main><h1>{title}</h1>{body}</main>"
            "<footer>Copyright FOOTERWORD</footer></body></html>")


PAGES = {
    "/docs/install.html": page("Installing Widgetron", "<p>Widgetron installs with pip on Linux.</p>"
                               "<h2 id='windows'>Installing on Windows</h2>"
                               "<p>Run the MSI installer and reboot the spooler service afterwards.</p>"),
    "/docs/config.html": page("Configuration", "<h2 id='database-url'>Database URL</h2>"
                              "<p>Set WIDGETRON_DB to a postgres URL to move off SQLite.</p>"),
    "/docs/faq.html": page("FAQ", "<h2 id='reset'>Resetting a password</h2>"
                           "<p>Use the forgot-password link on the sign-in page.</p>"),
    "/docs/billing.html": page("Billing", "<h2 id='refunds'>Refunds</h2>"
                               "<p>Refunds are issued within fourteen days to the original card.</p>"),
    "/private/roadmap.html": page("Roadmap", "<p>Secret roadmap codename PELICAN ships in spring.</p>"),
}
ROBOTS = "User-agent: *\nDisallow: /private/\n"
INDEXED = 4  # PAGES less the one robots.txt disallows


@pytest.fixture
def site() -> Iterator[StaticSite]:
    with StaticSite(PAGES, robots=ROBOTS) as s:
        # Same server, other host name: requesting it would show up in the log.
        s.extra_urls.append(s.url("/docs/evil.html").replace("127.0.0.1", "localhost"))
        s.set_page("/docs/evil.html", page("Evil", "<p>Other host content OTHERHOSTWORD.</p>"))
        s.unlisted.add("/docs/evil.html")
        yield s


def sync(services: Services, site: StaticSite, **kwargs: object) -> SiteStats:
    return sync_site(services, "site", site.url("/"), **kwargs)  # type: ignore[arg-type]


def all_text(services: Services) -> str:
    return "\n".join(ch.text for ch in services.store.get_chunks(
        [cid for d in services.store.document_hashes("site") for cid in services.store.chunk_hashes("site", d)]
    ).values())


def test_first_run_follows_the_sitemap_index_same_host_only_and_robots(services: Services, site: StaticSite) -> None:
    stats = sync(services, site)
    assert (stats.seen, stats.added, stats.failed) == (INDEXED, INDEXED, 0)
    assert stats.downloaded == INDEXED and stats.disallowed == 1 and stats.other_host == 1
    # Both children of the sitemap index were read, the second one gzipped.
    paths = [r.path for r in site.log]
    assert {"/robots.txt", "/sitemap.xml", "/sitemaps/pages-1.xml", "/sitemaps/pages-2.xml.gz"} <= set(paths)
    assert "/private/roadmap.html" not in paths and "/docs/evil.html" not in paths
    assert all(r.user_agent.startswith("answerdesk") for r in site.log)
    assert set(services.store.document_hashes("site")) == {site.url(p) for p in PAGES if p.startswith("/docs/")}

    text = all_text(services)
    assert "spooler service" in text and "fourteen days" in text
    for word in ("NAVWORD", "FOOTERWORD", "BANNERWORD", "PELICAN", "OTHERHOSTWORD"):
        assert word not in text
    hit = services.retriever.search("How do I install on Windows?", k=1)[0]
    assert hit.chunk.url == site.url("/docs/install.html") + "#windows"
    assert hit.chunk.title == "Installing Widgetron"
    assert "pages downloaded 4 / not modified 0 / disallowed by robots.txt 1 / other host 1" in stats.summary()


@pytest.mark.parametrize("validators", ["etag", "last-modified"])
def test_unchanged_site_costs_no_downloads_and_no_embeddings(
        services: Services, site: StaticSite, validators: str) -> None:
    site.validators = validators
    sync(services, site)
    site.clear_log()
    stats = sync(services, site)
    pages = site.page_requests()
    assert len(pages) == INDEXED and all(r.status == 304 and r.body_bytes == 0 for r in pages)
    header = "if_none_match" if validators == "etag" else "if_modified_since"
    assert all(getattr(r, header) for r in pages)
    assert (stats.unchanged, stats.downloaded, stats.not_modified, stats.chunks_embedded) == (INDEXED, 0, INDEXED, 0)


def test_changed_page_is_reembedded_alone_and_removed_page_deleted(services: Services, site: StaticSite) -> None:
    sync(services, site)
    before = services.store.chunk_hashes("site", site.url("/docs/install.html"))
    site.set_page("/docs/config.html", page("Configuration", "<h2 id='database-url'>Database URL</h2>"
                                            "<p>Set WIDGETRON_DB to a MySQL URL; postgres is no longer supported.</p>"))
    site.unlisted.add("/docs/faq.html")
    site.clear_log()
    stats = sync(services, site)
    assert (stats.updated, stats.deleted, stats.unchanged, stats.chunks_embedded) == (1, 1, 2, 1)
    downloaded = [r.path for r in site.page_requests() if r.status == 200]
    assert downloaded == ["/docs/config.html"]
    assert site.url("/docs/faq.html") not in services.store.document_hashes("site")
    assert "forgot-password" not in all_text(services) and "MySQL" in all_text(services)
    assert services.store.chunk_hashes("site", site.url("/docs/install.html")) == before
    hit = services.retriever.search("Which database URL does Widgetron take?", k=1)[0]
    assert "MySQL" in hit.chunk.text


def test_page_errors_are_reported_by_url_while_the_others_are_indexed(services: Services, site: StaticSite) -> None:
    site.status["/docs/faq.html"] = 500
    site.status["/docs/billing.html"] = 404
    site.delay["/docs/config.html"] = 2.0
    stats = sync(services, site, timeout=0.5)
    failures = dict(stats.failures)
    assert failures[site.url("/docs/faq.html")] == "HTTP 500"
    assert failures[site.url("/docs/billing.html")] == "HTTP 404"
    assert "timed out" in failures[site.url("/docs/config.html")]
    assert (stats.failed, stats.added) == (3, 1)
    assert list(services.store.document_hashes("site")) == [site.url("/docs/install.html")]
    run = {r["source"]: r for r in services.store.status()}["site"]["last_run"]
    assert run["status"] == "partial" and "HTTP 500" in run["error"]


def test_a_failing_page_keeps_its_last_good_content(services: Services, site: StaticSite) -> None:
    sync(services, site)
    site.status["/docs/faq.html"] = 500
    stats = sync(services, site)
    assert stats.failed == 1 and stats.deleted == 0
    assert "forgot-password" in all_text(services)


def test_a_page_missing_from_the_index_is_fetched_again_despite_304(services: Services, site: StaticSite) -> None:
    # As after a run that died between storing validators and storing the document.
    sync(services, site)
    url = site.url("/docs/faq.html")
    services.vectors.delete(services.store.chunk_ids("site", [url]))
    services.store.delete_documents("site", [url])
    site.clear_log()
    stats = sync(services, site)
    assert stats.added == 1 and stats.unchanged == INDEXED - 1
    assert [r.status for r in site.log if r.path == "/docs/faq.html"] == [304, 200]
    assert "forgot-password" in all_text(services)


def test_sitemap_404_is_a_source_error(services: Services, site: StaticSite) -> None:
    site.status["/sitemap.xml"] = 404
    with pytest.raises(SourceError, match=r"sitemap\.xml: HTTP 404"):
        sync(services, site)


def test_a_sitemap_redirecting_to_another_host_is_refused_not_followed(services: Services, site: StaticSite) -> None:
    elsewhere = site.url("/elsewhere/sitemap.xml").replace("127.0.0.1", "localhost")
    site.files["/elsewhere/sitemap.xml"] = ("application/xml", site._sitemaps()["/sitemaps/pages-1.xml"])
    site.redirects["/sitemap.xml"] = elsewhere
    with pytest.raises(SourceError, match=r"sitemap\.xml: redirects to another host \(http://localhost:\d+/elsewhere/"
                                          r"sitemap\.xml\), refused"):
        sync(services, site)
    assert "/elsewhere/sitemap.xml" not in [r.path for r in site.log]  # never requested
    # A redirect within the site is followed as before.
    site.redirects["/sitemap.xml"] = site.url("/elsewhere/sitemap.xml")
    assert sync(services, site).added > 0


def test_a_nested_sitemap_redirecting_off_site_is_reported_and_deletes_nothing(
        services: Services, site: StaticSite) -> None:
    sync(services, site)
    site.redirects["/sitemaps/pages-2.xml.gz"] = site.url("/x.xml.gz").replace("127.0.0.1", "localhost")
    stats = sync(services, site)
    failures = dict(stats.failures)
    assert stats.deleted == 0 and "redirects to another host" in failures[site.url("/sitemaps/pages-2.xml.gz")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_sitemap_declaring_entities_is_refused_whatever_its_encoding(
        services: Services, site: StaticSite, encoding: str) -> None:
    xml = (f'<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE urlset [<!ENTITY site "{site.url("")}">]>'
           f'<urlset xmlns="{SITEMAP_NS}"><url><loc>&site;/docs/install.html</loc></url></urlset>')
    site.files["/sitemap.xml"] = ("application/xml", xml.encode(encoding))
    with pytest.raises(SourceError, match=r"sitemap\.xml: has a DOCTYPE or entity declarations, refused"):
        sync(services, site)
    assert not services.store.document_hashes("site")


def test_a_broken_nested_sitemap_is_reported_and_deletes_nothing(services: Services, site: StaticSite) -> None:
    sync(services, site)
    site.status["/sitemaps/pages-2.xml.gz"] = 500
    stats = sync(services, site)
    assert stats.deleted == 0 and stats.failed == 1
    assert "pages-2.xml.gz" in stats.failures[0][0] and "HTTP 500" in stats.failures[0][1]
    assert len(services.store.document_hashes("site")) == INDEXED


def test_nothing_indexable_is_loud(services: Services, site: StaticSite) -> None:
    for path in PAGES:
        site.status[path] = 500
    with pytest.raises(SourceError, match="No page of .* could be fetched"):
        sync(services, site)
    site.robots = "User-agent: *\nDisallow: /\n"
    with pytest.raises(SourceError, match="5 disallowed by robots.txt"):
        sync(services, site)
    site.robots = "User-agent: *\nAllow: /\n"
    site.status["/robots.txt"] = 503
    with pytest.raises(SourceError, match="robots.txt answered HTTP 503"):
        sync(services, site)


def test_a_missing_robots_txt_means_no_rules(services: Services, site: StaticSite) -> None:
    site.robots = None  # 404
    stats = sync(services, site)
    assert stats.added == INDEXED + 1 and stats.disallowed == 0
    assert "PELICAN" in all_text(services)


def test_non_html_entries_are_skipped_not_failed(services: Services) -> None:
    with StaticSite({"/a.html": page("A", "<p>Alpha text.</p>"), "/guide.pdf": "%PDF-1.4"},
                    content_types={"/guide.pdf": "application/pdf"}, layout="flat") as s:
        stats = sync(services, s)
    assert (stats.added, stats.failed, stats.not_html) == (1, 0, 1)


def test_concurrency_is_bounded(services: Services, site: StaticSite) -> None:
    for path in PAGES:
        site.delay[path] = 0.2
    sync(services, site, concurrency=2)
    assert site.max_in_flight == 2


def test_cli_prints_one_summary_and_fails_loudly(services: Services, site: StaticSite) -> None:
    def cli() -> Result:
        return CliRunner().invoke(app, ["ingest", "site", site.url("/"), "--source", "site"], obj=lambda: services,
                                  env={"COLUMNS": "200"})

    result = cli()
    assert result.exit_code == 0, result.output
    assert "documents seen 4 / added 4" in result.output and "pages downloaded 4" in result.output
    site.status["/docs/faq.html"] = 500
    result = cli()
    assert result.exit_code == 1
    assert f"failed: {site.url('/docs/faq.html')}: HTTP 500" in result.output.replace("\n", "")
    site.status["/sitemap.xml"] = 404
    result = cli()
    assert result.exit_code == 1 and "No sitemap could be read" in result.output
