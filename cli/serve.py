"""`answerdesk serve`: the HTTP API and the demo page."""

from __future__ import annotations

from typing import Annotated

import typer

from assistant.settings import load_settings
from cli.common import console, friendly


@friendly
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000) -> None:
    """Serve the HTTP API and the demo page."""
    import uvicorn

    from assistant.api import create_app
    from assistant.services import Services

    services = Services(load_settings())
    # Before anything listens: a schema this version cannot use stops here, naming `answerdesk db upgrade`
    # (SQLite upgrades itself unless ANSWERDESK_AUTO_MIGRATE=false; PostgreSQL waits for the command).
    services.store  # noqa: B018
    app_ = create_app(services=services)
    console.print(f"answerdesk on http://{host}:{port}  (API docs: /docs)")
    # Forwarded addresses are trusted only per ANSWERDESK_TRUSTED_PROXIES (assistant/api/auth.py), not by
    # uvicorn's own default of believing 127.0.0.1.
    uvicorn.run(app_, host=host, port=port, log_level="info", proxy_headers=False)
