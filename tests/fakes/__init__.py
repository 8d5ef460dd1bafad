"""Local servers that speak the real protocols to the real client libraries (see each module)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow answer must not hold up the test's end


def serve(handler: type[BaseHTTPRequestHandler], server: type[ThreadingHTTPServer] = FakeServer) -> ThreadingHTTPServer:
    """Serve `handler` on a free port of 127.0.0.1 from a daemon thread; stop it with `shut`."""
    httpd = server(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def shut(httpd: ThreadingHTTPServer | None) -> None:
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()


def reply(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """Send one whole response: status, headers, Content-Length and body."""
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
