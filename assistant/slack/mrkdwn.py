"""Our answers' Markdown -> Slack mrkdwn, with everything untrusted escaped; and Slack's text -> plain text.

Answers quote documents and tickets that anyone may have written. Slack reads `<...>` as a control
sequence: `<!channel>` pings a whole channel, `<@U123>` a person, `<https://evil|docs>` disguises a
link. So all text from sources and users goes through `escape` (Slack's three control characters),
and the only `<...>` in our messages are links built here, to http(s) and mailto URLs only.
"""

from __future__ import annotations

import re
from urllib.parse import quote

SECTION_LIMIT = 3000  # characters in a section's text (Block Kit)

_CONTROL = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# With verbatim text Slack does not parse a bare "@channel"; the zero-width space keeps it that way
# anywhere the text might be read without `verbatim` (notification fallbacks, other clients).
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.I)
_SAFE_SCHEME = re.compile(r"^(https?://|mailto:)\S", re.I)

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# Markdown link or image, <autolink>, citation marker [n], bare URL: each becomes a link built here.
_LINKISH = re.compile(
    r"!?\[(?P<label>[^\]\n]+)\]\((?P<url>[^)\s]+)(?:\s+\"[^\"\n]*\")?\)"
    r"|<(?P<auto>(?:https?://|mailto:)[^>\s|]+)>"
    r"|\[(?P<n>\d{1,3})\]"
    r"|(?P<bare>(?<![\w/])https?://[^\s<>()\[\]|]*[^\s<>()\[\]|.,;:!?'\"])"
)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TOKEN = re.compile(r"\x00(\d+)\x00")
_STAR = "\x01"  # a bold star, kept away from the italic pass


def escape(text: str) -> str:
    return _BROADCAST.sub("@\u200b\\1", text.translate(_CONTROL))


def safe_url(url: str) -> str | None:
    """The URL as it may stand inside <...|...>, or None for anything but http(s) and mailto."""
    url = url.strip()
    if not _SAFE_SCHEME.match(url):
        return None
    url = re.sub(r"[\s<>|\"]", lambda m: quote(m.group()), url)
    return url.replace("&", "&amp;")


def link(url: str, label: str | None = None) -> str:
    """A Slack link; an unsafe URL becomes plain (escaped) text."""
    target = safe_url(url)
    text = escape(" ".join((label or "").split()))
    if target is None:
        return text or escape(url)
    return f"<{target}|{text}>" if text else f"<{target}>"


def to_mrkdwn(markdown: str, citation_urls: dict[int, str] | None = None) -> str:
    """Markdown -> mrkdwn: headings and **bold** -> *bold*, [text](url) -> <url|text>, lists -> bullets,
    code blocks kept; every [n] with a known source becomes a link to it."""
    urls = citation_urls or {}
    out: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1).startswith(fence[0]) and len(opening.group(1)) >= len(fence):
                out.append("```")
                fence = None
            else:
                out.append(escape(line))
            continue
        if opening:
            fence = opening.group(1)
            out.append("```")
            continue
        if _RULE.match(line):
            out.append("")
        elif m := _HEADING.match(line):
            title = m.group(1).replace("**", "").replace("__", "")
            out.append(f"*{_inline(title, urls)}*")
        elif m := _BULLET.match(line):
            out.append(f"{m.group(1)}• {_inline(m.group(2), urls)}")
        elif m := _QUOTE.match(line):
            out.append(f">{' ' if m.group(1) else ''}{_inline(m.group(1), urls)}")
        else:
            out.append(_inline(line, urls))
    if fence is not None:
        out.append("```")
    return "\n".join(out).strip("\n")


def _inline(text: str, urls: dict[int, str]) -> str:
    parts = _CODE_SPAN.split(text)
    out = []
    # split() with two groups yields [text, ticks, code, text, ticks, code, ..., text]
    for i in range(0, len(parts), 3):
        out.append(_prose(parts[i], urls))
        if i + 2 < len(parts):
            out.append(f"`{escape(parts[i + 2])}`")
    return "".join(out)


