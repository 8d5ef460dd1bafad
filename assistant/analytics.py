"""Support analytics for maintainers: what the assistant resolves and where the docs have gaps.

Everything is SQLAlchemy Core over the conversation tables, so it runs the same on SQLite and
PostgreSQL. Counts are grouped in the database; what needs JSON (citations) or the embedding
model (grouping similar questions) is done in Python over one period's rows.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.embeddings import Embedder

ESCALATION_FLAGS = ("low_confidence", "human_requested")
# all-MiniLM-L6-v2 puts paraphrases of one question at ~0.75-0.95 and unrelated ones below ~0.2;
# 0.6 also joins looser rewordings of one need without merging different topics.
GAP_SIMILARITY = 0.6
MAX_GAP_QUESTIONS = 500  # the most recent ones; bounds the embedding work per request
# Columns the analytics read when the schema has them (added with latency measurement).
LATENCY_COLUMNS = ("latency_ms", "first_token_ms")


@dataclass
class Period:
    since: datetime
    until: datetime

    @classmethod
    def last(cls, days: int, now: datetime | None = None) -> Period:
        until = now or datetime.now(UTC)
        # Whole UTC days, today included, so the per-day chart has `days` full bars.
        start = datetime.combine(until.date() - timedelta(days=days - 1), datetime.min.time(), UTC)
        return cls(start, until)

    def days(self) -> list[date]:
        first, last = self.since.date(), self.until.date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _day(engine: Engine, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as the backend spells it."""
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", column)  # SQLite keeps our UTC timestamps as text


def _escalated(m: Any) -> Any:
    """An answer counts as escalated when the assistant escalated it (flags) or the user pressed
    "Talk to a human" after it (an escalation row naming the message)."""
    flags = sa.cast(m.flags, sa.Text)
    flagged = sa.or_(*(flags.like(f'%"{flag}"%') for flag in ESCALATION_FLAGS))
    requested = sa.exists().where(db.escalations.c.message_id == m.id)
    return sa.or_(flagged, requested)


def _latest_feedback() -> Any:
    """One rating per answer: the last one given (a user may change their mind or add a comment)."""
    f = db.feedback.c
    return sa.select(sa.func.max(f.id)).group_by(f.message_id).scalar_subquery()


def summary(engine: Engine, period: Period, embedder: Embedder | None = None, top: int = 10,
            similarity: float = GAP_SIMILARITY) -> dict[str, Any]:
    """The whole report: totals, one row per day, coverage gaps and the sources cited most."""
    m, f = db.messages.c, db.feedback.c
    in_period = sa.and_(m.role == "assistant", m.created_at >= period.since, m.created_at <= period.until)
    per_day: dict[str, dict[str, Any]] = {
        d.isoformat(): {"day": d.isoformat(), "questions": 0, "answered": 0, "escalated": 0, "up": 0, "down": 0}
        for d in period.days()
    }
    with engine.connect() as conn:
        day = _day(engine, m.created_at)
        escalated = sa.func.sum(sa.case((_escalated(db.messages.c), 1), else_=0))
        for row in conn.execute(sa.select(day.label("day"), sa.func.count().label("n"), escalated.label("esc"))
                                .where(in_period).group_by(day)):
            bucket = per_day.setdefault(row.day, {"day": row.day, "questions": 0, "answered": 0, "escalated": 0,
                                                  "up": 0, "down": 0})
            bucket.update(questions=int(row.n), escalated=int(row.esc or 0), answered=int(row.n) - int(row.esc or 0))
        fday = _day(engine, f.created_at)
        for row in conn.execute(
            sa.select(fday.label("day"), f.rating, sa.func.count().label("n"))
            .where(f.id.in_(_latest_feedback()), f.created_at >= period.since, f.created_at <= period.until)
            .group_by(fday, f.rating)
        ):
            if row.day in per_day and row.rating in ("up", "down"):
                per_day[row.day][row.rating] += int(row.n)
        requested = conn.execute(sa.select(sa.func.count()).select_from(db.escalations).where(
            db.escalations.c.requested_by_user.is_(True), db.escalations.c.created_at >= period.since,
            db.escalations.c.created_at <= period.until)).scalar_one()
        citations = [r for (r,) in conn.execute(sa.select(m.citations).where(in_period)) if r]
    days = sorted(per_day.values(), key=lambda d: d["day"])
    questions = sum(d["questions"] for d in days)
    answered = sum(d["answered"] for d in days)
    up, down = sum(d["up"] for d in days), sum(d["down"] for d in days)
    return {
        "period": {"since": period.since.isoformat(), "until": period.until.isoformat(), "days": len(days)},
        "totals": {
            "questions": questions,
            "answered": answered,
            "escalated": questions - answered,
            "deflection_rate": _ratio(answered, questions),
            "human_requests": int(requested),
            "thumbs_up": up,
            "thumbs_down": down,
            "thumbs_up_rate": _ratio(up, up + down),
            **latency(engine, period),
        },
        "per_day": days,
        "escalations": resolution(engine, period),
        "gaps": coverage_gaps(engine, period, embedder, top, similarity) if embedder is not None else [],
        "sources": top_sources(citations, top=top),
    }


