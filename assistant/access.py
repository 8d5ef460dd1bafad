"""Who may see which documents: the filter every retrieval for an identity runs with.

community: public documents; customers: public and customer documents, plus the resolved tickets of
their own organisation; agents and admins: everything, internal included.

Audience and organisation compose with AND: a document that carries an organisation (a ticket of a
customer project, say) only ever matches that organisation's customers, whatever its audience. An
audience alone would let every customer key read every organisation's `customer` tickets.

The filter is applied inside both indexes (Chroma's where; the keyword SQL query's WHERE, or the bm25s
weight mask), so top-k is never
silently short, and again on the database record of every hit (`allows`): the vector store's copy of
the metadata can be stale after a crash between its write and the database's."""

from __future__ import annotations

from collections.abc import Mapping

from assistant.keys import Identity
from assistant.types import Where


def access_filter(identity: Identity | None) -> Where | None:
    """None means no restriction (staff, or the local operator's CLI)."""
    if identity is None or identity.staff:
        return None
    if identity.role == "customer" and identity.org:
        return {"$or": [{"audience": ["public", "customer"], "org": ""}, {"org": identity.org}]}
    return {"audience": ["public"], "org": ""}


def allows(where: Where | None, fields: Mapping[str, str]) -> bool:
    """Whether a record with these field values passes `where` (the same semantics as both indexes:
    every key must hold, one alternative of "$or" must hold)."""
    if not where:
        return True
    for key, value in where.items():
        if key == "$or":
            if value and not any(allows(alternative, fields) for alternative in value):
                return False
            continue
        values = [value] if isinstance(value, str) else list(value)
        if fields.get(key, "") not in values:
            return False
    return True

