"""What the three APIs share: the answer tuple, opaque paging tokens, and the small CQL/JQL subset the fake
understands (clauses joined by AND, comparisons on whole minutes as Atlassian does)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tests.fakes.atlassian.state import Issue, Page, Site

Answer = tuple[int, Any, dict[str, str]]


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_when(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)  # the fake's users all live in UTC
        except ValueError:
            pass
    return None


def clause_values(text: str) -> list[str]:
    return [a or b for a, b in re.findall(r'"([^"]*)"|([\w.~-]+)', text)]


COMPARE: dict[str, Callable[[datetime, datetime], bool]] = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
}


def changed(item: Page | Issue, op: Callable[[datetime, datetime], bool], when: datetime) -> bool:
    return op(item.updated.replace(second=0, microsecond=0), when)  # CQL and JQL compare whole minutes


def clauses(query: str) -> list[str]:
    text = re.split(r"\border\s+by\b", query, flags=re.I)[0]
    return [c.strip().strip("()").strip() for c in re.split(r"\s+and\s+", text.strip(), flags=re.I) if c.strip()]


Test = Callable[[Any], bool]


def query_filter(query: str, fields: dict[str, Callable[[Any], set[str]]], modified: str,
                 unsupported: Callable[[str], str], flags: Callable[[str], Test | None] = lambda _clause: None,
                 check: Callable[[str, set[str]], str | None] = lambda _field, _values: None) -> Test | str:
    """A test for the CQL/JQL subset the fake knows, clauses joined by AND: `field = v` and `field in (a, b)`
    on `fields` (lower-case name -> the item's values), `<modified> >= "2024-01-31 10:00"` and the other
    comparisons (whole minutes), and `flags` for clauses of their own. A string is the error: `check`'s for
    a field's values, or `unsupported(clause)` for a clause outside the subset (each API words it its way)."""
    tests: list[Test] = []
    for clause in clauses(query):
        flag = flags(clause)
        if flag is not None:
            tests.append(flag)
            continue
        m = re.fullmatch(r"([\w.]+)\s*(=|in)\s*(.+)", clause, re.I)
        if m and m.group(1).lower() in fields:
            name, wanted = m.group(1).lower(), set(clause_values(m.group(3)))
            error = check(name, wanted)
            if error:
                return error
            tests.append(partial(_has_any, values=fields[name], wanted=wanted))
            continue
        m = re.fullmatch(r'([\w.]+)\s*(>=|>|<=|<)\s*"([^"]+)"', clause, re.I)
        when = parse_when(m.group(3)) if m else None
        if m and m.group(1).lower() == modified and when is not None:
            tests.append(partial(changed, op=COMPARE[m.group(2)], when=when))
            continue
        return unsupported(clause)
    return lambda item: all(t(item) for t in tests)


def _has_any(item: Any, values: Callable[[Any], set[str]], wanted: set[str]) -> bool:
    return bool(values(item) & wanted)


def not_found_html() -> Answer:
    return 404, b"<html><body><h1>Oops, you've found a dead link.</h1></body></html>", {"content-type": "text/html"}



class Api:
    """One REST API of the site; `routes` lists (method, path regex, handler), read on every request so a
    test may replace a handler on the instance."""

    def __init__(self, site: Site) -> None:
        self.f = site

    def routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        raise NotImplementedError
