"""One seam for every connector: a pydantic config model per source type and a registry table
`{type: Connector(config model, sync function)}`.

`answerdesk ingest <type>` and the sources file (ingest/sync.py) build the same config model, so a
flag and a file key mean the same thing and are checked the same way. Each connector module has
`sync(services, config, progress) -> IngestStats`; the registry names it by module path and imports it
only when a source of that type runs, so reading the sources file never loads the Atlassian or GitHub
clients, and a connector whose dependencies are missing fails as that source, not as the whole run.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assistant.errors import ConfigError, SourceError
from assistant.services import Services
from ingest.pipeline import IngestStats
from ingest.progress import SILENT, Progress

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
Audience = Literal["public", "customer", "internal"]


def audience_map(internal: list[str] | None, customer: list[str] | None,
                 public: list[str] | None = None) -> dict[str, str]:
    """Keys (Confluence spaces, Jira projects) mapped to an audience by the configuration (options or
    sources file); the narrowest wins if a key is given twice."""
    mapping = {key: "public" for key in public or []}
    mapping.update({key: "customer" for key in customer or []})
    mapping.update({key: "internal" for key in internal or []})
    return mapping


def _web_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; they are read from the environment")
    return value.strip()


class SourceConfig(BaseModel):
    """What every source has: a name (its documents, state and runs are filed under it) and a type."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str, info: ValidationInfo) -> str:
        # The sources file keeps names plain; a name from options (`answerdesk ingest docs "./My Docs"`
        # defaults to the folder's name) only has to be printable, as it always could be.
        if (info.context or {}).get("from_options"):
            if not v.strip() or len(v) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in v):
                raise ValueError("must be 1 to 200 printable characters (pass --source NAME)")
        elif not re.match(NAME_PATTERN, v):
            raise ValueError("must be letters, digits, '.', '_' or '-', starting with a letter or digit")
        return v


class DocsSource(SourceConfig):
    type: Literal["docs"]
    path: Path  # in the sources file, relative paths are relative to the file
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return v if v is None else _web_url(v)


class SiteSource(SourceConfig):
    type: Literal["site"]
    url: str
    concurrency: int = Field(4, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return _web_url(v)


class ConfluenceSource(SourceConfig):
    type: Literal["confluence"]
    url: str
    spaces: list[str] = Field(min_length=1)
    cloud: bool = False
    internal_spaces: list[str] = []
    customer_spaces: list[str] = []
    public_spaces: list[str] = []  # other spaces follow their permission in Confluence (anonymous view: public)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return _web_url(v)

    @model_validator(mode="after")
    def _mapped_spaces_are_synced(self) -> ConfluenceSource:
        names = ("internal_spaces", "customer_spaces", "public_spaces")
        for field_name in names:
            extra = sorted(set(getattr(self, field_name)) - set(self.spaces))
            if extra:
                raise ValueError(f"{field_name} lists {', '.join(extra)}, which is not in spaces")
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                both = sorted(set(getattr(self, first)) & set(getattr(self, second)))
                if both:
                    raise ValueError(f"{', '.join(both)} is in both {first} and {second}")
        return self

    def space_audience(self) -> dict[str, str]:
        """Only the spaces the configuration maps; the connector decides the rest from Confluence's own
        permission (anonymous view: public, otherwise internal); restricted pages stay internal."""
        return audience_map(self.internal_spaces, self.customer_spaces, self.public_spaces)


class JiraSource(SourceConfig):
    type: Literal["jira"]
    url: str | None = None  # default: ANSWERDESK_JIRA_URL
    jql: str | None = None  # default: the connector's (resolved issues of the configured projects)
    cloud: bool | None = None  # default: ANSWERDESK_JIRA_CLOUD
    project_audience: dict[str, Audience] = {}  # other projects' tickets are internal

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return v if v is None else _web_url(v)


class GitHubSource(SourceConfig):
    type: Literal["github"]
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # OWNER/REPO
    issues: bool = True  # closed issues that were completed
    discussions: bool = True  # answered discussions (skipped if the repository has them switched off)
    since: date | None = None  # leave out what was last updated before this day
    audience: Audience | None = None  # default: public for a public repository, internal otherwise
    max_wait: int = Field(3900, ge=0)  # seconds a run may wait out rate limits
    full: bool = False  # ignore the saved state and list everything again (meant for one-off runs)
    # The API address comes from ANSWERDESK_GITHUB_URL (GitHub Enterprise Server: https://HOST/api/v3).

    @model_validator(mode="after")
    def _something_to_index(self) -> GitHubSource:
        if not (self.issues or self.discussions):
            raise ValueError("issues and discussions are both false: nothing to index")
        return self


AnySource = DocsSource | SiteSource | ConfluenceSource | JiraSource | GitHubSource
SOURCE_ADAPTER: TypeAdapter[AnySource] = TypeAdapter(Annotated[AnySource, Field(discriminator="type")])
SyncFn = Callable[[Services, Any, Progress], IngestStats]


@dataclass(frozen=True)
class Connector:
    config: type[SourceConfig]
    module: str  # holds `sync(services, config, progress)`; imported when a source of this type runs
    title: str  # for messages: "the Confluence connector"

    def load(self) -> SyncFn:
        try:
            sync: SyncFn = importlib.import_module(self.module).sync
        except ImportError as exc:
            raise SourceError(f"the {self.title} connector is not available in this installation ({exc})") from None
        return sync


REGISTRY: dict[str, Connector] = {
    "docs": Connector(DocsSource, "ingest.docs", "docs folder"),
    "site": Connector(SiteSource, "ingest.site.crawl", "docs site"),
    "confluence": Connector(ConfluenceSource, "ingest.confluence.pages", "Confluence"),
    "jira": Connector(JiraSource, "ingest.jira", "Jira"),
    "github": Connector(GitHubSource, "ingest.github.sync", "GitHub"),
}


def validation_problems(exc: ValidationError, label: str, tag: str | None = None) -> list[str]:
    """One line per problem, named by source and field, in the words of the sources file."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc and tag is not None and loc[0] == tag:
            loc = loc[1:]  # pydantic puts the union's tag first
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{label}: {'.'.join(loc) or 'type'}: {msg}")
    return lines


def build(kind: str, **fields: Any) -> SourceConfig:
    """The config model for a source given as options (`answerdesk ingest KIND ...`); options left out
    (None) take the model's default, so a flag and the sources file mean the same. Raises ConfigError."""
    values = {"type": kind, **{k: v for k, v in fields.items() if v is not None}}
    try:
        return REGISTRY[kind].config.model_validate(values, context={"from_options": True})
    except ValidationError as exc:
        raise ConfigError("Invalid options:\n  " + "\n  ".join(validation_problems(exc, kind))) from None


def run_source(services: Services, config: SourceConfig, progress: Progress = SILENT) -> IngestStats:
    """One source, incrementally; raises our errors (SourceError, ConfigError) on failure."""
    return REGISTRY[config.type].load()(services, config, progress)
