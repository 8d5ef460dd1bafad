"""Contract checks for the fake Atlassian site: every request it receives and every response it gives is
validated against Atlassian's own OpenAPI documents (../shared/contracts/atlassian, see NOTES.md there), and
the library's known deviations are allowed explicitly in ALLOWED, each with its reason."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "contracts" / "atlassian"
SPEC_HOST = "https://spec.test"
SPEC_FILES = {
    "confluence-v1": "confluence-cloud-v1.openapi.json",
    "confluence-v2": "confluence-cloud-v2.openapi.json",
    "jira-v3": "jira-cloud-platform-v3.openapi.json",
    "jsm": "jira-service-management-cloud.openapi.json",
}


@dataclass(frozen=True)
class Allowed:
    """A known deviation: the library (or Atlassian itself) does not match the published document."""

    operation: str  # regex on "METHOD /path"
    message: str  # regex on the violation text
    reason: str


ALLOWED = [
    Allowed(r"^POST /rest/api/[23]/issue/[^/]+/transitions$", r"transition/id: \d+ is not of type 'string'",
            "atlassian-python-api sends the transition id as a number; the document says string (NOTES.md)"),
    Allowed(r"^POST /rest/api/[23]/issue/[^/]+/transitions$", r"^status 204: MissingData",
            "the document gives 204 No Content a JSON body; Jira (and this fake) answer 204 with no body"),
    Allowed(r"^PUT /rest/api/[23]/issue/[^/]+$", r"^status 204: MissingData",
            "the document gives editIssue's 204 No Content a JSON body; Jira answers 204 with no body"),
    Allowed(r"^GET /rest/servicedeskapi/request/[^/]+/comment$", r"^query parameter (public|internal)='(True|False)'",
            "atlassian-python-api sends capitalised booleans public=True&internal=True (NOTES.md)"),
    Allowed(r"^GET /rest/api/[23]/search$", r"^undocumented status 410$",
            "Jira Cloud removed /rest/api/{2,3}/search and answers 410; the document still lists 200 only"),
    Allowed(r".", r"^status 4\d\d: .*mimetype not found: application/json\. Valid mimetypes: \[\]$",
            "the documents list most 4xx answers without a body; Atlassian sends a JSON error body with them"),
    Allowed(r"^GET /rest/api/space/[^/]+/permissions/anonymous$", r"PathNotFound",
            "Data Center only (REST API 'Space Permissions', Confluence 9.x); the Cloud v1 document lacks it and "
            "no DC document is public. Shape per developer.atlassian.com/server/confluence/rest/v1000: a list "
            "of {operation: {operationKey, targetType}, subject, spaceKey}"),
    Allowed(r"^(GET|POST) /rest/api/[23]/issue/[^/]+/comment$", r"'\d{4}-\d\d-\d\dT[\d:.]+\+0000' is not a 'date-time'",
            "Jira writes times as 2024-01-31T10:00:00.000+0000 (no colon in the offset), not RFC 3339 as declared"),
]

@dataclass
class Violation:
    operation: str
    direction: str  # "request" or "response"
    message: str

    def __str__(self) -> str:
        return f"{self.operation} ({self.direction}): {self.message}"


def _strip_security(node: Any) -> None:
    """Auth is checked by the fake itself: Data Center uses Bearer PATs the Cloud documents do not know."""
    if isinstance(node, dict):
        node.pop("security", None)
        for value in node.values():
            _strip_security(value)
    elif isinstance(node, list):
        for value in node:
            _strip_security(value)


def _fix_defaults(node: Any) -> None:
    """Repair two defects of Atlassian's documents that would fail every request omitting the parameter:
    an array whose string enum sits on the array itself (moved to its items), and defaults outside their
    own enum, such as '' (dropped)."""
    if isinstance(node, dict):
        items = node.get("items")
        if node.get("type") == "array" and "enum" in node and isinstance(items, dict) and "enum" not in items:
            items["enum"] = node.pop("enum")
        enum = node.get("enum") or (items.get("enum") if isinstance(items, dict) else None)
        if "default" in node and enum:
            values = node["default"] if isinstance(node["default"], list) else [node["default"]]
            if any(v not in enum for v in values):
                del node["default"]
        if isinstance(items, dict) and items.get("default") == "":
            del items["default"]
        for value in node.values():
            _fix_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _fix_defaults(value)


class Contracts:
    """Validates requests and responses against the OpenAPI documents, via openapi-core."""

    def __init__(self, folder: Path = SPEC_DIR) -> None:
        self.folder = folder
        self._apis: dict[str, Any] = {}
        self._specs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def available(self) -> bool:
        return all((self.folder / f).is_file() for f in SPEC_FILES.values())

    def _api(self, name: str) -> Any:
        with self._lock:
            if name not in self._apis:
                from openapi_core import Config, OpenAPI

                spec = json.loads((self.folder / SPEC_FILES[name]).read_text())
                spec["servers"] = [{"url": SPEC_HOST + ("/wiki/api/v2" if name == "confluence-v2" else "")}]
                _strip_security(spec)
                _fix_defaults(spec)
                self._apis[name] = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
                self._specs[name] = spec
            return self._apis[name]

    @staticmethod
    def locate(path: str, cloud: bool) -> tuple[str, str] | None:
        """(document, path in that document) for a path the fake serves; None: not an Atlassian API path."""
        if path.startswith("/rest/servicedeskapi/"):
            return "jsm", path
        m = re.match(r"^/rest/api/([23])(/.*)$", path)
        if m:  # Jira v2 has v3's operations with plain strings where v3 has ADF (SOURCE.md)
            return "jira-v3", "/rest/api/3" + m.group(2)
        if path.startswith("/wiki/api/v2/"):
            return "confluence-v2", path
        conf = path[len("/wiki"):] if cloud and path.startswith("/wiki/") else (None if cloud else path)
        if conf and conf.startswith("/rest/api/"):  # Data Center: checked against Cloud v1 (same shapes)
            return "confluence-v1", "/wiki" + conf
        return None

    def _operation(self, name: str, path: str, method: str) -> dict[str, Any]:
        self._api(name)
        for template, item in self._specs[name]["paths"].items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                return dict(item.get(method.lower()) or {})
        return {}

    def _strict_booleans(self, name: str, path: str, method: str, query: dict[str, str]) -> list[str]:
        """openapi-core casts 'True' to true; Atlassian documents say true/false, so check the raw text."""
        out = []
        for param in self._operation(name, path, method).get("parameters", []):
            if "$ref" in param or param.get("in") != "query" or param.get("name") not in query:
                continue
            if (param.get("schema") or {}).get("type") == "boolean" and query[param["name"]] not in ("true", "false"):
                out.append(f"query parameter {param['name']}={query[param['name']]!r} is not true/false")
        return out

    def check(self, operation: str, cloud: bool, request: dict[str, Any], status: int, body: bytes,
              content_type: str) -> list[Violation]:
        from openapi_core.testing import MockRequest, MockResponse

        method, path = operation.split(" ", 1)
        where = self.locate(path, cloud)
        if where is None:
            return []
        api = self._api(where[0])
        req = MockRequest(SPEC_HOST, method, where[1], args=request["query"], headers=request["headers"],
                          data=request["body"] or None, content_type=request["content_type"] or "application/json")
        out = [Violation(operation, "request", m) for m in self._strict_booleans(*where, method, request["query"])]
        try:
            api.validate_request(req)
        except Exception as exc:
            out += [Violation(operation, "request", m) for m in _describe(exc)]
        try:
            api.validate_response(req, MockResponse(body, status_code=status, content_type=content_type))
        except Exception as exc:
            if "ResponseNotFound" in type(exc).__name__:
                out.append(Violation(operation, "response", f"undocumented status {status}"))
            else:
                out += [Violation(operation, "response", f"status {status}: {m}") for m in _describe(exc)]
        return out


def _describe(exc: Exception) -> list[str]:
    """One message per schema error, so an allowed deviation never hides another error beside it."""
    found: list[str] = []
    cause: BaseException | None = exc
    while cause is not None:
        for e in getattr(cause, "schema_errors", None) or ():
            found.append(f"{type(exc).__name__}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:500])
        cause = cause.__cause__
    return found or [f"{type(exc).__name__}: {exc}"[:500]]


_SHARED: list[Contracts] = []


def shared_contracts() -> Contracts | None:
    """One checker per test session (the documents load once); None when ../shared is not there."""
    if not _SHARED:
        _SHARED.append(Contracts())
    return _SHARED[0] if _SHARED[0].available() else None


SKIP_REASON = (f"Atlassian OpenAPI documents not found in {SPEC_DIR} (../shared/contracts/atlassian beside the "
               "repository): contract checks cannot run")