def latency(engine: Engine, period: Period) -> dict[str, float | None]:
    """Median answer time and time to the first streamed text, where the schema records them."""
    m = db.messages.c
    out: dict[str, float | None] = {}
    for name in LATENCY_COLUMNS:
        key = f"median_{name}"
        if name not in db.messages.c:
            out[key] = None
            continue
        col = db.messages.c[name]
        with engine.connect() as conn:
            values = [float(v) for (v,) in conn.execute(sa.select(col).where(
                m.role == "assistant", col.is_not(None), m.created_at >= period.since, m.created_at <= period.until))]
        out[key] = round(statistics.median(values), 1) if values else None
    return out


def _channel(owner: str | None) -> str:
    """Where a conversation took place, from who owns it (Identity.owner): the widget (an anonymous
    visitor's "widget:" session or a signed-in user's "user:" identity), Slack, an API key's client, or
    the local operator (CLI; also rows from before owners were recorded)."""
    kind = (owner or "").split(":", 1)[0]
    return {"widget": "widget", "user": "widget", "slack": "slack", "key": "api"}.get(kind, "operator")


def _median_seconds(pairs: list[tuple[datetime, datetime | None]]) -> float | None:
    values = [(end - start).total_seconds() for start, end in pairs if end is not None and end >= start]
    return round(statistics.median(values), 1) if values else None


def resolution(engine: Engine, period: Period) -> dict[str, Any]:
    """What happened to the escalations opened in the period: how many were resolved (overall, per tier
    and per channel), how long until a human first answered and until resolution (medians, seconds;
    over the escalations that got there), and the askers' ratings. Rows are few (one per handoff), so
    they are grouped here, the same on every backend."""
    e, c = db.escalations.c, db.conversations.c
    q = (sa.select(e.tier, e.role, c.owner, e.created_at, e.first_response_at, e.resolved_at, e.rating)
         .select_from(db.escalations.join(db.conversations, c.id == e.conversation_id))
         .where(e.created_at >= period.since, e.created_at <= period.until))
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    groups: dict[str, dict[str, dict[str, Any]]] = {"tier": {}, "channel": {}}
    for r in rows:
        plan = r.tier or ("free" if r.role == "customer" else r.role or "operator")
        for kind, name in (("tier", plan), ("channel", _channel(r.owner))):
            g = groups[kind].setdefault(name, {kind: name, "escalations": 0, "resolved": 0, "rated_yes": 0,
                                               "rated_no": 0})
            g["escalations"] += 1
            g["resolved"] += r.resolved_at is not None
            g["rated_yes"] += r.rating == "yes"
            g["rated_no"] += r.rating == "no"
    for by in groups.values():
        for g in by.values():
            g["resolution_rate"] = _ratio(g["resolved"], g["escalations"])
    resolved = sum(r.resolved_at is not None for r in rows)
    return {
        "total": len(rows),
        "resolved": resolved,
        "resolution_rate": _ratio(resolved, len(rows)),
        "median_seconds_to_first_response": _median_seconds([(r.created_at, r.first_response_at) for r in rows]),
        "median_seconds_to_resolution": _median_seconds([(r.created_at, r.resolved_at) for r in rows]),
        "ratings": {"yes": sum(r.rating == "yes" for r in rows), "no": sum(r.rating == "no" for r in rows),
                    "unrated_resolved": sum(r.resolved_at is not None and r.rating is None for r in rows)},
        "by_tier": sorted(groups["tier"].values(), key=lambda g: (-g["escalations"], g["tier"])),
        "by_channel": sorted(groups["channel"].values(), key=lambda g: (-g["escalations"], g["channel"])),
    }


