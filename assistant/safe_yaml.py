"""YAML from untrusted files (Markdown front matter) without aliases.

`yaml.safe_load` still expands aliases: nine nested lists of nine `*a` references ("billion laughs")
parse into a small shared structure that becomes gigabytes the moment anything walks it (str(),
json.dumps, an error message quoting the value). Front matter never needs aliases, so a document
using one is refused with a clear error instead. (The sources file is the operator's own
configuration and keeps yaml.safe_load.)
"""

from __future__ import annotations

from typing import Any

import yaml


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed here", event.start_mark)
        return super().compose_node(parent, index)


def load(text: str) -> Any:
    """Like yaml.safe_load, but an alias is a yaml.YAMLError rather than a reference that expands."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
