"""Local servers that speak the real protocols to the real client libraries (see each module); they start through
tests/servers.py."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def reply(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """Send one whole response: status, headers, Content-Length and body."""
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)
