"""Intervals in seconds as the cron expressions procrastinate schedules periodic jobs with."""

from __future__ import annotations


def cron_every(seconds: float) -> str | None:
    """A cron expression firing about every `seconds` (None: off). Cron counts on the clock, so the
    interval is rounded to whole seconds, minutes, hours or days, and one that does not divide the next
    unit (7 minutes) has one shorter gap where the unit turns over."""
    if seconds <= 0:
        return None
    if seconds < 60:
        return f"* * * * * */{max(1, round(seconds))}"  # procrastinate's optional 6th field: seconds
    if seconds < 3600:
        return f"*/{max(1, round(seconds / 60))} * * * *"
    if seconds < 86400:
        return f"0 */{max(1, round(seconds / 3600))} * * *"
    return f"0 0 */{max(1, round(seconds / 86400))} * *"
