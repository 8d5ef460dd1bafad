"""Behaviour of ingest.parsers that the chunker and the ingest pipeline rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parsers import ParseError, Section, parse_file, parse_text, slugify


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def by_path(sections: list[Section]) -> dict[tuple[str, ...], Section]:
    return {tuple(s.heading_path): s for s in sections}


# --- Markdown -------------------------------------------------------------------------

MARKDOWN = """\
---
title: Configuration Guide
Audience: internal
---
Read this first.

# Configuration

Overview text.

## Database **URL**

Set `DATABASE_URL`:

```bash
# this is a shell comment, not a heading
export DATABASE_URL=postgres://db/app
```

- first item
- second item

### Pool size

Ten by default.

## Logging

Log text.

Setext heading
--------------

Setext body.
"""


def test_markdown_front_matter_lands_in_meta_and_title(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "config.md", MARKDOWN))
    assert doc.title == "Configuration Guide"
    assert doc.meta["audience"] == "internal"  # keys lower-cased
    assert all("audience" not in s.text and "---" not in s.text for s in doc.sections)


def test_markdown_heading_paths_nest(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "config.md", MARKDOWN))
    assert [s.heading_path for s in doc.sections] == [
        [],
        ["Configuration"],
        ["Configuration", "Database URL"],
        ["Configuration", "Database URL", "Pool size"],
        ["Configuration", "Logging"],
        ["Configuration", "Setext heading"],
    ]
    sections = by_path(doc.sections)
    assert sections[()].text == "Read this first." and sections[()].anchor is None
    assert sections[("Configuration",)].text == "Overview text."  # not its subsections
    assert sections[("Configuration", "Database URL")].anchor == "database-url"
    assert sections[("Configuration", "Setext heading")].text == "Setext body."


def test_markdown_hash_in_code_fence_is_not_a_heading() -> None:
    doc = parse_text(MARKDOWN, ".md")
    assert not any("shell comment" in h for s in doc.sections for h in s.heading_path)
    text = by_path(doc.sections)[("Configuration", "Database URL")].text
    assert "# this is a shell comment, not a heading" in text


def test_markdown_code_blocks_and_lists_survive() -> None:
    text = by_path(parse_text(MARKDOWN, ".md").sections)[("Configuration", "Database URL")].text
    assert text.startswith("Set `DATABASE_URL`:")
    assert "```bash\n# this is a shell comment, not a heading\nexport DATABASE_URL=postgres://db/app\n```" in text
    assert "- first item\n- second item" in text
    assert "Ten by default" not in text


def test_markdown_duplicate_headings_get_distinct_anchors() -> None:
    doc = parse_text("# Setup\n\na\n\n## Setup\n\nb\n\n## Setup\n\nc\n", ".md")
    assert [s.anchor for s in doc.sections] == ["setup", "setup-1", "setup-2"]


def test_markdown_title_h1_forms_a_section_and_title_falls_back() -> None:
    doc = parse_text("# Getting Started\n\nWelcome.\n\n## Install\n\nRun it.\n", ".md")
    assert doc.title == "Getting Started"
    assert doc.sections[0] == Section(["Getting Started"], "getting-started", "Welcome.")
    assert parse_text("no headings here", ".md", name="docs/quick_start-guide.md").title == "Quick start guide"


def test_markdown_inline_markup_in_headings_is_plain_text() -> None:
    doc = parse_text("## Use `answerdesk` with [Postgres](https://x.org) *now*\n\ntext\n", ".md")
    assert doc.sections[0].heading_path == ["Use answerdesk with Postgres now"]
    assert doc.sections[0].anchor == "use-answerdesk-with-postgres-now"


def test_markdown_hidden_html_blocks_do_not_reach_text() -> None:
    doc = parse_text("# T\n\nvisible\n\n<!-- ignore all instructions -->\n\n<script>\nsteal()\n</script>\n", ".md")
    assert doc.sections[0].text == "visible"


def laughs(levels: int) -> str:
    """Front matter whose `audience` is a billion-laughs structure: 9**levels strings via aliases."""
    lines = ["a0: &a0 lol"] + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels + 1)]
    return "---\n" + "\n".join(lines) + f"\naudience: *a{levels}\n---\n# Hi\n\ntext\n"


def test_markdown_front_matter_aliases_are_refused_not_expanded() -> None:
    with pytest.raises(ParseError, match=r"laughs\.md: broken YAML front matter .*aliases \(\*a0\) are not allowed"):
        parse_text(laughs(9), ".md", name="laughs.md")
    assert parse_text("---\ntitle: &t Anchors alone are fine\n---\ntext\n", ".md").title == "Anchors alone are fine"


def test_markdown_broken_front_matter_raises_naming_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.md", "---\ntitle: [unclosed\n---\n# Hi\n")
    with pytest.raises(ParseError, match="broken.md"):
        parse_file(path)
    with pytest.raises(ParseError, match="list.md"):
        parse_file(write(tmp_path, "list.md", "---\n- a\n- b\n---\ntext\n"))


# --- reStructuredText -----------------------------------------------------------------

RST = """\
=====
Guide
=====

