"""The sources file (answerdesk.toml or .yaml) read as data: its sources are checked by ingest/sync.py,
its `routing` section by assistant/escalation/routing.py. One reader, so both parts read the same file
the same way and report a broken one with the same words."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import ConfigError


def read_config_file(path: Path) -> dict[str, Any]:
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
