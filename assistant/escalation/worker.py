"""The outbox worker: the API process's background thread that delivers pending escalations and keeps
delivered tickets' Jira status fresh. With the local queue every pass is a no-op."""

from __future__ import annotations

import logging
import threading
import time

from assistant.escalation.queue import TicketQueue

log = logging.getLogger("answerdesk.escalations")


def deliver_outbox(queue: TicketQueue, interval: float, stop: threading.Event,
                   wake: threading.Event | None = None) -> None:
    """Deliver and refresh until `stop` is set: at once when `wake` is set, else every `interval` seconds."""
    wake = wake or threading.Event()
    last = 0.0
    while not stop.is_set():
        woken = wake.wait(min(1.0, interval))  # short waits: stop is seen soon
        if stop.is_set() or not (woken or time.monotonic() - last >= interval):
            continue
        wake.clear()
        last = time.monotonic()
        try:
            queue.deliver_pending()
            queue.refresh_statuses()
        except Exception:  # the worker must outlive any one failure; each is logged
            log.exception("outbox delivery pass failed")


def start_worker(queue: TicketQueue, interval: float) -> tuple[threading.Thread, threading.Event] | None:
    """Switch the queue to background delivery (requests then only record an escalation and wake the
    worker, so no request waits for Jira) and start the worker. None when the queue delivers nothing.
    Returns the thread and the event that stops it."""
    if not queue.delivers:
        return None
    wake = queue.in_background()
    stop = threading.Event()
    worker = threading.Thread(target=deliver_outbox, args=(queue, interval, stop, wake), daemon=True, name="outbox")
    worker.start()
    return worker, stop
