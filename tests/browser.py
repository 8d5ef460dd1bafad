"""Browser-test helpers: Debian's Chromium driven by Playwright, and the app's web routes in front
(tests/servers.py serves it).

Nothing here downloads a browser: Chromium comes from `apt-get install chromium` and is launched
by its path. Where it (or the playwright package) is missing, the tests skip and say how to fix it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI

CHROMIUM = os.environ.get("ANSWERDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (.venv/bin/pip install playwright)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set ANSWERDESK_CHROMIUM)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # a broken install: say so instead of failing every test
            pytest.skip(f"browser tests skipped: Chromium at {CHROMIUM} did not start ({exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0]})")
        try:
            yield browser
        finally:
            browser.close()


def with_web_routes(app: FastAPI) -> FastAPI:
    """The app with assistant.api.web's routes in front (a no-op once create_app includes them):
    ahead of the old "/" route and the /kb static mount, which they replace."""
    from assistant.api.web import router

    routes = app.router.routes
    if any(getattr(r, "original_router", None) is router or getattr(r, "path", None) == "/widget.js" for r in routes):
        return app
    before = len(routes)
    app.include_router(router)
    ours = routes[before:]
    rest = [r for r in routes[:before] if getattr(r, "path", None) not in ("/", "/kb")]
    routes[:] = ours + rest
    return app


