"""The GitHub API as the GitHub connector uses it, through githubkit: conditional GETs with ETags we keep
ourselves, Link-header paging, GraphQL, rate limits waited out within a budget, and every failure turned
into a SourceError that names the cause and the next step.

Why not githubkit's own cache: its hishel cache lives in memory for one client, so it cannot make the
next run's requests conditional; the ETags are stored in the `state` table instead (ingest/github/sync.py).
Why our own retry decision: githubkit's default waits out a primary limit for as long as the reset is
away (up to an hour) without saying so; this one tells the user, and stops once the run's budget is spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from githubkit import GitHub
from githubkit.exception import (
    GitHubException,
    GraphQLFailed,
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.typing import RetryOption

from assistant.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"  # served by github.com and by every supported GitHub Enterprise Server
USER_AGENT = "answerdesk/0.1 (github connector)"
RESET_MARGIN = 1.0  # x-ratelimit-reset is a whole second: waiting one more avoids a second 403
MAX_TRIES = 5  # rate-limit waits for one request; more means something else is wrong
TOKEN_HELP = "docs/github.md explains how to create one"


def check_api_url(url: str) -> str:
    """The REST API root: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"ANSWERDESK_GITHUB_URL must be an http(s) URL, got {url!r}.")
    if parts.username or parts.password:
        raise ConfigError("ANSWERDESK_GITHUB_URL must not contain credentials: the token goes in "
                          "ANSWERDESK_GITHUB_TOKEN.")
    if parts.hostname in ("github.com", "www.github.com"):
        raise ConfigError("ANSWERDESK_GITHUB_URL is the API address, not the website: https://api.github.com "
                          "(GitHub Enterprise Server: https://HOST/api/v3).")
    if parts.path.rstrip("/").endswith("/api/graphql"):
        raise ConfigError("ANSWERDESK_GITHUB_URL is the REST root (https://HOST/api/v3); the GraphQL address "
                          "(https://HOST/api/graphql) is derived from it.")
    return url.strip().rstrip("/")


class GitHubError(SourceError):
    """A failed GitHub request; `status` is the HTTP status when there was one (404/410: the item is gone)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Page:
    status: int  # 200, or 304 when the ETag we sent still matches
    data: Any
    etag: str | None
    next_url: str | None  # the Link header's rel="next"
    last_page: int | None = None  # the page number in rel="last" (GitHub gives it on the first page)


class RateLimitWaits:
    """githubkit's auto_retry hook: waits out primary and secondary rate limits (and retries server errors)
    while the run's total wait stays within `budget` seconds, telling the user each time."""

    def __init__(self, budget: float, notify: Callable[[str], None]) -> None:
        self.budget, self.notify = budget, notify
        self.waited = 0.0
        self.refused: str | None = None  # why the last limit was not waited out

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        wait = self.decide(exc, retry_count)
        return RetryOption(wait is not None, timedelta(seconds=wait or 0))

    def decide(self, exc: BaseException, retry_count: int) -> float | None:
        """Seconds to wait before trying again, or None: give up (and `refused` says why, for limits)."""
        if isinstance(exc, RateLimitExceeded):
            kind = "primary" if isinstance(exc, PrimaryRateLimitExceeded) else "secondary"
            exact = "retry-after" in exc.response.raw_response.headers  # else it came from x-ratelimit-reset
            return self._wait(kind, exc.retry_after.total_seconds() + (0 if exact else RESET_MARGIN), retry_count)
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            if status in (403, 429) and "rate limit" in _message(exc).lower():
                # A secondary limit without retry-after: GitHub's advice is to wait at least a minute.
                return self._wait("secondary", 60.0, retry_count)
            pause = float((retry_count + 1) ** 2)
            if status >= 500 and retry_count < 3 and self.waited + pause <= self.budget:
                self.waited += pause
                self.notify(f"GitHub answered {status}: trying again in {pause:.0f} s.")
                return pause
        return None

    def _wait(self, kind: str, seconds: float, retry_count: int) -> float | None:
        seconds = max(seconds, 1.0)
        until = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M:%S UTC")
        if retry_count >= MAX_TRIES or self.waited + seconds > self.budget:
            self.refused = (f"GitHub's {kind} rate limit is reached and lasts until about {until}; waiting "
                            f"{seconds:.0f} s more would exceed this run's allowed wait of {self.budget:.0f} s "
                            "(--max-wait). Nothing indexed so far is lost: run again after that time and the "
                            "run picks up where this one stopped.")
            return None
        self.waited += seconds
        self.notify(f"GitHub {kind} rate limit reached: waiting {seconds:.0f} s (until {until}), then resuming.")
        return seconds


