"""Markdown -> Slack mrkdwn: formatting users see, and untrusted text that can never ping, mention or
disguise a link; Slack's limits on long answers and buttons."""

from __future__ import annotations

import re

from assistant.slack.messages import answer_message, handoff_blocks, handoff_message
from assistant.slack.mrkdwn import escape, from_slack, link, split_text, to_mrkdwn
from tests.builders import chat_result

CITED = {1: "https://docs.example/setup#database-url", 2: "https://docs.example/faq?a=1&b=2"}


def test_markdown_becomes_mrkdwn() -> None:
    md = ("## Database **URL**\n\nSet **ANSWERDESK_DATABASE_URL**, *not* ~~DB_URL~~ [1]. See the "
          "[reference](https://docs.example/ref) or https://docs.example/faq.\n- first\n* second\n> quoted")
    assert to_mrkdwn(md, CITED).split("\n") == [
        "*Database URL*",
        "",
        "Set *ANSWERDESK_DATABASE_URL*, _not_ ~DB_URL~ <https://docs.example/setup#database-url|[1]>. See the "
        "<https://docs.example/ref|reference> or <https://docs.example/faq>.",
        "• first",
        "• second",
        "> quoted",
    ]


def test_code_is_kept_verbatim_but_escaped() -> None:
    md = "Run `a && b` then:\n\n```bash\necho \"<!here>\" **not bold** [1]\n```\nafter"
    out = to_mrkdwn(md, CITED)
    assert out == "Run `a &amp;&amp; b` then:\n\n```\necho \"&lt;!here&gt;\" **not bold** [1]\n```\nafter"


def test_citation_markers_without_a_source_stay_plain() -> None:
    assert to_mrkdwn("Only [3] here [2].", CITED) == "Only [3] here <https://docs.example/faq?a=1&amp;b=2|[2]>."


def test_untrusted_text_cannot_ping_mention_or_disguise_links() -> None:
    hostile = ("Hi <!channel> <!here> <@U123ADMIN> <#C999> <!subteam^S1> @everyone "
               "<https://evil.example|https://docs.example> [docs](javascript:alert(1)) & more")
    out = to_mrkdwn(hostile)
    # The only "<" left open links we built, each to an http(s) URL shown as itself: no disguise.
    assert re.findall(r"<[^>]*>", out) == ["<https://evil.example>", "<https://docs.example>"]
    for raw in ("<!channel>", "<!here>", "<@U123ADMIN>", "<#C999>", "<!subteam^S1>", "javascript"):
        assert raw not in out
    assert "&lt;!channel&gt;" in out and "&amp; more" in out
    assert "@everyone" not in out  # a zero-width space keeps it from being read as a broadcast


def test_link_labels_and_urls_cannot_break_out() -> None:
    assert link("https://x.example/a|b>c d", "x|y> <!here>") == \
        "<https://x.example/a%7Cb%3Ec%20d|x|y&gt; &lt;!here&gt;>"
    assert link("ftp://x.example", "label") == "label"
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_slack_text_becomes_a_plain_question() -> None:
    text = ("<@U0BOT> how do I use &lt;tag&gt; &amp; <https://a.example|a.example> in <#C1|general>? "
            "cc <@U2|bob> <!here>")
    assert from_slack(text, "U0BOT") == "how do I use <tag> & a.example in #general? cc @bob"


def test_long_text_is_split_within_the_limit_never_inside_a_link_and_code_is_refenced() -> None:
    linked = " ".join(f"word{i} <https://docs.example/page{i}|page {i}>" for i in range(400))
    pieces = split_text(linked, 500)
    assert all(len(p) <= 500 for p in pieces) and len(pieces) > 10
    assert all(p.count("<") == p.count(">") for p in pieces)
    assert " ".join(pieces) == linked
    code = "```\n" + "\n".join(f"line {i}" for i in range(300)) + "\n```"
    pieces = split_text(code, 400)
    assert len(pieces) > 1 and all(p.startswith("```\n") and p.endswith("\n```") and len(p) <= 400 for p in pieces)


def test_an_overlong_answer_is_shortened_to_fifty_blocks() -> None:
    answer = "\n\n".join("x" * 2900 for _ in range(80))
    text, blocks = answer_message(chat_result(answer))
    assert len(blocks) == 50 and len(text) <= 3000
    assert blocks[-2]["text"]["text"].endswith("_(shortened; the sources have the rest)_")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_handoff_options_become_links_and_web_buttons() -> None:
    options = [{"label": "Book a call " + "x" * 90, "url": "https://cal.example/x", "description": "<!here> now"},
               {"label": "Mail us", "url": "mailto:help@example.com", "description": None}]
    section, actions = handoff_blocks(options)
    assert "<mailto:help@example.com|Mail us>" in section["text"]["text"]
    assert "&lt;!here&gt; now" in section["text"]["text"]
    assert [b["url"] for b in actions["elements"]] == ["https://cal.example/x"]
    assert len(actions["elements"][0]["text"]["text"]) <= 75
    text, blocks = handoff_message("SUP-9", None, [], "U0ALICE")
    assert text == "<@U0ALICE> I've passed this conversation to the support team (reference SUP-9)."
    assert len(blocks) == 1