def _prose(text: str, urls: dict[int, str]) -> str:
    tokens: list[str] = []

    def keep(rendered: str) -> str:
        tokens.append(rendered)
        return f"\x00{len(tokens) - 1}\x00"

    def linkish(m: re.Match[str]) -> str:
        if m.group("label") is not None:
            return keep(link(m.group("url"), m.group("label")))
        if m.group("auto") is not None:
            return keep(link(m.group("auto")))
        if m.group("n") is not None:
            n = int(m.group("n"))
            return keep(link(urls[n], f"[{n}]") if n in urls else f"[{n}]")
        return keep(link(m.group("bare")))

    text = escape(_LINKISH.sub(linkish, text.replace("\x00", "").replace(_STAR, "")))
    text = _BOLD.sub(lambda m: f"{_STAR}{m.group(1) or m.group(2)}{_STAR}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text).replace(_STAR, "*")
    return _TOKEN.sub(lambda m: tokens[int(m.group(1))], text)


def from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A user's Slack message as plain text for the assistant: our own mention removed, other mentions
    and links reduced to their labels, Slack's escapes undone."""

    def token(m: re.Match[str]) -> str:
        target, _, label = m.group(1).partition("|")
        if target.startswith("@"):
            return "" if target[1:] == bot_user_id else (f"@{label}" if label else "@someone")
        if target.startswith("#"):
            return f"#{label}" if label else "#channel"
        if target.startswith("!"):
            return ""  # <!here>, <!channel>, user groups: meaningless to the assistant
        return label or target

    text = re.sub(r"<([^<>]*)>", token, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def truncate(text: str, limit: int, note: str = "…") -> str:
    if len(text) <= limit:
        return text
    return text[:_cut(text, limit - len(note))].rstrip() + note


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut between paragraphs, then lines, then words; never inside
    a link or an escape. A code block cut in two is closed and reopened."""
    pieces: list[str] = []
    current = ""
    for block in _blocks(text):
        for part in _fit(block, limit):
            joined = f"{current}\n\n{part}" if current else part
            if len(joined) <= limit:
                current = joined
            else:
                pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _blocks(text: str) -> list[str]:
    """Paragraphs and whole code blocks, in order."""
    blocks: list[str] = []
    lines: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if line.strip() == "```":
            if in_code:
                lines.append(line)
                blocks.append("\n".join(lines))
                lines, in_code = [], False
                continue
            if lines:
                blocks.append("\n".join(lines))
            lines, in_code = [line], True
            continue
        if not in_code and not line.strip():
            if lines:
                blocks.append("\n".join(lines))
            lines = []
            continue
        lines.append(line)
    if lines:
        blocks.append("\n".join(lines) + ("\n```" if in_code else ""))
    return blocks


def _fit(block: str, limit: int) -> list[str]:
    if len(block) <= limit:
        return [block]
    if block.startswith("```"):
        inner, out = block[3:-3].strip("\n"), []
        while inner:
            end = _cut(inner, limit - 8)
            out.append(f"```\n{inner[:end].rstrip()}\n```")
            inner = inner[end:].lstrip("\n")
        return out
    out = []
    while len(block) > limit:
        end = _cut(block, limit)
        out.append(block[:end].rstrip())
        block = block[end:].lstrip()
    return out + ([block] if block else [])


def _cut(text: str, limit: int) -> int:
    """Where to cut `text` to at most `limit` characters: a line end, else a space, else anywhere;
    moved back so it never splits a <link> or an &entity;."""
    if len(text) <= limit:
        return len(text)
    head = text[:limit]
    end = head.rfind("\n")
    if end < limit // 2:
        end = max(end, head.rfind(" "))
    if end < limit // 2:
        end = limit
    opened = head.rfind("<", 0, end)
    if opened > head.rfind(">", 0, end) and opened > 0:
        end = opened
    amp = head.rfind("&", 0, end)
    if amp >= 0 and end - amp < 6 and ";" not in head[amp:end] and amp > 0:
        end = amp
    return end
