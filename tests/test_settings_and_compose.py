"""Settings fail at start naming the variable; the compose file is real and uses real settings."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

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


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return compose


def _answerdesk_vars(text: str) -> set[str]:
    """Every ANSWERDESK_* name the file mentions: keys, ${...} references and commented-out lines alike."""
    return set(re.findall(r"\bANSWERDESK_[A-Z0-9_]+", text))


def test_compose_file_runs_app_chroma_and_postgres_with_real_settings() -> None:
    services = _compose()["services"]
    assert set(services) >= {"migrate", "app", "chroma", "postgres", "redis", "proxy"}
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


def test_every_answerdesk_variable_in_compose_is_a_known_setting() -> None:
    """A misspelt variable is silently ignored by the app (extra="ignore"): catch it here, comments included."""
    text = (ROOT / "docker-compose.yml").read_text()
    fields = set(Settings.model_fields)
    unknown = {v for v in _answerdesk_vars(text) if v.removeprefix("ANSWERDESK_").lower() not in fields}
    assert not unknown, unknown
    active = yaml.safe_dump(_compose())  # what compose reads: comments gone
    assert not {v for v in _answerdesk_vars(active) if v.removeprefix("ANSWERDESK_").lower() not in fields}


def test_compose_runs_replicas_that_share_only_the_engines() -> None:
    services = _compose()["services"]
    app, migrate = services["app"], services["migrate"]
    assert app["deploy"]["replicas"] >= 2
    assert "ports" not in app  # two replicas cannot publish one host port: the proxy does
    assert services["proxy"]["ports"] == ["8000:8000"]
    # Every process of the app image gets the same shared engines and secret.
    for name in ("migrate", "ingest", "app"):
        env = services[name]["environment"]
        assert env["ANSWERDESK_DATABASE_URL"] == app["environment"]["ANSWERDESK_DATABASE_URL"], name
        assert env["ANSWERDESK_SESSION_SECRET"] == app["environment"]["ANSWERDESK_SESSION_SECRET"], name
        assert services[name]["image"] == app["image"]
    assert app["environment"]["ANSWERDESK_REDIS_URL"] == "redis://redis:6379/0"
    assert services["redis"]["image"].startswith("redis:")
    # Migrations run once, before any replica: the replicas wait for the one-shot to succeed.
    assert migrate["command"] == ["answerdesk", "db", "upgrade"] and migrate["restart"] == "no"
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert {"redis", "chroma"} <= set(app["depends_on"])
    # Ingestion is one process, not one per replica; replicas keep no shared data folder.
    assert not any("ingest" in part for part in app["command"])
    assert "volumes" not in app
    # Background work runs in the worker service, not in each replica; the worker shares their engines.
    worker = services["worker"]
    assert worker["command"] == ["answerdesk", "worker"] and worker["image"] == app["image"]
    assert app["environment"]["ANSWERDESK_WORKER"] == "external"
    for name in ("ANSWERDESK_DATABASE_URL", "ANSWERDESK_CHROMA_URL", "ANSWERDESK_WORKER"):
        assert worker["environment"][name] == app["environment"][name], name
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_replicas_believe_forwarded_addresses_from_the_proxy_only() -> None:
    services = _compose()["services"]
    proxy_ip = services["proxy"]["networks"]["default"]["ipv4_address"]
    trusted = Settings(_env_file=None,  # type: ignore[call-arg]
                       trusted_proxies=services["app"]["environment"]["ANSWERDESK_TRUSTED_PROXIES"]).trusted_proxies
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]
    assert any(ipaddress.ip_address(proxy_ip) in n for n in networks)
    # Only the proxy: another container on the network (chroma, a compromised one) cannot claim an address.
    subnet = ipaddress.ip_network(_compose()["networks"]["default"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(proxy_ip) in subnet and all(n.num_addresses == 1 for n in networks)
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    mount = services["proxy"]["volumes"][0].split(":")
    assert mount[0] == "./deploy/nginx.conf" and mount[1].startswith("/etc/nginx/")
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf
    assert "proxy_buffering off;" in conf  # streamed answers reach the widget as they are written
    assert re.search(r"server app:8000;", conf)


def test_the_optional_embedding_server_matches_the_bundled_model() -> None:
    from tests.fakes.embedding_server import MODEL_ID

    tei = _compose()["services"]["embeddings"]
    assert tei["profiles"] == ["embedding-server"]  # not started unless asked for
    assert tei["command"][tei["command"].index("--model-id") + 1] == MODEL_ID
    assert "--auto-truncate" in tei["command"]  # long chunks cut like the in-process model, not refused
    assert _compose()["services"]["app"]["environment"]["ANSWERDESK_EMBEDDING_URL"] == "${ANSWERDESK_EMBEDDING_URL:-}"


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
