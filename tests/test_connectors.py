"""The connector seam (ingest/connectors.py) and the CLI's services factory, without the model: every
source type the sources file accepts has a connector, and bad options are refused before anything starts."""

from __future__ import annotations

import importlib
from typing import get_args

import pytest
from typer.testing import CliRunner

from assistant.errors import SourceError
from cli.main import app
from ingest.connectors import REGISTRY, SOURCE_ADAPTER, AnySource, Connector, DocsSource, build


def test_every_source_type_has_a_config_model_and_a_sync_function() -> None:
    file_types = {model.model_fields["type"].annotation.__args__[0] for model in get_args(AnySource)}
    assert set(REGISTRY) == file_types
    for kind, connector in REGISTRY.items():
        assert connector.config.model_fields["type"].annotation.__args__[0] == kind
        assert callable(importlib.import_module(connector.module).sync), connector.module


def test_options_and_the_sources_file_build_the_same_model() -> None:
    from_options = build("confluence", name="wiki", url="https://example.atlassian.net/wiki", spaces=["DOCS", "OPS"],
                         cloud=True, public_spaces=["OPS"], internal_spaces=None)
    from_file = SOURCE_ADAPTER.validate_python({"name": "wiki", "type": "confluence", "cloud": True,
                                                "url": "https://example.atlassian.net/wiki", "spaces": ["DOCS", "OPS"],
                                                "public_spaces": ["OPS"]})
    assert from_options == from_file
    assert from_options.space_audience() == {"OPS": "public"}  # type: ignore[attr-defined]


def test_a_connector_that_cannot_load_fails_as_that_source() -> None:
    with pytest.raises(SourceError, match="the Test connector is not available in this installation"):
        Connector(DocsSource, "ingest.no_such_connector", "Test").load()


def test_bad_options_are_refused_before_any_service_starts() -> None:
    def no_services() -> None:
        raise AssertionError("services were built for options that were refused")

    result = CliRunner().invoke(app, ["ingest", "site", "ftp://docs.example.com/"], obj=no_services,
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "url: must be an http:// or https:// URL" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["ingest", "github", "not-a-repo"], obj=no_services, env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "OWNER/REPO" in result.output


def test_names_from_options_may_be_any_printable_text_but_the_file_keeps_them_plain() -> None:
    # `answerdesk ingest docs "./My Docs"` names the source after its folder, as it always did.
    assert build("docs", name="My Docs", path="docs").name == "My Docs"
    assert build("confluence", name="confluence-~jdoe", url="https://x.example/wiki", spaces=["~jdoe"]).name
    with pytest.raises(Exception, match="letters, digits"):
        SOURCE_ADAPTER.validate_python({"name": "My Docs", "type": "docs", "path": "docs"})
    with pytest.raises(Exception, match="printable"):
        build("docs", name="bad\nname", path="docs")
