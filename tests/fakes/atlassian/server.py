"""The fake Atlassian site over HTTP: authentication as Atlassian does it, injected faults, routing to the
Confluence, Jira and JSM handlers, and contract checks on every exchange that is not an injected fault."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.atlassian.confluence import ConfluenceApi
from tests.fakes.atlassian.contracts import ALLOWED, Contracts, Violation, shared_contracts
from tests.fakes.atlassian.jira import JiraApi
from tests.fakes.atlassian.jsm import JsmApi
from tests.fakes.atlassian.queries import Answer, not_found_html
from tests.fakes.atlassian.state import Site
from tests.servers import AsgiServer


class FakeAtlassian(Site):
    """One fake site. `cloud=True`: Confluence at /wiki, Basic auth, v3 enhanced search, 410 on /search."""

    def __init__(self, cloud: bool, user: str = "bot@example.com", token: str = "tok-123",
                 contracts: Contracts | None = None) -> None:
        super().__init__(cloud, user, token)
        self.contracts = contracts
        self.violations: list[Violation] = []
        self.checked: set[str] = set()
        # Tests may replace a handler on these (e.g. fake.confluence.content_list) to break a response.
        self.confluence, self.jira, self.jsm = ConfluenceApi(self), JiraApi(self), JsmApi(self)
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])])
        # A deliberately slow answer must not hold up stop(), which tests also use to take the site down.
        self._server = AsgiServer(self.app, name="fake Atlassian", lifespan="off", graceful_stop=1)

    def unexpected_violations(self) -> list[Violation]:
        return [v for v in self.violations if not any(
            re.search(a.operation, v.operation) and re.search(a.message, v.message, re.S) for a in ALLOWED)]

    def _authorised(self, header: str) -> bool:
        if self.cloud:
            expected = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {self.token}"

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        with self.lock:
            status, payload, headers, fault = self._answer(request.method, path, query, request.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            ctype = headers.pop("content-type", "application/json;charset=UTF-8")
            self.log.append((request.method, path, query, status))
        if self.slow is not None and self.slow[1] in path:
            await asyncio.sleep(self.slow[0])
        operation = f"{request.method} {path}"
        if self.contracts is not None and not fault:
            req = {"query": query, "headers": dict(request.headers), "body": body,
                   "content_type": request.headers.get("content-type", "")}
            try:
                found = self.contracts.check(operation, self.cloud, req, status, data, ctype.split(";")[0])
            except Exception as exc:  # a checker bug must fail the test, not the request
                found = [Violation(operation, "checker", f"{type(exc).__name__}: {exc}")]
            self.checked.add(operation)
            with self.lock:
                self.violations.extend(found)
        return Response(data, status_code=status, headers=headers, media_type=ctype)

    def _answer(self, method: str, path: str, query: dict[str, str], headers: Any,
                body: bytes) -> tuple[int, Any, dict[str, str], bool]:
        if self.failure is not None and self.failure[1] in path and (
                not self.failure[3] or any(self.failure[3] in v for v in query.values())):
            status, frag, times, part = self.failure
            if times is not None:
                self.failure = (status, frag, times - 1, part) if times > 1 else None
            error = {"statusCode": status, "message": "Injected failure", "errorMessages": ["Injected failure"]}
            return status, error, {}, True
        if self.cloud and re.fullmatch(r"/rest/api/[23]/search", path):
            # Removed at Atlassian's edge: answered whatever the credentials (a Data Center client sends Bearer).
            status, result, extra = self.jira.search(v=path[10], query=query)
            return status, result, extra, False
        if not self._authorised(headers.get("authorization", "")):
            seraph = {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
            if path.startswith("/rest/servicedeskapi/"):
                return 401, {"errorMessage": "You are not authenticated.",
                             "i18nErrorMessage": {"i18nKey": "sd.auth.required", "parameters": []}}, seraph, False
            if path.startswith(("/wiki/", "/rest/api/content", "/rest/api/space", "/rest/api/search")):
                return 401, {"statusCode": 401, "message": "This request requires authentication",
                             "data": {"authorized": False, "valid": True, "errors": [], "successful": False}}, \
                    seraph, False
            return 401, {"errorMessages": ["You are not authenticated. Authentication required to perform this "
                                           "operation."], "errors": {}}, seraph, False
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, {"errorMessages": ["Unexpected character in JSON body"], "errors": {}}, {}, False
        status, result, extra = self.route(method, path, query, payload)
        return status, result, extra, False

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        """The handler whose pattern matches the whole path; 405 when only the method is wrong, and
        Atlassian's HTML 404 outside the APIs (a wrong base URL, say)."""
        allowed = []
        for verb, pattern, handler in [*self.confluence.routes(), *self.jira.routes(), *self.jsm.routes()]:
            m = re.fullmatch(pattern, path)
            if m:
                if verb == method:
                    return handler(query=query, body=body, **m.groupdict())
                allowed.append(verb)
        if allowed:
            return 405, {"errorMessages": [f"Method {method} not allowed"], "errors": {}}, {}
        return not_found_html()

    def start(self, port: int = 0) -> FakeAtlassian:
        self._server.start(port)
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Also the 'down' mode: connections are refused until start(self.port) again."""
        self._server.stop()


@contextmanager
def running(cloud: bool, **kwargs: Any) -> Iterator[FakeAtlassian]:
    """A started fake; on a clean exit it fails the test if any contract violation is not allow-listed."""
    fake = FakeAtlassian(cloud, contracts=shared_contracts(), **kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
    bad = fake.unexpected_violations()
    assert not bad, "Atlassian contract violations:\n" + "\n".join(map(str, bad))
