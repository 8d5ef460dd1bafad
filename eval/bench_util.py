"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_clients(clients: int, client: Callable[[], None]) -> float:
    """Run `client` in that many threads at once; the wall-clock seconds until the last one ends."""
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started
