"""The sources file behind `answerdesk sync` (TOML or YAML): read and checked whole before anything runs,
then every source synced incrementally, in order; a failing source is reported and the next one still runs.
Secrets never live in the file: credentials come from ANSWERDESK_* environment variables only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant.config_file import read_config_file
from assistant.errors import AnswerdeskError, ConfigError
from assistant.escalation.routing import parse_rules
from assistant.services import Services
from ingest.connectors import SOURCE_ADAPTER, AnySource, DocsSource, run_source, validation_problems
from ingest.pipeline import IngestStats
from ingest.progress import SILENT, Progress

_SECRET_WORDS = ("token", "password", "passwd", "secret", "api_key", "apikey", "credential", "private_key")
_ENV_HINT = {
    "confluence": "ANSWERDESK_CONFLUENCE_USER and ANSWERDESK_CONFLUENCE_TOKEN",
    "jira": "ANSWERDESK_JIRA_USER and ANSWERDESK_JIRA_TOKEN",
    "github": "ANSWERDESK_GITHUB_TOKEN",
}


# --- reading the file ----------------------------------------------------------------------

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


def load_sources(path: Path) -> list[AnySource]:
    """Read and check the whole file first: one bad source stops the run before anything is indexed,
    with every problem named by source and field."""
    data = read_config_file(path)
    parse_rules(data.get("routing"), f"{path} (routing)")  # checked here too: `sync` reports it
    unknown = sorted(set(data) - {"source", "sources", "routing"})
    if unknown or ("source" in data) == ("sources" in data):
        raise ConfigError(f"{path}: expected one list of sources ([[source]] tables in TOML, `sources:` in YAML)"
                          + (f"; unknown top-level key(s): {', '.join(unknown)}" if unknown else ""))
    raw_sources = data.get("source", data.get("sources"))
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ConfigError(f"{path}: the list of sources is empty")
    problems: list[str] = []
    sources: list[AnySource] = []
    for i, raw in enumerate(raw_sources, 1):
        label = _label(raw, i)
        secrets = _secret_keys(raw)
        if secrets:
            hint = _ENV_HINT.get(raw.get("type", ""), "ANSWERDESK_* environment variables")
            problems.append(f"{label}: {', '.join(secrets)}: secrets are not read from the sources file; "
                            f"remove it and set {hint} in the environment")
            continue
        try:
            sources.append(SOURCE_ADAPTER.validate_python(raw))
        except ValidationError as exc:
            problems += validation_problems(exc, label, raw.get("type") if isinstance(raw, dict) else None)
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

def select(sources: list[AnySource], only: list[str] | None, path: Path) -> list[AnySource]:
    """The sources named by --only, in file order; ConfigError naming what the file has otherwise."""
    if not only:
        return sources
    missing = sorted(set(only) - {s.name for s in sources})
    if missing:
        raise ConfigError(f"No source named {', '.join(missing)} in {path} "
                          f"(it has: {', '.join(s.name for s in sources)})")
    return [s for s in sources if s.name in only]


@dataclass
class Outcome:
    source: AnySource
    stats: IngestStats | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.stats is not None and not self.stats.failed


def sync_one(services: Services, src: AnySource, progress: Progress = SILENT) -> Outcome:
    """One source; its failure is returned, never raised, so the next source still runs."""
    try:
        return Outcome(src, run_source(services, src, progress))
    except AnswerdeskError as exc:
        return Outcome(src, error=str(exc))
    except Exception as exc:  # a connector's bug must not stop the other sources; it is still reported
        return Outcome(src, error=f"unexpected {type(exc).__name__}: {exc}")