def coverage_gaps(engine: Engine, period: Period, embedder: Embedder, top: int = 10,
                  threshold: float = GAP_SIMILARITY) -> list[dict[str, Any]]:
    """Questions that were escalated or got a thumbs down, grouped by meaning, biggest group first:
    each group is a page the docs are missing (or one that does not answer what people ask)."""
    a, u, f = db.messages.alias("a"), db.messages.alias("u"), db.feedback.c
    latest = (sa.select(f.message_id, f.rating, f.comment).where(f.id.in_(_latest_feedback()))
              .subquery("latest"))
    escalated = _escalated(a.c)
    q = (
        sa.select(u.c.content, a.c.created_at, escalated.label("escalated"), latest.c.rating, latest.c.comment)
        .select_from(a.join(u, sa.and_(u.c.conversation_id == a.c.conversation_id, u.c.seq == a.c.seq - 1))
                     .outerjoin(latest, latest.c.message_id == a.c.id))
        .where(a.c.role == "assistant", a.c.created_at >= period.since, a.c.created_at <= period.until,
               sa.or_(escalated, latest.c.rating == "down"))
        .order_by(a.c.created_at.desc())
        .limit(MAX_GAP_QUESTIONS)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return []
    texts = [" ".join(r.content.split()) for r in rows]
    vectors = embedder.embed(texts, kind="query")
    groups = cluster(vectors, threshold)
    out = []
    for members in groups[:top]:
        centre = _normalise(vectors[members].sum(axis=0))
        best = max(members, key=lambda i: float(vectors[i] @ centre))
        examples = list(dict.fromkeys(texts[i] for i in members))
        out.append({
            "question": texts[best],
            "count": len(members),
            "escalated": sum(bool(rows[i].escalated) for i in members),
            "thumbs_down": sum(rows[i].rating == "down" for i in members),
            "examples": examples[:5],
            "comments": list(dict.fromkeys(rows[i].comment for i in members
                                           if rows[i].rating == "down" and rows[i].comment))[:5],
            "last_asked": max(rows[i].created_at for i in members).isoformat(),
        })
    return out


def cluster(vectors: np.ndarray, threshold: float = GAP_SIMILARITY) -> list[list[int]]:
    """Greedy single pass: each vector joins the group whose running centroid is most similar
    (cosine >= threshold) or starts a new one. Good enough for hundreds of short questions,
    and deterministic. Groups come back biggest first (ties: earliest first)."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        if groups:
            centroids = np.stack([_normalise(s) for s in sums])
            sims = centroids @ v
            j = int(np.argmax(sims))
            if float(sims[j]) >= threshold:
                groups[j].append(i)
                sums[j] = sums[j] + v
                continue
        groups.append([i])
        sums.append(np.array(v, dtype=np.float64))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def top_sources(citations: Sequence[list[dict[str, Any]]], top: int = 10) -> list[dict[str, Any]]:
    """Pages cited most (a page counts once per answer), with their most cited section."""
    pages: Counter[str] = Counter()
    sections: dict[str, Counter[str]] = {}
    titles: dict[str, str] = {}
    for cited in citations:
        seen = set()
        for c in cited:
            url = str(c.get("url") or "")
            page = url.split("#", 1)[0]
            if not page:
                continue
            titles.setdefault(page, str(c.get("title") or page).split(" — ", 1)[0])
            sections.setdefault(page, Counter())[url] += 1
            if page not in seen:
                seen.add(page)
                pages[page] += 1
    return [
        {"url": page, "title": titles[page], "citations": n, "top_section": sections[page].most_common(1)[0][0]}
        for page, n in pages.most_common(top)
    ]


def _normalise(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- CSV -----------------------------------------------------------------------------------------
CSV_TABLES = {
    "days": ("per_day", ["day", "questions", "answered", "escalated", "up", "down"]),
    "gaps": ("gaps", ["question", "count", "escalated", "thumbs_down", "last_asked", "examples", "comments"]),
    "sources": ("sources", ["title", "url", "citations", "top_section"]),
    "tiers": ("by_tier", ["tier", "escalations", "resolved", "resolution_rate", "rated_yes", "rated_no"]),
    "channels": ("by_channel", ["channel", "escalations", "resolved", "resolution_rate", "rated_yes", "rated_no"]),
}


def to_csv(report: dict[str, Any], table: str) -> str:
    """One table of the report as CSV. Cells are user text, so spreadsheet formulas are defused."""
    key, columns = CSV_TABLES[table]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in report[key] if key in report else report["escalations"][key]:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = " | ".join(str(v) for v in value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # A question like "=HYPERLINK(...)" must stay text when a maintainer opens the file.
        return "'" + value
    return value
