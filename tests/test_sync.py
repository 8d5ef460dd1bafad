"""`answerdesk sync` over a sources file, with the real model, Chroma and SQLite: a docs folder and a
local docs site, a failing source that does not stop the others, and files that are refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.errors import ConfigError
from assistant.services import Services
from cli.main import app
from ingest.connectors import ConfluenceSource, DocsSource
from ingest.sync import load_sources
from tests.fakes.static_site import StaticSite

PAGE = ("<html><body><nav>Menu</nav><main><h1>Widgetron API</h1><h2 id='rate-limits'>Rate limits</h2>"
        "<p>The API allows 600 requests per minute per token.</p></main></body></html>")


@pytest.fixture
def site() -> Iterator[StaticSite]:
    with StaticSite({"/api/limits.html": PAGE}, layout="flat") as s:
        yield s


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with docs/ to list in a sources file."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "install.md").write_text("# Installing\n\nWidgetron installs with pip on Linux.\n")
    return tmp_path


def toml(project: Path, site_url: str, first: str = "") -> Path:
    path = project / "answerdesk.toml"
    path.write_text(first + f"""
[[source]]
name = "handbook"
type = "docs"
path = "docs"
base_url = "https://docs.example.com"

[[source]]
name = "api-site"
type = "site"
url = "{site_url}"
concurrency = 2
""")
    return path


Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(services: Services) -> Run:
    """`answerdesk sync ARGS` with the test's services (the real model): exit code and output on one line."""

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["sync", *args], obj=lambda: services, env={"COLUMNS": "200"})
        return result.exit_code, " ".join(result.output.split())

    return invoke


def test_sync_runs_docs_and_site_sources_incrementally(project: Path, run: Run, site: StaticSite,
                                                       services: Services) -> None:
    config = toml(project, site.url("/"))
    code, out = run("--config", str(config))
    assert code == 0, out
    assert "handbook (docs): ok: documents seen 1 / added 1" in out
    assert "api-site (site): ok: documents seen 1 / added 1" in out and "2 source(s) synced" in out
    hit = services.retriever.search("How many requests per minute does the API allow?", k=1)[0]
    assert hit.chunk.url == site.url("/api/limits.html") + "#rate-limits"
    assert services.retriever.search("install with pip", k=1)[0].chunk.url == "https://docs.example.com/install.md#installing"

    code, out = run("--config", str(config))
    assert code == 0, out
    assert "handbook (docs): ok: documents seen 1 / added 0 / updated 0 / deleted 0 / unchanged 1" in out
    assert "api-site (site): ok" in out and "pages downloaded 0 / not modified 1" in out
    assert out.count("chunks embedded 0") == 2


def test_a_failing_source_is_named_and_the_others_still_run(project: Path, run: Run, site: StaticSite,
                                                            services: Services) -> None:
    broken = '[[source]]\nname = "old-site"\ntype = "site"\nurl = "' + site.url("/gone/") + '"\n'
    code, out = run("--config", str(toml(project, site.url("/"), first=broken)))
    assert code == 1
    assert "old-site (site): failed: No sitemap could be read" in out and "HTTP 404" in out
    assert "handbook (docs): ok" in out and "api-site (site): ok" in out
    assert "1 of 3 source(s) failed: old-site: No sitemap could be read" in out
    assert {r["source"] for r in services.store.status() if r["documents"]} == {"handbook", "api-site"}


def test_failed_pages_make_the_run_fail_too(project: Path, run: Run, site: StaticSite) -> None:
    site.set_page("/api/auth.html", PAGE.replace("Rate limits", "Tokens"))
    site.status["/api/limits.html"] = 500
    code, out = run("--config", str(toml(project, site.url("/"))))
    assert code == 1 and "handbook (docs): ok" in out
    assert f"failed: {site.url('/api/limits.html')}: HTTP 500 api-site (site): partial: documents seen 2" in out
    assert "1 of 2 source(s) failed: api-site: 1 item(s) could not be indexed" in out
    site.status["/api/auth.html"] = 500
    code, out = run("--config", str(toml(project, site.url("/"))))
    assert code == 1 and "api-site (site): failed: No page of" in out and "HTTP 500" in out


