"""The regression gate (`answerdesk eval compare`) and writing a calibrated threshold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Latency and the share escalated are shown but never gate: they move with the machine and
# with the threshold, not with answer quality.
NOT_GATED = {"escalated_share"}


def load_summary(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if "metrics" not in data:
        raise ValueError(f"{path} is not an eval summary.json (no 'metrics')")
    return data  # type: ignore[no-any-return]


def compare(baseline: dict[str, Any], current: dict[str, Any], max_drop: float) -> list[dict[str, Any]]:
    rows = []
    names = list(baseline["metrics"]) + [k for k in current["metrics"] if k not in baseline["metrics"]]
    for name in names:
        old, new = baseline["metrics"].get(name), current["metrics"].get(name)
        delta = None if old is None or new is None else new - old
        dropped = (new is None and old is not None) or (delta is not None and delta < -max_drop)
        failed = name not in NOT_GATED and dropped
        rows.append({"metric": name, "baseline": old, "current": new, "delta": delta, "failed": failed})
    return rows


def write_threshold(env_file: Path, threshold: float) -> None:
    write_setting(env_file, "ANSWERDESK_CONFIDENCE_THRESHOLD", f"{threshold:.4f}")


def write_setting(env_file: Path, name: str, value: str) -> None:
    """Set NAME=value in a .env file, keeping every other line."""
    line = f"{name}={value}"
    text = env_file.read_text() if env_file.exists() else ""
    pattern = re.compile(rf"^{re.escape(name)}=.*$", re.M)
    text = pattern.sub(lambda _m: line, text) if pattern.search(text) else (
        text + ("\n" if text and not text.endswith("\n") else "") + line + "\n")
    env_file.write_text(text)