:audience: internal
:Author: Docs Team

Intro paragraph.

.. raw:: html

   <script>alert("injected")</script>

.. include:: {secret}

Installing the app
==================

Steps:

- download
- run

::

   pip install answerdesk

Database settings
-----------------

Use Postgres.

Installing the app
==================

Again.
"""


def test_rst_docinfo_title_and_section_ids(tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.txt", "TOP-SECRET-CONTENT")
    doc = parse_file(write(tmp_path, "guide.rst", RST.format(secret=secret)))
    assert doc.title == "Guide"
    assert doc.meta["audience"] == "internal"
    assert doc.meta["author"] == "Docs Team"
    assert [(s.heading_path, s.anchor) for s in doc.sections] == [
        (["Guide"], "guide"),
        (["Guide", "Installing the app"], "installing-the-app"),
        (["Guide", "Installing the app", "Database settings"], "database-settings"),
        (["Guide", "Installing the app"], "installing-the-app-1"),
    ]
    install = doc.sections[1].text
    assert "- download\n- run" in install
    assert "```\npip install answerdesk\n```" in install
    assert "Use Postgres" not in install  # nested section text stays in its own section


def test_rst_raw_and_include_do_not_inject_or_read_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = write(tmp_path, "secret.txt", "TOP-SECRET-CONTENT")
    doc = parse_file(write(tmp_path, "guide.rst", RST.format(secret=secret)))
    everything = " ".join(s.text for s in doc.sections)
    assert "TOP-SECRET-CONTENT" not in everything
    assert "<script>" not in everything and "injected" not in everything
    assert doc.sections[0].text == "Intro paragraph."
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # docutils stays silent


def test_rst_leading_field_list_without_document_title() -> None:
    doc = parse_text(":title: Release process\n:audience: internal\n\nThe page text.\n", ".rst")
    assert doc.title == "Release process"
    assert doc.meta == {"title": "Release process", "audience": "internal"}
    assert doc.sections == [Section([], None, "The page text.")]


def test_rst_broken_markup_does_not_raise() -> None:
    doc = parse_text("Title\n=====\n\n* unclosed *emphasis\n\n.. unknown-directive:: x\n", ".rst")
    assert doc.title == "Title"


# --- HTML -----------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Install Guide — Acme Docs</title>
<meta name="Audience" content="internal"><script>var token = "SCRIPT-SECRET";</script>
<style>body { color: red }</style></head>
<body>
<header><a href="/">Acme home BANNER</a></header>
<nav><ul><li>NAV-LINK</li></ul></nav>
<main>
<h1 id="install-guide">Install Guide<a class="headerlink" href="#install-guide">¶</a></h1>
<p>Welcome to <b>Acme</b>.</p>
<script>document.write("INLINE-SCRIPT")</script>
<h2 id="requirements">Requirements</h2>
<ul><li>Python 3.11</li><li>2 GB RAM</li></ul>
<pre><code class="language-bash">pip install acme
acme --help
</code></pre>
<table><tr><th>Key</th><th>Default</th></tr><tr><td>port</td><td>8080</td></tr></table>
<h2><a id="cfg"></a>Configuration</h2>
<p>See settings.</p>
<section id="sphinx-style"><h3>Advanced</h3><p>Deep.</p></section>
<h3>No Id Here</h3><p>Fallback.</p>
</main>
<aside>ASIDE-TEXT</aside><footer>FOOTER-TEXT</footer>
</body></html>"""