def _message(exc: RequestFailed) -> str:
    try:
        body = exc.response.raw_response.json()
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


class GitHubClient:
    """One connection for a whole sync; use it as a context manager."""

    def __init__(self, url: str, token: str | None, max_wait: float = 3900.0,
                 notify: Callable[[str], None] | None = None) -> None:
        if not token:
            raise ConfigError("No GitHub token: set ANSWERDESK_GITHUB_TOKEN to a fine-grained token with read access "
                              f"to the repository's Issues, Discussions and Metadata ({TOKEN_HELP}).")
        self.url = check_api_url(url)
        self.waits = RateLimitWaits(max_wait, notify or log.warning)
        self.requests = 0  # REST requests sent, retries included
        self.not_modified = 0  # of which 304s: free, GitHub does not count them against the rate limit
        self.queries = 0  # GraphQL queries sent
        self.gh = GitHub(token, base_url=self.url, http_cache=False, auto_retry=self.waits, timeout=30.0,
                         user_agent=USER_AGENT, follow_redirects=True, event_hooks={"response": [self._count]})

    def _count(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/graphql"):
            self.queries += 1
        else:
            self.requests += 1
            self.not_modified += response.status_code == 304

    def __enter__(self) -> GitHubClient:
        self.gh.__enter__()  # one HTTP connection pool for every request of the sync
        return self

    def __exit__(self, *exc: object) -> None:
        self.gh.__exit__()

    # -- REST -------------------------------------------------------------------------------------------
    def get(self, what: str, url: str, params: dict[str, Any] | None = None, etag: str | None = None) -> Page:
        headers = {"X-GitHub-Api-Version": API_VERSION}
        if etag:
            headers["If-None-Match"] = etag
        try:
            response = self.gh.request("GET", url, params=params, headers=headers).raw_response
        except GitHubException as exc:
            raise self._error(what, exc) from exc
        if response.status_code == 304:
            return Page(304, None, etag, None)
        try:
            data = response.json()
        except ValueError:
            raise GitHubError(self._not_the_api(what, response.headers.get("content-type", ""))) from None
        links = response.links
        last = parse_qs(urlsplit(links.get("last", {}).get("url", "")).query).get("page", [""])[0]
        return Page(response.status_code, data, response.headers.get("etag"), links.get("next", {}).get("url"),
                    int(last) if last.isdigit() else None)

    def pages(self, what: str, url: str, params: dict[str, Any]) -> Iterator[list[Any]]:
        """Every page of a list, following rel="next" as GitHub gives it (never guessing page numbers)."""
        page: Page | None = self.get(what, url, params)
        while page is not None:
            if not isinstance(page.data, list):
                raise GitHubError(self._not_the_api(what, "a JSON object where a list belongs"))
            yield page.data
            page = self.get(what, page.next_url) if page.next_url else None

    # -- GraphQL ----------------------------------------------------------------------------------------
    def graphql(self, what: str, query: str, variables: dict[str, Any],
                allow_missing: bool = False) -> dict[str, Any]:
        """data of a query. allow_missing: NOT_FOUND errors (items asked for by number that are gone) are
        part of the answer, not a failure."""
        tries = 0
        while True:
            try:
                return self.gh.graphql.request(query, variables)
            except PrimaryRateLimitExceeded as exc:  # RATE_LIMITED in a 200 answer: githubkit does not retry it
                wait = self.waits.decide(exc, tries)
                if wait is None:
                    raise GitHubError(self.waits.refused or "GitHub's GraphQL rate limit is reached.") from exc
                time.sleep(wait)
                tries += 1
            except GraphQLFailed as exc:
                errors = exc.response.errors or []
                if allow_missing and exc.response.data and all(e.type == "NOT_FOUND" for e in errors):
                    return exc.response.data
                raise GitHubError(self._graphql_error(what, [(e.type or "", e.message) for e in errors])) from exc
            except GitHubException as exc:
                raise self._error(what, exc) from exc

    # -- errors -----------------------------------------------------------------------------------------
    def _graphql_error(self, what: str, errors: list[tuple[str, str]]) -> str:
        kinds = {kind for kind, _m in errors}
        text = "; ".join(m for _k, m in errors)[:400]
        if "NOT_FOUND" in kinds:
            return (f"GitHub found nothing for {what}: {text}. Check OWNER/REPO, and that the token may read it "
                    "(a private repository is invisible to tokens without access).")
        if kinds & {"FORBIDDEN", "INSUFFICIENT_SCOPES"} or "not accessible" in text:
            return (f"The GitHub token may not read {what}: {text}. Fine-grained tokens need Discussions: Read-only "
                    "(and Issues: Read-only) on this repository; classic tokens need public_repo, or repo for "
                    f"private repositories ({TOKEN_HELP}). Or index issues only: --issues (in the sources file: "
                    "discussions = false).")
        return f"GitHub's GraphQL API refused {what}: {text}"

    def _not_the_api(self, what: str, content_type: str) -> str:
        return (f"{self.url} did not answer like the GitHub API ({what}: got {content_type or 'no content type'}). "
                "Set ANSWERDESK_GITHUB_URL to https://api.github.com, or https://HOST/api/v3 for GitHub "
                "Enterprise Server.")

    def _error(self, what: str, exc: GitHubException) -> GitHubError:
        if isinstance(exc, RateLimitExceeded) and self.waits.refused:
            return GitHubError(self.waits.refused, exc.response.status_code)
        if isinstance(exc, RequestTimeout):
            return GitHubError(f"GitHub at {self.url} did not answer in time ({what}); try again later.")
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            return GitHubError(self.explain(status, what, _message(exc),
                                            exc.response.raw_response.headers.get("content-type", "")), status)
        if isinstance(exc, RequestError):
            return GitHubError(f"Cannot reach GitHub at {self.url} ({type(exc.exc).__name__}); check "
                               "ANSWERDESK_GITHUB_URL (GitHub Enterprise Server: https://HOST/api/v3) and that "
                               "this machine can reach it.")
        return GitHubError(f"GitHub request failed ({what}): {type(exc).__name__}")

    def explain(self, status: int, what: str, message: str, content_type: str) -> str:
        if "json" not in content_type.lower() and status in (404, 405):
            return self._not_the_api(what, content_type)
        detail = f": {message}" if message else ""
        if status == 401:
            return (f"GitHub at {self.url} rejected the token (401{detail}). ANSWERDESK_GITHUB_TOKEN is wrong, expired "
                    f"or revoked: create a new one ({TOKEN_HELP}), with read access to Issues, Discussions and "
                    "Metadata of the repository.")
        if status == 403:
            return (f"GitHub refused {what} (403{detail}). The token needs read access to this repository's "
                    "Issues (fine-grained: Issues read-only; classic: public_repo, or repo if private); an "
                    "organisation using SAML SSO must also have the token authorised.")
        if status == 404:
            return (f"GitHub found no {what} (404): check OWNER/REPO, and that the token may read the repository "
                    "(GitHub answers 404, not 403, to a token that cannot see a private repository).")
        if status == 410:
            return f"GitHub answered 410 Gone for {what}{detail}: issues are disabled on this repository."
        if status == 422:
            return f"GitHub rejected the request for {what} (422{detail})."
        if status >= 500:
            return f"GitHub at {self.url} failed with {status} on {what}; try again later."
        return f"GitHub answered {status} on {what}{detail}."
