"""`answerdesk sync`: every source listed in the sources file (TOML or YAML), incrementally, in order.

One summary line per source; a failing source is reported and the next one still runs; the exit
code says whether everything worked (0), some source failed (1) or the file is unusable (2).
Secrets never live in the file: credentials come from ANSWERDESK_* environment variables only.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from assistant.errors import AnswerdeskError, ConfigError, SourceError
from assistant.services import Services
from ingest.confluence.spaces import audience_map
from ingest.pipeline import IngestStats

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_SECRET_WORDS = ("token", "password", "passwd", "secret", "api_key", "apikey", "credential", "private_key")
_ENV_HINT = {
    "confluence": "ANSWERDESK_CONFLUENCE_USER and ANSWERDESK_CONFLUENCE_TOKEN",
    "jira": "ANSWERDESK_JIRA_USER and ANSWERDESK_JIRA_TOKEN",
    "github": "ANSWERDESK_GITHUB_TOKEN",
}
Audience = Literal["public", "customer", "internal"]


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)


def _web_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; they are read from the environment")
    return value.strip()


class DocsSource(_Source):
    type: Literal["docs"]
    path: Path  # relative paths are relative to the sources file
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return v if v is None else _web_url(v)


class SiteSource(_Source):
    type: Literal["site"]
    url: str
    concurrency: int = Field(4, ge=1, le=32)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return _web_url(v)


class ConfluenceSource(_Source):
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
        """Only the spaces the file maps; the connector decides the rest from Confluence's own permission
        (anonymous view: public, otherwise internal); restricted pages stay internal."""
        return audience_map(self.internal_spaces, self.customer_spaces, self.public_spaces)


class JiraSource(_Source):
    type: Literal["jira"]
    url: str | None = None  # default: ANSWERDESK_JIRA_URL
    jql: str | None = None  # default: the connector's (resolved issues of the configured projects)
    cloud: bool | None = None  # default: ANSWERDESK_JIRA_CLOUD
    project_audience: dict[str, Audience] = {}

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        return v if v is None else _web_url(v)


class GitHubSource(_Source):
    type: Literal["github"]
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # OWNER/REPO
    issues: bool = True  # closed issues that were completed
    discussions: bool = True  # answered discussions (skipped if the repository has them switched off)
    since: date | None = None  # leave out what was last updated before this day
    audience: Audience | None = None  # default: public for a public repository, internal otherwise
    max_wait: int = Field(3900, ge=0)  # seconds a run may wait out rate limits
    # The API address comes from ANSWERDESK_GITHUB_URL (GitHub Enterprise Server: https://HOST/api/v3).

    @model_validator(mode="after")
    def _something_to_index(self) -> GitHubSource:
        if not (self.issues or self.discussions):
            raise ValueError("issues and discussions are both false: nothing to index")
        return self


SourceConfig = DocsSource | SiteSource | ConfluenceSource | JiraSource | GitHubSource
_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(Annotated[SourceConfig, Field(discriminator="type")])


# --- reading the file ----------------------------------------------------------------------

def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"No sources file at {path}. Create it (see docs/sites-and-sync.md) or pass --config FILE.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            raise ConfigError(f"{path}: the sources file must end in .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a list of sources at the top level")
    return data


def _secret_keys(value: Any, where: str = "") -> list[str]:
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if any(word in str(key).lower() for word in _SECRET_WORDS):
                found.append(path)
            found += _secret_keys(item, path)
        return found
    if isinstance(value, list):
        return [k for i, item in enumerate(value) for k in _secret_keys(item, f"{where}[{i}]")]
    return []


def _label(raw: Any, i: int) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"source #{i} ({name!r})" if isinstance(name, str) and name else f"source #{i}"


def load_sources(path: Path) -> list[SourceConfig]:
    """Read and check the whole file first: one bad source stops the run before anything is indexed,
    with every problem named by source and field."""
    data = _read(path)
    unknown = sorted(set(data) - {"source", "sources"})
    if unknown or ("source" in data) == ("sources" in data):
        raise ConfigError(f"{path}: expected one list of sources ([[source]] tables in TOML, `sources:` in YAML)"
                          + (f"; unknown top-level key(s): {', '.join(unknown)}" if unknown else ""))
    raw_sources = data.get("source", data.get("sources"))
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{path}: the list of sources is empty")
    problems: list[str] = []
    sources: list[SourceConfig] = []
    for i, raw in enumerate(raw_sources, 1):
        label = _label(raw, i)
        secrets = _secret_keys(raw)
        if secrets:
            hint = _ENV_HINT.get(raw.get("type", ""), "ANSWERDESK_* environment variables")
            problems.append(f"{label}: {', '.join(secrets)}: secrets are not read from the sources file; "
                            f"remove it and set {hint} in the environment")
            continue
        try:
            sources.append(_ADAPTER.validate_python(raw))
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                if loc and isinstance(raw, dict) and loc[0] == raw.get("type"):
                    loc = loc[1:]  # pydantic puts the union's tag first
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{label}: {'.'.join(loc) or 'type'}: {msg}")
    names = [s.name for s in sources]
    problems += [f"source name {n!r} is used more than once" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ConfigError(f"Invalid sources file {path}:\n  " + "\n  ".join(problems))
    base = path.resolve().parent
    for s in sources:
        if isinstance(s, DocsSource) and not s.path.is_absolute():
            s.path = base / s.path
    return sources


# --- running -------------------------------------------------------------------------------

Progress = Callable[[str], None]
Total = Callable[[int], None]


def run_source(services: Services, src: SourceConfig, on_document: Progress, on_total: Total) -> IngestStats:
    """One source, incrementally; raises our errors (SourceError, ConfigError) on failure."""
    if isinstance(src, DocsSource):
        from ingest.docs import index_folder

        return index_folder(services, src.name, src.path, src.base_url, on_document, on_total)
    if isinstance(src, SiteSource):
        from ingest.site.crawl import sync_site

        return sync_site(services, src.name, src.url, src.concurrency, on_document=on_document, on_total=on_total)
    if isinstance(src, ConfluenceSource):
        try:  # imported here: each connector's dependencies load only when a source needs them
            from ingest.confluence.pages import sync_confluence
        except ImportError as exc:
            raise SourceError(f"the Confluence connector is not available in this installation ({exc})") from None
        return sync_confluence(services, src.name, src.url, src.spaces, src.cloud, src.space_audience(),
                               on_document=on_document)
    if isinstance(src, GitHubSource):
        from assistant.cli import console
        from ingest.github.sync import sync_github

        return sync_github(services, src.name, src.repo, issues=src.issues, discussions=src.discussions,
                           since=src.since, audience=src.audience, max_wait=float(src.max_wait),
                           on_document=on_document,
                           on_wait=lambda message: console.print(f"[yellow]{message}[/yellow]", highlight=False))
    settings = services.settings
    url = src.url or settings.jira_url
    if not url:
        raise ConfigError("no Jira URL: set url in the sources file or ANSWERDESK_JIRA_URL")
    try:
        from ingest.jira import sync_jira
    except ImportError as exc:
        raise SourceError(f"the Jira connector is not available in this installation ({exc})") from None
    cloud = settings.jira_cloud if src.cloud is None else src.cloud
    return sync_jira(services, src.name, url, src.jql, cloud, dict(src.project_audience), on_document=on_document)


@dataclass
class Outcome:
    source: SourceConfig
    stats: IngestStats | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.stats is not None and not self.stats.failed


def sync_command(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Sources file, TOML or YAML (default: ANSWERDESK_SOURCES_FILE, answerdesk.toml).")
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="Sync only this source (repeat for several).")] = None,
) -> None:
    """Sync every configured source incrementally; exit 1 if any source failed, 2 if the file is invalid."""
    from assistant import cli

    try:
        svc = cli.services()
        path = config or svc.settings.sources_file
        sources = load_sources(path)
        if only:
            missing = sorted(set(only) - {s.name for s in sources})
            if missing:
                raise ConfigError(f"No source named {', '.join(missing)} in {path} "
                                  f"(it has: {', '.join(s.name for s in sources)})")
            sources = [s for s in sources if s.name in only]
    except ConfigError as exc:
        cli.err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    outcomes = [_run_one(svc, src) for src in sources]
    failed = [o for o in outcomes if not o.ok]
    if failed:
        cli.console.print(f"[red]{len(failed)} of {len(outcomes)} source(s) failed:[/red]", highlight=False)
        for o in failed:
            cause = o.error or f"{o.stats.failed if o.stats else 0} item(s) could not be indexed, the others were"
            cli.console.print(f"  {o.source.name}: {cause}", highlight=False)
        raise typer.Exit(1)
    cli.console.print(f"[green]{len(outcomes)} source(s) synced[/green]", highlight=False)


def _run_one(services: Services, src: SourceConfig) -> Outcome:
    from assistant import cli
    from ingest.cli import progress_bar  # here, not at the top: ingest.cli may import this module

    head = f"{src.name} ({src.type})"
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"Syncing {src.name}", total=None, item="")
            stats = run_source(services, src, lambda label: bar.update(task, advance=1, item=label),
                               lambda n: bar.update(task, total=n))
    except AnswerdeskError as exc:
        cli.console.print(f"[red]{head}: failed:[/red] {exc}", highlight=False)
        return Outcome(src, error=str(exc))
    except Exception as exc:  # a connector's bug must not stop the other sources; it is still reported
        message = f"unexpected {type(exc).__name__}: {exc}"
        cli.console.print(f"[red]{head}: failed:[/red] {message}", highlight=False)
        return Outcome(src, error=message)
    for label, message in stats.failures:
        cli.console.print(f"[red]  failed:[/red] {label}: {message}", highlight=False)
    status = "[yellow]partial[/yellow]" if stats.failed else "[green]ok[/green]"
    cli.console.print(f"{head}: {status}: {stats.summary()}", highlight=False)
    return Outcome(src, stats)
