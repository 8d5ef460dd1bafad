"""The one place atlassian-python-api clients are built, with the credentials checked first.

Cloud authenticates with Basic e-mail:API token, Data Center with a Bearer personal access token.
Confluence always gets the `ConfluenceServer` class, for Cloud's v1 API (base URL ending in /wiki)
too: the library's Cloud class lacks get_page_by_id and builds wrong paths (NOTES.md traps 1 and 3).
`Jira` does not detect Cloud from the URL, so `cloud` is passed through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from assistant.errors import ConfigError

TOKEN_HELP = ("Cloud: an API token from https://id.atlassian.com/manage-profile/security/api-tokens; Data Center: a "
              "personal access token")


@dataclass
class Credentials:
    """Where a product is and how to log in. `env` names the settings (JIRA or CONFLUENCE) so errors
    say which variable to set; `hint` adds the caller's way out (e.g. the local escalation queue)."""

    product: str
    env: str
    url: str | None
    user: str | None
    token: str | None
    cloud: bool
    hint: str = ""

    def check(self) -> None:
        hint = f" {self.hint}" if self.hint else ""
        if not self.url:
            raise ConfigError(f"No {self.product} URL: set ANSWERDESK_{self.env}_URL.{hint}")
        if not self.token:
            raise ConfigError(f"No {self.product} token: set ANSWERDESK_{self.env}_TOKEN ({TOKEN_HELP}).{hint}")
        if self.cloud and not self.user:
            raise ConfigError(f"{self.product} Cloud needs ANSWERDESK_{self.env}_USER (the account's e-mail) with "
                              f"the API token in ANSWERDESK_{self.env}_TOKEN.{hint}")

    def auth(self) -> dict[str, Any]:
        return {"username": self.user, "password": self.token} if self.cloud else {"token": self.token}

    @property
    def base(self) -> str:
        return (self.url or "").rstrip("/")


def jira_clients(creds: Credentials, timeout: int, api_version: int = 2) -> tuple[Any, Any]:
    """(Jira, ServiceDesk) for one site. `api_version` 3 for Cloud bodies in ADF (the library's default is 2)."""
    from atlassian import Jira, ServiceDesk

    creds.check()
    jira = Jira(creds.base, cloud=creds.cloud, timeout=timeout, api_version=api_version, **creds.auth())
    desk = ServiceDesk(creds.base, cloud=creds.cloud, timeout=timeout, **creds.auth())
    return jira, desk


def confluence_site(url: str, cloud: bool) -> str:
    """Cloud serves Confluence under /wiki: a bare https://SITE.atlassian.net gets it appended."""
    url = url.rstrip("/")
    if cloud and urlparse(url).path in ("", "/"):
        url += "/wiki"
    return url


def confluence_client(creds: Credentials, timeout: int = 60) -> Any:
    """The Server client for Data Center and Cloud v1 alike (never the library's Cloud class)."""
    from atlassian.confluence import ConfluenceServer

    creds.check()
    return ConfluenceServer(creds.base, cloud=False, timeout=timeout, **creds.auth())