def test_only_runs_the_named_sources(project: Path, run: Run, site: StaticSite, services: Services) -> None:
    config = toml(project, site.url("/"))
    code, out = run("--config", str(config), "--only", "api-site")
    assert code == 0 and "api-site (site): ok" in out and "handbook" not in out
    code, out = run("--config", str(config), "--only", "nope")
    assert code == 2 and "No source named nope" in out and "handbook, api-site" in out


def test_yaml_sources_file(project: Path, run: Run, site: StaticSite) -> None:
    config = project / "sources.yaml"
    config.write_text(f"sources:\n  - name: api-site\n    type: site\n    url: {site.url('/')}\n")
    code, out = run("--config", str(config))
    assert code == 0 and "api-site (site): ok: documents seen 1 / added 1" in out


def test_a_secret_in_the_file_is_refused_before_anything_runs(project: Path, run: Run, site: StaticSite,
                                                              services: Services) -> None:
    secret = ('[[source]]\nname = "wiki"\ntype = "confluence"\nurl = "https://example.atlassian.net/wiki"\n'
              'spaces = ["DOC"]\ntoken = "ATATT3xFfGF0"\n')
    code, out = run("--config", str(toml(project, site.url("/"), first=secret)))
    assert code == 2
    assert "source #1 ('wiki'): token: secrets are not read from the sources file" in out
    assert "ANSWERDESK_CONFLUENCE_TOKEN" in out and "ATATT3xFfGF0" not in out
    assert services.store.status() == [] and site.log == []


def test_bad_toml_is_a_clear_error(project: Path, run: Run) -> None:
    config = project / "answerdesk.toml"
    config.write_text('[[source]]\nname = "docs"\ntype = docs\n')
    code, out = run("--config", str(config))
    assert code == 2 and "is not valid TOML" in out and "line 3" in out
    code, out = run("--config", str(project / "missing.toml"))
    assert code == 2 and "No sources file at" in out


def test_invalid_sources_name_the_source_and_field(tmp_path: Path) -> None:
    config = tmp_path / "answerdesk.toml"
    config.write_text("""
[[source]]
name = "wiki"
type = "confluence"
url = "example.atlassian.net"
internal_spaces = ["OPS"]

[[source]]
name = "tickets"
type = "jiraa"

[[source]]
name = "site"
type = "site"
url = "https://docs.example.com"
concurency = 8
""")
    with pytest.raises(ConfigError) as caught:
        load_sources(config)
    message = str(caught.value)
    assert "source #1 ('wiki'): url: must be an http:// or https:// URL" in message
    assert "source #1 ('wiki'): spaces: Field required" in message
    assert "source #2 ('tickets'): type: Input tag 'jiraa'" in message
    assert "source #3 ('site'): concurency: Extra inputs are not permitted" in message


def test_valid_file_paths_and_space_audiences(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "answerdesk.toml"
    config.parent.mkdir()
    config.write_text("""
[[source]]
name = "docs"
type = "docs"
path = "../docs"

[[source]]
name = "wiki"
type = "confluence"
url = "https://example.atlassian.net/wiki"
spaces = ["DOC", "OPS", "CS", "KB"]
cloud = true
internal_spaces = ["OPS"]
customer_spaces = ["CS"]
public_spaces = ["KB"]
""")
    docs, wiki = load_sources(config)
    assert isinstance(docs, DocsSource) and docs.path.resolve() == (tmp_path / "docs").resolve()
    # DOC is not mapped: the connector reads its permission in Confluence (anonymous view: public).
    assert isinstance(wiki, ConfluenceSource)
    assert wiki.space_audience() == {"OPS": "internal", "CS": "customer", "KB": "public"}


def test_a_space_mapped_twice_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "answerdesk.toml"
    config.write_text("""
[[source]]
name = "wiki"
type = "confluence"
url = "https://example.atlassian.net/wiki"
spaces = ["DOC", "OPS"]
internal_spaces = ["OPS"]
public_spaces = ["OPS", "WIKI"]
""")
    with pytest.raises(ConfigError) as caught:
        load_sources(config)
    assert "public_spaces lists WIKI, which is not in spaces" in str(caught.value)
    config.write_text(config.read_text().replace('"OPS", "WIKI"', '"OPS"'))
    with pytest.raises(ConfigError, match="OPS is in both internal_spaces and public_spaces"):
        load_sources(config)
