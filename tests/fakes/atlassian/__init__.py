"""A local fake Atlassian site for tests: Confluence v1 (Cloud under /wiki, Data Center without it) and
v2 pages, Jira v2/v3 (Data Center search with startAt/total, Cloud enhanced search with nextPageToken and
410 Gone on the removed /search), and Jira Service Management requests and comments.

It answers the way Atlassian does where our code could trip: Confluence `_links.next` is RELATIVE to
`_links.base` (which ends in /wiki on Cloud), page sizes are capped below what the client asks for,
unknown space keys give Atlassian's 404, Cloud wants Basic e-mail:token and Data Center a Bearer PAT.

Every request and response is checked against Atlassian's OpenAPI documents (../shared/contracts/
atlassian) by `Contracts`; violations are recorded, and `running()` fails the test on any that is not
in ALLOWED. Nothing is left unchecked: Data Center and Jira v2 paths are checked against the Cloud
operation of the same shape (`Contracts.locate`: Confluence /rest/api/... -> /wiki/rest/api/...,
Jira /rest/api/2/... -> /rest/api/3/..., where the bodies checked here are not ADF-typed), and an API
path the documents lack is itself a violation; only requests outside the APIs (a wrong base URL, which
the fake answers with Atlassian's HTML 404) are not checked. State lives in memory; tests change it.

The package, by concern: `contracts` (the OpenAPI checks and allowed deviations), `state` (what the site
holds, and the changes tests make), `confluence`, `jira` and `jsm` (the handlers of each API, on helpers
from `queries`), `adf` (the fake's own Atlassian Document Format code) and `server` (HTTP, auth, faults).
"""

from tests.fakes.atlassian import adf
from tests.fakes.atlassian.contracts import ALLOWED, SKIP_REASON, Allowed, Contracts, Violation, shared_contracts
from tests.fakes.atlassian.server import FakeAtlassian, running
from tests.fakes.atlassian.state import DEFAULT_PERSON, ORG_FIELD, Comment, Issue, Page, Person, Space

__all__ = ["ALLOWED", "DEFAULT_PERSON", "ORG_FIELD", "SKIP_REASON", "Allowed", "Comment", "Contracts",
           "FakeAtlassian", "Issue", "Page", "Person", "Space", "Violation", "adf", "running",
           "shared_contracts"]
