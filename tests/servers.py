"""Every local server a test talks to over real HTTP starts here, so the start-up wait, the free port and
the clean stop are written once.

- `AsgiServer`: an ASGI app (the answerdesk API, a fake Atlassian or OpenAI) in uvicorn on a daemon
  thread, as `answerdesk serve` runs it. Fakes keep the object to stop and restart on the same port.
- `serve(app)`: the same as a context manager yielding the base URL, for fixtures.
- `serve_handler(handler)` / `shut(httpd)`: a `BaseHTTPRequestHandler` fake (Slack, GitHub, a static site)
  on the standard library's threading server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import uvicorn

START_TIMEOUT = 60.0  # seconds; generous because five test runs may share two cores


class AsgiServer:
    """One ASGI app in uvicorn on 127.0.0.1, started and stopped from the test's thread."""

    def __init__(self, app: Any, name: str = "test server", lifespan: Literal["auto", "on", "off"] = "auto",
                 graceful_stop: int | None = None) -> None:
        # graceful_stop: seconds to wait for requests still running at stop(); a fake that answers late on
        # purpose sets it low so stopping (or "going down" in a test) is not held up by its own slow answer.
        self.app, self.name, self.lifespan, self.graceful_stop = app, name, lifespan, graceful_stop
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, port: int = 0, timeout: float = START_TIMEOUT) -> str:
        """Serve on `port` (0: a free one) and return the base URL once uvicorn listens."""
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", lifespan=self.lifespan,
                                timeout_graceful_shutdown=self.graceful_stop)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=self.name, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not (server.started and server.servers):
            # A thread that ended never listened (the port was taken, or startup failed): say so now,
            # rather than after the whole timeout.
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"{self.name} did not start on 127.0.0.1:{port or '(any free port)'}; "
                                   "see the uvicorn log above")
            time.sleep(0.02)
        self._server, self._thread = server, thread
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self.url

    def stop(self) -> None:
        """Stop listening (connections are refused until start again); a no-op when not running."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(10)
            self._server = self._thread = None


@contextmanager
def serve(app: Any, port: int = 0, name: str = "test server",
          lifespan: Literal["auto", "on", "off"] = "auto") -> Iterator[str]:
    """`app` served for the block: yields its base URL, stops it on the way out."""
    server = AsgiServer(app, name=name, lifespan=lifespan)
    url = server.start(port)
    try:
        yield url
    finally:
        server.stop()


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow answer must not hold up the test's end


def serve_handler(handler: type[BaseHTTPRequestHandler], server: type[ThreadingHTTPServer] = FakeServer,
                  port: int = 0) -> ThreadingHTTPServer:
    """Serve `handler` on 127.0.0.1 (`port` 0: a free one) from a daemon thread; stop it with `shut`.
    The socket listens once the constructor returns, so there is nothing to wait for."""
    httpd = server(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def shut(httpd: ThreadingHTTPServer | None) -> None:
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()
