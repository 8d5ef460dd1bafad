"""Who may see which documents: the filter every retrieval for an identity runs with.

community: public documents; customers: public and customer documents, plus the resolved tickets of
their own organisation; agents and admins: everything, internal included. The filter is applied
inside both indexes (Chroma's where, the BM25 weight mask), so top-k is never silently short."""

from __future__ import annotations

from assistant.keys import Identity
from assistant.types import Where


def access_filter(identity: Identity | None) -> Where | None:
    """None means no restriction (staff, or the local operator's CLI)."""
    if identity is None or identity.staff:
        return None
    if identity.role == "customer" and identity.org:
        return {"$or": [{"audience": ["public", "customer"]}, {"org": identity.org}]}
    return {"audience": ["public"]}

