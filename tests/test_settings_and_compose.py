"""Settings fail at start naming the variable; the compose file is real and uses real settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assistant.errors import ConfigError
from assistant.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_work_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.data_dir == Path(".answerdesk")
    assert s.sqlalchemy_url == f"sqlite:///{(tmp_path / '.answerdesk' / 'answerdesk.db').resolve()}"
    assert Path(s.embedding_model, "model.safetensors").exists()  # the bundled model, no download
    assert s.chroma_url == ""


def test_postgres_url_uses_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWERDESK_DATABASE_URL", "postgresql://u:p@db:5432/x")
    assert load_settings().sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/x"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("ANSWERDESK_CHROMA_URL", "chroma:8000"),
        ("ANSWERDESK_DATABASE_URL", "mysql://x"),
        ("ANSWERDESK_EMBEDDING_DTYPE", "int8"),
        ("ANSWERDESK_CHUNK_SIZE", "lots"),
        ("ANSWERDESK_RETRIEVAL_K", "0"),
    ],
)
def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()


def test_cli_reports_bad_setting_without_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["status"], env={"ANSWERDESK_EMBEDDING_DTYPE": "int8"})
    assert result.exit_code == 1
    assert "ANSWERDESK_EMBEDDING_DTYPE" in result.output and "Traceback" not in result.output


def test_compose_file_runs_app_chroma_and_postgres_with_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"app", "chroma", "postgres"}
    assert services["chroma"]["command"][:2] == ["chroma", "run"]  # what tests/conftest.py starts
    assert services["chroma"]["image"] == services["app"]["image"]  # same chromadb version as the client
    assert services["postgres"]["image"].startswith("postgres:")
    env = services["app"]["environment"]
    fields = set(Settings.model_fields)
    for name in env:
        if name.startswith("ANSWERDESK_"):
            assert name.removeprefix("ANSWERDESK_").lower() in fields, name
    assert env["ANSWERDESK_CHROMA_URL"] == "http://chroma:8000"
    assert env["ANSWERDESK_DATABASE_URL"].startswith("postgresql://")
    pg = services["postgres"]["environment"]
    assert env["ANSWERDESK_DATABASE_URL"].endswith(f"@postgres:5432/{pg['POSTGRES_DB']}")
    assert "answerdesk serve" in " ".join(services["app"]["command"])
    # The schema is upgraded once, by a one-shot job, before the app starts (PostgreSQL: serve refuses otherwise).
    assert services["migrate"]["command"] == ["answerdesk", "db", "upgrade"]
    assert services["migrate"]["environment"]["ANSWERDESK_DATABASE_URL"] == env["ANSWERDESK_DATABASE_URL"]
    assert services["app"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # Production: a real session secret is required (compose's ${VAR:?} refuses to start without one).
    assert env["ANSWERDESK_ENVIRONMENT"] == "production"
    assert env["ANSWERDESK_SESSION_SECRET"].startswith("${ANSWERDESK_SESSION_SECRET:?")
    assert "ANSWERDESK_TRUSTED_PROXIES" in env


@pytest.mark.parametrize("secret", [None, "changethis", "short-but-random-x7", "changethis" * 4, "a" * 40])
def test_production_refuses_a_missing_or_placeholder_session_secret(monkeypatch: pytest.MonkeyPatch,
                                                                    secret: str | None) -> None:
    monkeypatch.setenv("ANSWERDESK_ENVIRONMENT", "production")
    if secret is not None:
        monkeypatch.setenv("ANSWERDESK_SESSION_SECRET", secret)
    with pytest.raises(ConfigError, match="ANSWERDESK_SESSION_SECRET"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ANSWERDESK_ENVIRONMENT", "development")  # where a placeholder is tolerated
    assert load_settings(_env_file=None).environment == "development"


def test_production_starts_with_a_real_session_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    monkeypatch.setenv("ANSWERDESK_ENVIRONMENT", "production")
    monkeypatch.setenv("ANSWERDESK_SESSION_SECRET", secrets.token_urlsafe(32))
    assert load_settings(_env_file=None).session_secret is not None


def test_a_customer_slack_channel_without_its_org_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWERDESK_SLACK_CHANNELS", json.dumps({"C0ACME": {"audience": "customer", "tier": "paid"}}))
    with pytest.raises(ConfigError, match="ANSWERDESK_SLACK_CHANNELS.*org"):
        load_settings(_env_file=None)
