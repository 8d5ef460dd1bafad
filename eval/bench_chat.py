"""/v1/chat under load: latency p50/p95 and throughput at several client concurrencies.

The API runs as its own process (`answerdesk serve`, extractive answerer) over an existing
index; clients are threads here, each with its own HTTP connection, asking real questions."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from eval.bench_util import free_port, percentile, run_clients


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # Rate limits off: this measures the server, not the community's requests-per-minute budget.
    env = {**os.environ, "ANSWERDESK_DATA_DIR": str(data_dir), "ANSWERDESK_ANSWERER": "extractive",
           "ANSWERDESK_RATE_LIMITS": "{}", "ANSWERDESK_STREAM_LIMITS": "{}"}
    exe = Path(sys.executable).with_name("answerdesk")
    proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"answerdesk serve exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("answerdesk serve did not become ready")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, questions: list[str], clients: int, requests: int) -> dict[str, Any]:
    work: queue.Queue[str] = queue.Queue()
    for i in range(requests):
        work.put(questions[i % len(questions)])
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                try:
                    q = work.get_nowait()
                except queue.Empty:
                    return
                t = time.perf_counter()
                r = http.post("/v1/chat", json={"question": q})
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    (latencies.append(ms) if r.status_code == 200 else errors.append(r.status_code))

    wall = run_clients(clients, client)
    return {"clients": clients, "requests": requests, "errors": len(errors),
            "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "throughput_rps": len(latencies) / wall}


def run(data_dir: Path, questions: list[str], levels: tuple[int, ...] = (1, 4, 16)) -> list[dict[str, Any]]:
    proc, url = start_server(data_dir)
    try:
        load(url, questions[:5], 1, 5)  # warm-up: first calls compile kernels
        results, offset = [], 5
        for n in levels:
            # Each level asks questions not asked before, so no level rides on another's caches.
            requests = max(40, 10 * n)
            before = cpu_seconds(proc.pid)
            results.append(load(url, questions[offset:] or questions, n, requests))
            after = cpu_seconds(proc.pid)
            # The server's own CPU per answer: on 2 cores, 100 req/s leaves at most 20 ms each.
            ok = requests - results[-1]["errors"]
            results[-1]["server_cpu_ms"] = None
            if before is not None and after is not None and ok:
                results[-1]["server_cpu_ms"] = (after - before) * 1000 / ok
            offset += requests
        return results
    finally:
        proc.terminate()
        proc.wait(20)
