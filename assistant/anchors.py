"""Heading anchors, one rule for the whole project: ingestion cites `page#anchor` and the demo docs
site renders headings with the same ids, so a citation lands on its section."""

from __future__ import annotations

import re


def slugify(heading: str) -> str:
    """GitHub-style anchor: lower-case, punctuation dropped, each space becomes '-' (not collapsed)."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return re.sub(r"\s", "-", slug)


def unique_anchor(anchor: str, used: set[str]) -> str:
    """GitHub's duplicate rule: foo, foo-1, foo-2 ... skipping ids already taken."""
    candidate, n = anchor, 0
    while candidate in used:
        n += 1
        candidate = f"{anchor}-{n}"
    used.add(candidate)
    return candidate
