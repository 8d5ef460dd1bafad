"""Shared fixtures: the real model (loaded once), real Chroma (embedded and `chroma run`),
real SQLite and, when reachable, real PostgreSQL."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.embeddings import SentenceTransformerEmbedder
from assistant.services import Services
from assistant.settings import Settings, bundled_model_path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PG_URL = os.environ.get("ANSWERDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(bundled_model_path())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def services(settings: Settings, embedder: SentenceTransformerEmbedder) -> Services:
    return Services(settings, embedder=embedder)


def fresh_services(root: Path, embedder: SentenceTransformerEmbedder, **settings: Any) -> Services:
    """Services on a new data folder under `root` with the real model, configured by `settings` alone
    (never by a .env file or the developer's environment file). A test's fresh database is brought to
    the newest schema revision on open, PostgreSQL included (which a deployment upgrades explicitly)."""
    settings.setdefault("auto_migrate", True)
    return Services(Settings(data_dir=root / "data", _env_file=None, **settings),  # type: ignore[call-arg]
                    embedder=embedder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real `chroma run` server on a free port, storing under path; (process, URL) once it answers."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:
        pytest.fail("the `chroma` command (installed with chromadb) is missing")
    port = free_port()
    with open(path / "server.log", "wb") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen([exe, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chroma run did not start: {(path / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop_chroma(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on a free port."""
    proc, url = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield url
    stop_chroma(proc)


@pytest.fixture(scope="session")
def pg_available() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except Exception as exc:  # any failure to connect means: skip, and say why
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({exc.__class__.__name__}: {exc}); "
                    "PostgreSQL variants of the storage tests skipped")
    return PG_URL


@pytest.fixture
def pg_url(pg_available: str) -> Iterator[str]:
    """A fresh schema in the test database per test, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_available, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{pg_available}?options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_available, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def index_docs(services: Services, folder: Path, source: str = "answerdesk-docs",
               base_url: str | None = "https://answerdesk.example/docs") -> None:
    from ingest.docs import folder_refs, list_files
    from ingest.pipeline import Ingestor

    Ingestor(services, source).run(folder_refs(folder, list_files(folder), base_url), "docs", str(folder))


@pytest.fixture(scope="module")
def docs_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data dir holding the bundled docs/, indexed once per test module."""
    return Settings(data_dir=tmp_path_factory.mktemp("docs-index"), _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def docs_services(docs_settings: Settings, embedder: SentenceTransformerEmbedder) -> Services:
    services = Services(docs_settings, embedder=embedder)
    index_docs(services, ROOT / "docs")
    return services


JIRA_SITES = itertools.count(1)


@pytest.fixture(params=[False, True], ids=["data-center", "cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fake Jira (Data Center, then Cloud) whose SUP project exists; a module that needs other seed
    data (JSM customers, say) defines its own `jira`. Each site numbers its tickets apart from the
    other tests' sites: a module shares one database, where a ticket key is one ticket (assist posts,
    replies and status are recorded by key, as for one real Jira), and an earlier test's background
    work on its SUP-2 must not land on this test's SUP-2."""
    from tests.fakes.atlassian import running

    with running(cloud=request.param) as fake:
        fake.add_issue("SUP", "Seed ticket", "so the project exists", number=1000 * next(JIRA_SITES))
        yield fake