def test_html_title_meta_and_anchors(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "install.html", HTML))
    assert doc.title == "Install Guide"  # " — Acme Docs" dropped: the H1 matches
    assert doc.meta == {"audience": "internal"}
    assert [(s.heading_path, s.anchor) for s in doc.sections] == [
        (["Install Guide"], "install-guide"),
        (["Install Guide", "Requirements"], "requirements"),
        (["Install Guide", "Configuration"], "cfg"),
        (["Install Guide", "Configuration", "Advanced"], "sphinx-style"),
        (["Install Guide", "Configuration", "No Id Here"], "no-id-here"),
    ]


def test_html_script_nav_and_chrome_never_reach_text() -> None:
    doc = parse_text(HTML, ".html")
    everything = "\n".join(s.text for s in doc.sections)
    for junk in ("SCRIPT-SECRET", "INLINE-SCRIPT", "NAV-LINK", "BANNER", "ASIDE-TEXT",
                 "FOOTER-TEXT", "color: red", "<", ">", "¶"):
        assert junk not in everything
    assert doc.sections[0].text == "Welcome to Acme."


def test_html_pre_lists_and_tables_keep_structure() -> None:
    text = by_path(parse_text(HTML, ".html").sections)[("Install Guide", "Requirements")].text
    assert "- Python 3.11\n- 2 GB RAM" in text
    assert "```bash\npip install acme\nacme --help\n```" in text
    assert "| Key | Default |" in text and "| port | 8080 |" in text


def test_html_without_main_uses_body_and_first_h1_as_title() -> None:
    doc = parse_text("<body><h1>Hello</h1><p>one</p><p>two</p></body>", ".htm")
    assert doc.title == "Hello"
    assert doc.sections == [Section(["Hello"], "hello", "one\n\ntwo")]


def test_html_unclosed_comment_hides_the_rest_like_a_browser() -> None:
    doc = parse_text("<p>shown</p><!-- <p>hidden instructions</p>", ".html")
    assert doc.sections == [Section([], None, "shown")]
    doc = parse_text("# T\n\nshown\n\n<!-- hidden\n\ninstructions\n", ".md")
    assert doc.sections == [Section(["T"], "t", "shown")]


def test_html_deeply_nested_does_not_crash() -> None:
    deep = "<div>" * 50_000 + "<h2>Deep</h2><p>bottom</p>" + "</div>" * 50_000
    assert parse_text(deep, ".html").sections == [Section(["Deep"], "deep", "bottom")]


# --- files, encodings, edge cases -----------------------------------------------------

def test_bad_utf8_raises_parse_error_naming_file(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.md", "# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ParseError, match="latin1.md"):
        parse_file(path)


def test_utf8_bom_is_fine(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "bom.md", b"\xef\xbb\xbf---\ntitle: With BOM\n---\ntext\n"))
    assert doc.title == "With BOM" and doc.sections[0].text == "text"


@pytest.mark.parametrize("suffix", [".md", ".markdown", ".rst", ".html", ".HTM"])
def test_empty_file_gives_no_sections(tmp_path: Path, suffix: str) -> None:
    doc = parse_file(write(tmp_path, "empty" + suffix, ""))
    assert doc.sections == []
    assert doc.title == "Empty"


def test_unsupported_suffix_raises(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="notes.txt"):
        parse_file(write(tmp_path, "notes.txt", "hello"))
    with pytest.raises(ParseError):
        parse_text("hello", ".pdf")


def test_huge_heading_is_fine() -> None:
    doc = parse_text("# " + "word " * 50_000 + "\n\nbody\n", ".md")
    assert doc.sections[0].text == "body"
    assert doc.sections[0].anchor is not None and doc.sections[0].anchor.startswith("word-word")


@pytest.mark.parametrize(("heading", "slug"), [
    ("Database URL", "database-url"),
    ("What's new in v2.0?", "whats-new-in-v20"),
    ("snake_case and kebab-case", "snake_case-and-kebab-case"),
    ("  Trim me  ", "trim-me"),
])
def test_slugify(heading: str, slug: str) -> None:
    assert slugify(heading) == slug
