"""Confluence as the fake serves it: REST v1 (Cloud under /wiki, Data Center without it, including DC's
anonymous space permissions) and, on Cloud, v2 pages and spaces. Next links are relative to `_links.base`
and page sizes are capped below what clients ask for, as Atlassian does."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tests.fakes.atlassian.queries import (
    Answer,
    Api,
    decode_token,
    encode_token,
    query_filter,
)
from tests.fakes.atlassian.state import DEFAULT_PERSON, Page, Person, Space, iso


class ConfluenceApi(Api):
    def routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        ctx = "/wiki" if self.f.cloud else ""
        return [
            ("GET", ctx + r"/rest/api/space", self.spaces),
            ("GET", ctx + r"/rest/api/space/(?P<key>[^/]+)", self.space),
            *([] if self.f.cloud else [("GET", r"/rest/api/space/(?P<key>[^/]+)/permissions/anonymous",
                                        self.anonymous_permissions)]),
            ("GET", ctx + r"/rest/api/content", self.content_list),
            ("GET", ctx + r"/rest/api/content/(?P<page_id>\d+)", self.content),
            ("GET", ctx + r"/rest/api/content/(?P<page_id>\d+)/restriction/byOperation", self.restrictions),
            ("GET", ctx + r"/rest/api/search", self.cql_search),
            *([("GET", r"/wiki/api/v2/pages", self.v2_pages), ("GET", r"/wiki/api/v2/spaces", self.v2_spaces)]
              if self.f.cloud else []),
        ]

    def _links(self) -> dict[str, str]:
        return {"base": self.f.confluence_url, "context": "/wiki" if self.f.cloud else ""}

    def _user(self, person: Person) -> dict[str, Any]:
        if self.f.cloud:
            return {"type": "known", "accountId": person.account_id, "accountType": "atlassian",
                    "email": person.email, "publicName": person.display_name, "displayName": person.display_name}
        return {"type": "known", "username": person.email.split("@")[0], "userKey": person.account_id,
                "displayName": person.display_name}

    def _space_json(self, space: Space) -> dict[str, Any]:
        return {"id": space.id, "key": space.key, "name": space.name, "type": "global", "status": "current",
                "_expandable": {"homepage": "", "description": "", "permissions": ""},
                "_links": {"webui": f"/spaces/{space.key}" if self.f.cloud else f"/display/{space.key}",
                           "self": f"{self.f.confluence_url}/rest/api/space/{space.key}"}}

    def _webui(self, page: Page) -> str:
        if self.f.cloud:
            return f"/spaces/{page.space}/pages/{page.id}/{re.sub(r'[^A-Za-z0-9]+', '+', page.title).strip('+')}"
        return f"/pages/viewpage.action?pageId={page.id}"

    def _ancestors(self, page: Page) -> list[Page]:
        chain, parent = [], page.parent
        while parent and parent in self.f.pages:
            chain.append(self.f.pages[parent])
            parent = self.f.pages[parent].parent
        return list(reversed(chain))

    def _page_json(self, page: Page, expand: set[str]) -> dict[str, Any]:
        def wants(name: str) -> bool:
            return any(e == name or e.startswith(name + ".") for e in expand)

        out: dict[str, Any] = {
            "id": page.id, "type": "page", "status": "current", "title": page.title,
            "_links": {"webui": self._webui(page), "tinyui": f"/x/{page.id}",
                       "self": f"{self.f.confluence_url}/rest/api/content/{page.id}"},
            "_expandable": {k: "" for k in ("version", "ancestors", "space", "body", "metadata", "restrictions")
                            if not wants(k)},
        }
        if wants("version"):
            out["version"] = {"number": page.version, "when": iso(page.updated), "minorEdit": False,
                              "by": self._user(DEFAULT_PERSON), "_links": {}, "_expandable": {}}
        if wants("ancestors"):
            out["ancestors"] = [self._page_json(a, set()) for a in self._ancestors(page)]
        if wants("space"):
            out["space"] = self._space_json(self.f.spaces[page.space])
        if "body.storage" in expand:
            out["body"] = {"storage": {"value": page.body, "representation": "storage", "_expandable": {}},
                           "_expandable": {"view": ""}}
        if wants("metadata"):
            labels = [{"prefix": "global", "name": n, "id": str(1000 + i), "label": n}
                      for i, n in enumerate(page.labels)]
            out["metadata"] = {"labels": {"results": labels, "start": 0, "limit": 200, "size": len(labels),
                                          "_links": {}}, "_expandable": {}}
        if wants("restrictions"):
            out["restrictions"] = {"read": self._restriction(page, "read"), "_expandable": {"update": ""},
                                   "_links": {}}
        return out

    def _restriction(self, page: Page, operation: str) -> dict[str, Any]:
        users = [self._user(Person(u, f"{u}@example.com", f"acc-{u}")) for u in page.restricted_users]
        groups = [{"type": "group", "name": g} for g in page.restricted_groups]
        return {"operation": operation, "_expandable": {"content": ""}, "_links": {},
                "restrictions": {"user": {"results": users, "start": 0, "limit": 200, "size": len(users)},
                                 "group": {"results": groups, "start": 0, "limit": 200, "size": len(groups)}}}

    @staticmethod
    def _page_window(query: dict[str, str], default: int, cap: int) -> tuple[int, int]:
        try:
            start, limit = int(query.get("start", 0)), int(query.get("limit", default))
        except ValueError:
            start, limit = 0, default
        return max(start, 0), max(1, min(limit, cap))  # Atlassian silently caps the page size

    def spaces(self, query: dict[str, str], **_: Any) -> Answer:
        start, limit = self._page_window(query, 25, 100)
        items = sorted(self.f.spaces.values(), key=lambda s: s.key)[start:start + limit]
        return 200, {"results": [self._space_json(s) for s in items], "start": start, "limit": limit,
                     "size": len(items), "_links": self._links()}, {}

    @staticmethod
    def _no_space(key: str) -> Answer:
        return 404, {"statusCode": 404, "data": {"authorized": False, "valid": True, "errors": [],
                                                 "successful": False},
                     "message": f"No space with key : {key}", "reason": "Not Found"}, {}

    def space(self, key: str, query: dict[str, str], **_: Any) -> Answer:
        if key not in self.f.spaces:
            return self._no_space(key)
        space = self.f.spaces[key]
        out = self._space_json(space)
        if "permissions" in query.get("expand", "").split(","):
            if space.permissions_visible:  # Cloud v1: SpacePermission, anonymous access is a flag on it
                out["permissions"] = self._space_permissions(space)
            out["_expandable"] = {k: v for k, v in out["_expandable"].items() if k != "permissions"}
        return 200, out, {}

    @staticmethod
    def _space_permissions(space: Space) -> list[dict[str, Any]]:
        def grant(n: int, operation: str, anonymous: bool) -> dict[str, Any]:
            subjects = {"_expandable": {"user": ""}} if anonymous else {
                "group": {"results": [{"type": "group", "name": "confluence-users"}], "size": 1},
                "_expandable": {"user": ""}}
            return {"id": space.id * 10 + n, "subjects": subjects,
                    "operation": {"operation": operation, "targetType": "space"},
                    "anonymousAccess": anonymous, "unlicensedAccess": False}

        grants = [grant(0, "read", False), grant(1, "export", False)]
        return grants + ([grant(2, "read", True)] if space.anonymous_view else [])

    def anonymous_permissions(self, key: str, **_: Any) -> Answer:
        """Data Center's GET /rest/api/space/{key}/permissions/anonymous; it needs space admin rights."""
        if key not in self.f.spaces:
            return self._no_space(key)
        space = self.f.spaces[key]
        if not space.permissions_visible:
            return 403, {"statusCode": 403, "message": "Could not find permission for current user",
                         "reason": "Forbidden"}, {}
        subject = {"type": "anonymous", "displayName": "Anonymous"}
        return 200, [{"operation": {"targetType": "space", "operationKey": op}, "subject": subject, "spaceKey": key}
                     for op in (("read", "export") if space.anonymous_view else ())], {}

    def content_list(self, query: dict[str, str], **_: Any) -> Answer:
        expand = {e for e in query.get("expand", "").split(",") if e}
        # With bodies Confluence serves far fewer results per page than asked for.
        start, limit = self._page_window(query, 25, 25 if any(e.startswith("body") for e in expand) else 100)
        pages = sorted((p for p in self.f.pages.values()
                        if p.space == query.get("spaceKey", p.space) and query.get("type", "page") == "page"),
                       key=lambda p: int(p.id))
        window = pages[start:start + limit]
        links = {**self._links(), "self": f"{self.f.confluence_url}/rest/api/content"}
        if start + limit < len(pages):  # relative to _links.base, exactly as Atlassian returns it
            links["next"] = "/rest/api/content?" + urlencode({**query, "start": start + limit, "limit": limit})
        return 200, {"results": [self._page_json(p, expand) for p in window], "start": start, "limit": limit,
                     "size": len(window), "_links": links}, {}

    def content(self, page_id: str, query: dict[str, str], **_: Any) -> Answer:
        page = self.f.pages.get(page_id)
        if page is None:
            return 404, {"statusCode": 404, "data": {"authorized": False, "valid": True, "errors": [],
                                                     "successful": False},
                         "message": f"No content found with id : ContentId{{id={page_id}}}", "reason": "Not Found"}, {}
        expand = {e for e in query.get("expand", "history,space,version").split(",") if e}
        return 200, self._page_json(page, expand), {}

    def restrictions(self, page_id: str, **_: Any) -> Answer:
        page = self.f.pages.get(page_id)
        if page is None:
            return 404, {"statusCode": 404, "message": f"No content found with id : {page_id}"}, {}
        update = self._restriction(page, "update")
        update["restrictions"] = {"user": {"results": [], "start": 0, "limit": 200, "size": 0},
                                  "group": {"results": [], "start": 0, "limit": 200, "size": 0}}
        return 200, {"read": self._restriction(page, "read"), "update": update}, {}

    def _cql_filter(self, cql: str) -> Callable[[Page], bool] | str:
        fields: dict[str, Callable[[Page], set[str]]] = {
            "space": lambda p: {p.space}, "space.key": lambda p: {p.space}, "type": lambda p: {"page"},
            "id": lambda p: {p.id}}
        return query_filter(cql, fields, "lastmodified", lambda _clause: f"Could not parse cql : {cql}")

    def cql_search(self, query: dict[str, str], **_: Any) -> Answer:
        cql = query.get("cql", "")
        match = self._cql_filter(cql)
        if isinstance(match, str):
            return 400, {"statusCode": 400, "data": {"authorized": True, "valid": False, "errors": [],
                                                     "successful": False}, "message": match}, {}
        expand = {e[len("content."):] for e in query.get("expand", "").split(",") if e.startswith("content.")}
        cursor = decode_token(query["cursor"]) if query.get("cursor") else None
        start = int(cursor["start"]) if cursor else int(query.get("start", 0))
        _start, limit = self._page_window(query, 25, 25 if any(e.startswith("body") for e in expand) else 100)
        found = sorted((p for p in self.f.pages.values() if match(p) and p.id not in self.f.unindexed),
                       key=lambda p: int(p.id))
        window = found[start:start + limit]
        results = [{
            "content": self._page_json(p, expand), "title": p.title, "excerpt": "", "url": self._webui(p),
            "resultGlobalContainer": {"title": self.f.spaces[p.space].name, "displayUrl": f"/spaces/{p.space}"},
            "breadcrumbs": [], "entityType": "content", "iconCssClass": "aui-icon content-type-page",
            "lastModified": iso(p.updated), "friendlyLastModified": "just now", "score": 1.0,
        } for p in window]
        links = {**self._links(), "self": f"{self.f.confluence_url}/rest/api/search"}
        if start + limit < len(found):
            rest = {k: v for k, v in query.items() if k not in ("cursor", "start", "next")}
            if self.f.cloud:  # Cloud pages search results with an opaque cursor
                links["next"] = "/rest/api/search?" + urlencode(
                    {"next": "true", "cursor": encode_token({"start": start + limit}), **rest, "limit": limit})
            else:
                links["next"] = "/rest/api/search?" + urlencode({**rest, "start": start + limit, "limit": limit})
        return 200, {"results": results, "start": start, "limit": limit, "size": len(window),
                     "totalSize": len(found), "cqlQuery": cql, "searchDuration": 3, "_links": links}, {}

    # -- Confluence v2 (Cloud only) ------------------------------------------------------------------------
    def v2_spaces(self, query: dict[str, str], **_: Any) -> Answer:
        keys = set(query.get("keys", "").split(",")) - {""}
        found = [s for s in self.f.spaces.values() if not keys or s.key in keys]
        return 200, {"results": [{"id": str(s.id), "key": s.key, "name": s.name, "type": "global",
                                  "status": "current", "authorId": DEFAULT_PERSON.account_id,
                                  "createdAt": iso(datetime(2024, 1, 1, tzinfo=UTC)), "homepageId": "1",
                                  "_links": {"webui": f"/spaces/{s.key}"}} for s in found],
                     "_links": {"base": self.f.confluence_url}}, {}

    def v2_pages(self, query: dict[str, str], **_: Any) -> Answer:
        space_ids = {int(x) for x in query.get("space-id", "").split(",") if x.isdigit()}
        keys = {s.key for s in self.f.spaces.values() if s.id in space_ids}
        pages = sorted((p for p in self.f.pages.values() if not space_ids or p.space in keys), key=lambda p: int(p.id))
        cursor = decode_token(query["cursor"]) if query.get("cursor") else None
        start = int(cursor["start"]) if cursor else 0
        limit = max(1, min(int(query.get("limit", 25)), 250))
        window = pages[start:start + limit]
        fmt = query.get("body-format", "")
        results = []
        for p in window:
            item: dict[str, Any] = {
                "id": p.id, "status": "current", "title": p.title, "spaceId": str(self.f.spaces[p.space].id),
                "parentId": p.parent or "", "parentType": "page", "authorId": DEFAULT_PERSON.account_id,
                "createdAt": iso(p.updated),
                "version": {"number": p.version, "createdAt": iso(p.updated), "minorEdit": False, "message": "",
                            "authorId": DEFAULT_PERSON.account_id},
                "body": {"storage": {"representation": "storage", "value": p.body}} if fmt == "storage" else {},
                "_links": {"webui": self._webui(p), "tinyui": f"/x/{p.id}"},
            }
            results.append(item)
        links: dict[str, str] = {"base": self.f.confluence_url}
        headers: dict[str, str] = {}
        if start + limit < len(pages):  # the next link repeats every filter, starting with /wiki
            nxt = "/wiki/api/v2/pages?" + urlencode({**{k: v for k, v in query.items() if k != "cursor"},
                                                     "cursor": encode_token({"start": start + limit})})
            links["next"] = nxt
            headers["Link"] = f'<{nxt}>; rel="next", <{self.f.confluence_url}>; rel="base"'
        return 200, {"results": results, "_links": links}, headers
