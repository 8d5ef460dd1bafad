"""Docs-folder ingestion with the real model, real Chroma and SQLite: incremental behaviour,
deep links, audience, loud failures, and a keyword index that survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.errors import SourceError
from assistant.services import Services
from assistant.settings import Settings
from ingest.docs import folder_refs, list_files
from ingest.pipeline import Ingestor, IngestStats

INSTALL = """---
title: Installing Widgetron
---
# Installing Widgetron

Widgetron installs with pip on Linux and macOS.

## Installing on Windows

Run the MSI installer and reboot the spooler service afterwards.
"""

BILLING = """---
title: Billing internals
audience: internal
---
# Billing internals

Refunds above 500 euros need approval from the finance lead, codename PELICAN.
"""

GLOSSARY = """Glossary
========

:audience: customer

Flux capacitor
--------------

The flux capacitor regulates the temporal displacement of widgets.
"""


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "install.md").write_text(INSTALL)
    (root / "internal").mkdir(exist_ok=True)
    (root / "internal" / "billing.md").write_text(BILLING)
    (root / "glossary.rst").write_text(GLOSSARY)
    (root / "faq.html").write_text(
        "<html><head><title>FAQ</title><script>alert('x')</script></head><body><main>"
        "<h1>FAQ</h1><h2 id='reset-password'>Resetting a password</h2>"
        "<p>Use the forgot-password link on the sign-in page.</p></main></body></html>"
    )
    (root / "notes.txt").write_text("not a supported file")
    return root


def ingest(services: Services, root: Path, base_url: str | None = "https://docs.example.com") -> IngestStats:
    files = list_files(root)
    return Ingestor(services, "docs").run(folder_refs(root, files, base_url), "docs", str(root))


def chunk_ids(services: Services, doc_id: str) -> dict[str, str]:
    return services.store.chunk_hashes("docs", doc_id)


def test_first_run_indexes_every_supported_file_with_deep_links(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    stats = ingest(services, root)
    assert (stats.seen, stats.added, stats.failed) == (4, 4, 0)
    assert stats.chunks_embedded == services.vectors.count() == services.store.count_chunks() > 0

    hit = services.retriever.search("How do I install on Windows?", k=1)[0]
    assert hit.chunk.url == "https://docs.example.com/install.md#installing-on-windows"
    assert hit.chunk.title == "Installing Widgetron" and hit.chunk.heading == "Installing on Windows"
    assert hit.chunk.meta["updated_at"]  # file modification time, ISO 8601

    faq = services.retriever.search("reset my password", k=1)[0]
    assert faq.chunk.url == "https://docs.example.com/faq.html#reset-password"
    assert "alert" not in faq.chunk.text


def test_audience_from_front_matter_is_stored_and_filters_both_indexes(services: Services, tmp_path: Path) -> None:
    ingest(services, write_corpus(tmp_path / "docs"))
    audiences = {c.doc_id: c.audience for c in services.store.get_chunks(
        [cid for doc in ("install.md", "internal/billing.md", "glossary.rst")
         for cid in chunk_ids(services, doc)]).values()}
    assert audiences == {"install.md": "public", "internal/billing.md": "internal", "glossary.rst": "customer"}

    query = "refund approval finance lead PELICAN"
    for mode in ("dense", "keyword", "hybrid"):
        public = services.retriever.search(query, k=5, where={"audience": "public"}, mode=mode)  # type: ignore[arg-type]
        assert all(h.chunk.audience == "public" for h in public)
        assert "PELICAN" not in " ".join(h.chunk.text for h in public)
    assert services.retriever.search(query, k=1, mode="keyword")[0].chunk.doc_id == "internal/billing.md"


def test_unchanged_folder_embeds_nothing(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    ingest(services, root)
    again = ingest(services, root)
    assert (again.unchanged, again.added, again.updated, again.deleted, again.chunks_embedded) == (4, 0, 0, 0, 0)


def test_changed_file_replaces_exactly_its_chunks(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    ingest(services, root)
    before_install = chunk_ids(services, "install.md")
    before_faq = chunk_ids(services, "faq.html")
    total = services.vectors.count()

    # Edit one section; add one.
    text = INSTALL.replace("reboot the spooler service", "restart the print queue") + \
        "\n## Uninstalling\n\nRun widgetron --uninstall to remove every file.\n"
    (root / "install.md").write_text(text)
    stats = ingest(services, root)
    assert (stats.updated, stats.unchanged) == (1, 3)
    assert stats.chunks_embedded == 2  # the edited section and the new one, not the untouched intro

    after_install = chunk_ids(services, "install.md")
    assert chunk_ids(services, "faq.html") == before_faq
    unchanged = [cid for cid, h in before_install.items() if after_install.get(cid) == h]
    assert len(unchanged) == len(before_install) - 1  # the edited section kept its id, new hash
    assert set(before_install) < set(after_install)
    assert services.vectors.count() == total + 1

    hit = services.retriever.search("print queue", k=1)[0]
    assert hit.chunk.doc_id == "install.md" and "restart the print queue" in hit.chunk.text
    assert not [h for h in services.retriever.search("spooler", k=10, mode="keyword") if "spooler" in h.chunk.text]


def test_deleted_file_removes_its_chunks_everywhere(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    ingest(services, root)
    gone = chunk_ids(services, "internal/billing.md")
    (root / "internal" / "billing.md").unlink()
    stats = ingest(services, root)
    assert stats.deleted == 1
    assert chunk_ids(services, "internal/billing.md") == {}
    assert services.vectors.count() == services.store.count_chunks()
    assert not services.vectors.get_vectors(sorted(gone))
    hits = services.retriever.search("PELICAN refunds finance", k=10)
    assert all(h.chunk.doc_id != "internal/billing.md" for h in hits)


def test_keyword_index_survives_restart_and_follows_other_processes(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    root = write_corpus(tmp_path / "docs")
    ingest(services, root)
    # A new process: loads the persisted index (no rebuild) and finds the same chunk.
    fresh = Services(settings, embedder=services.embedder)
    assert fresh.keywords.search("PELICAN", 1)[0][0] in chunk_ids(services, "internal/billing.md")
    assert len(fresh.keywords) == services.store.count_chunks()
    # Another process ingests: this one notices the new generation at its next search.
    (root / "install.md").write_text(INSTALL + "\n## Licensing\n\nThe ZEBRAFISH licence key lives in /etc/widgetron.\n")
    ingest(services, root)
    assert fresh.keywords.search("ZEBRAFISH", 1)


def test_bad_inputs_fail_loudly(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(SourceError, match="No supported files"):
        list_files(tmp_path / "empty")


def test_a_broken_file_is_reported_and_the_rest_indexed(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    (root / "broken.md").write_bytes(b"# Broken\n\n\xff\xfe not utf-8")
    (root / "bad-audience.md").write_text("---\naudience: everyone\n---\n# Hi\n\ntext\n")
    stats = ingest(services, root)
    assert stats.failed == 2 and stats.added == 4
    labels = dict(stats.failures)
    assert "broken.md" in labels and "audience" in labels["bad-audience.md"]
    run = {r["source"]: r for r in services.store.status()}["docs"]["last_run"]
    assert run["status"] == "partial" and "broken.md" in run["error"]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANSWERDESK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def run_cli(*args: str) -> tuple[int, str]:
    from cli.main import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_cli_ingest_search_status(cli_env: Path) -> None:
    root = write_corpus(cli_env / "docs")
    code, out = run_cli("ingest", "docs", str(root), "--base-url", "https://docs.example.com")
    assert code == 0, out
    assert "documents seen 4 / added 4 / updated 0 / deleted 0 / unchanged 0" in out
    code, out = run_cli("ingest", "docs", str(root))
    assert code == 0 and "chunks embedded" in out
    code, out = run_cli("search", "install on Windows", "-k", "2")
    assert code == 0, out
    assert "install.md#installing-on-windows" in out.replace("\n", "")
    code, out = run_cli("status")
    assert code == 0 and "docs" in out and "ok" in out


def test_cli_errors_exit_non_zero_with_a_message(cli_env: Path) -> None:
    code, out = run_cli("ingest", "docs", str(cli_env / "missing"))
    assert code == 1 and "Path does not exist" in out
    (cli_env / "empty").mkdir()
    code, out = run_cli("ingest", "docs", str(cli_env / "empty"))
    assert code == 1 and "No supported files" in out


def outside_secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text("# Secret\n\nThe OSPREY launch code lives here.\n")
    return outside


def test_symlinks_leaving_the_folder_are_skipped_and_named_in_the_summary(cli_env: Path) -> None:
    root = write_corpus(cli_env / "docs")
    outside = outside_secret(cli_env)
    (root / "env.md").symlink_to("/proc/self/environ")
    (root / "leak.md").symlink_to(outside / "secret.md")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "internal" / "up.md").symlink_to("../../outside/secret.md")
    (root / "alias.md").symlink_to("install.md")  # stays inside the folder: read like any file
    code, out = run_cli("ingest", "docs", str(root))
    assert code == 0, out
    out = " ".join(out.split())
    assert "documents seen 5 / added 5" in out
    assert "skipped 4 symlink(s) pointing outside the folder:" in out
    for shown in ("env.md -> /proc/self/environ", "leak.md -> ", "linked/ -> ", "internal/up.md -> ../../outside"):
        assert shown in out
    from cli.common import default_services

    svc = default_services()
    assert sorted(svc.store.document_hashes("docs")) == [
        "alias.md", "faq.html", "glossary.rst", "install.md", "internal/billing.md"]
    text = "\n".join(c.text for c in svc.store.get_chunks(svc.store.chunk_ids("docs", list(
        svc.store.document_hashes("docs")))).values())
    assert "OSPREY" not in text and "PATH=" not in text
    assert "spooler service" in text


def test_a_file_swapped_for_an_outside_symlink_after_the_scan_is_not_read(services: Services, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "docs")
    outside = outside_secret(tmp_path)
    files = list_files(root)
    (root / "install.md").unlink()
    (root / "install.md").symlink_to(outside / "secret.md")
    stats = Ingestor(services, "docs").run(folder_refs(root, files, None), "docs", str(root))
    assert dict(stats.failures)["install.md"] == "install.md: a symlink pointing outside the folder, not read"
    assert "install.md" not in services.store.document_hashes("docs")


def test_a_yaml_bomb_in_front_matter_fails_that_file_with_a_short_message(services: Services, tmp_path: Path) -> None:
    from tests.test_parsers import laughs

    root = write_corpus(tmp_path / "docs")
    (root / "bomb.md").write_text(laughs(7))  # 9**7 strings: about 40 MB once anything prints it
    stats = ingest(services, root)
    assert stats.failed == 1 and stats.added == 4
    message = dict(stats.failures)["bomb.md"]
    assert "aliases" in message and len(message) < 500
    run = {r["source"]: r for r in services.store.status()}["docs"]["last_run"]
    assert len(run["error"]) < 1000


def test_one_file_given_by_a_symlink_is_read(services: Services, tmp_path: Path) -> None:
    target = write_corpus(tmp_path / "docs") / "install.md"
    (tmp_path / "link.md").symlink_to(target)
    stats = ingest(services, tmp_path / "link.md")
    assert (stats.added, stats.failed) == (1, 0)
