"""A local fake Slack for tests: the Web API methods the bot calls, response_url webhooks, and the
requests Slack itself sends (events, button clicks, slash commands), signed as Slack signs them.

The Web API answers the way Slack does where our code could trip: HTTP 200 with {"ok": false, "error"}
for API errors, `not_authed` / `invalid_auth` without the right Bearer token, 429 with Retry-After when
rate limited, and `invalid_blocks` for Block Kit that breaks Slack's documented limits (50 blocks,
3000 characters a section, 10 context elements, 25 actions, 75-character button labels, unique ids).

    with FakeSlack() as slack:
        slack.api_url                                   # base_url for slack_sdk's WebClient
        slack.rate_limited["chat.postMessage"] = 1     # the next call gets 429, Retry-After: 1
        slack.errors["chat.postMessage"] = ["not_in_channel"]
        slack.wait_for("chat.postMessage", lambda c: c.body["thread_ts"] == ts)   # polls with a deadline
        slack.calls                                     # every request: method, status, auth, body, answer
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tests.fakes import reply
from tests.servers import serve_handler, shut

TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
CHANNEL_ID = re.compile(r"^[CDG][A-Z0-9]{2,}$")
TEXT_LIMIT = 40_000
SECTION_LIMIT = 3000


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage"), or "response_url"
    http_status: int
    authorization: str | None
    content_type: str
    body: dict[str, Any]
    answer: dict[str, Any] | str
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and (not isinstance(self.answer, dict) or bool(self.answer.get("ok")))

    def text_everywhere(self) -> str:
        """Everything Slack would render: the fallback text and the blocks, as JSON."""
        return json.dumps({"text": self.body.get("text"), "blocks": self.body.get("blocks")}, ensure_ascii=False)


class FakeSlack:
    def __init__(self, token: str = "xoxb-1111-2222-fakeslacktoken") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: list[dict[str, Any]] = []  # what the bot posted, as Slack stores it
        self.errors: dict[str, list[str]] = {}  # method -> error codes to answer next, one per call
        self.rate_limited: dict[str, int] = {}  # method -> how many calls to answer with 429
        self.retry_after = 1
        # users.info: user id -> profile e-mail; None: the app lacks users:read.email, so Slack leaves it out.
        self.users: dict[str, str | None] = {}
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- addresses and helpers for tests -------------------------------------------------------
    @property
    def base(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self) -> str:
        return f"{self.base}/commands/{TEAM_ID}/{next(self._ts)}/aBcDeF"

    def next_ts(self) -> str:
        """A fresh message timestamp, as Slack writes them."""
        return f"{1700000000 + next(self._ts)}.000100"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.errors.clear()
            self.rate_limited.clear()

    def ok_calls(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.ok]

    def wait_for(self, method: str, match: Callable[[Call], bool] = lambda c: True, count: int = 1,
                 timeout: float = 20.0) -> list[Call]:
        """The successful calls of `method` that match, once there are `count` of them; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.ok_calls(method) if match(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [(c.method, c.http_status, c.answer) for c in self.calls]
                raise AssertionError(f"no {count} x {method} within {timeout} s; calls seen: {seen}")
            time.sleep(0.02)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
                pass

        self._server = serve_handler(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        shut(self._server)

    # -- serving -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        ctype = h.headers.get("Content-Type", "")
        body = json.loads(raw or b"{}") if "json" in ctype else dict(parse_qsl(raw.decode() or query))
        auth = h.headers.get("Authorization")
        answer: dict[str, Any] | str
        if path.startswith(("/commands/", "/actions/")):
            status, headers, answer = 200, {"Content-Type": "text/html"}, "ok"
            method = "response_url"
        elif path.startswith("/api/"):
            method = path[len("/api/"):]
            status, headers, answer = self._api(method, auth, body)
        else:
            method, status, headers, answer = path, 404, {"Content-Type": "text/plain"}, "Not Found"
        with self._lock:
            self.calls.append(Call(method, status, auth, ctype, body, answer))
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        reply(h, status, {"Content-Type": "application/json; charset=utf-8", **headers}, data)

    def _api(self, method: str, auth: str | None, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            if self.rate_limited.get(method, 0) > 0:
                self.rate_limited[method] -= 1
                return 429, {"Retry-After": str(self.retry_after)}, {"ok": False, "error": "ratelimited"}
            queued = self.errors.get(method)
            forced = queued.pop(0) if queued else None
        token = auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else body.get("token")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if forced:
            return 200, {}, {"ok": False, "error": forced}
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(body)

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://answerdesk-test.slack.com/", "team": "Answerdesk Test",
                "user": "answerdesk", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                "is_enterprise_install": False}

    def _chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - Slack's method name
        channel = str(body.get("channel", ""))
        if not CHANNEL_ID.match(channel):
            return {"ok": False, "error": "channel_not_found"}
        blocks = body.get("blocks")
        if isinstance(blocks, str):  # form-encoded requests carry blocks as a JSON string
            blocks = json.loads(blocks)
        if not body.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(str(body.get("text") or "")) > TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        problems = block_problems(blocks or [])
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems,
                    "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}}
        ts = self.next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID,
                   "text": body.get("text", ""), "ts": ts, **({"blocks": blocks} if blocks else {}),
                   **({"thread_ts": body["thread_ts"]} if body.get("thread_ts") else {})}
        with self._lock:
            self.messages.append({"channel": channel, **message})
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if not CHANNEL_ID.match(str(body.get("channel", ""))):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "message_ts": self.next_ts()}

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("user", ""))
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        profile: dict[str, Any] = {"real_name": user, "display_name": user}
        if self.users[user] is not None:
            profile["email"] = self.users[user]
        return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, "name": user.lower(), "is_bot": False,
                                     "profile": profile}}

    def _chat_getPermalink(self, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        channel, ts = str(body.get("channel", "")), str(body.get("message_ts", ""))
        if not CHANNEL_ID.match(channel) or not ts:
            return {"ok": False, "error": "channel_not_found" if ts else "message_not_found"}
        return {"ok": True, "channel": channel,
                "permalink": f"https://answerdesk-test.slack.com/archives/{channel}/p{ts.replace('.', '')}"}


def block_problems(blocks: list[dict[str, Any]]) -> list[str]:
    """Block Kit limits Slack enforces with `invalid_blocks` (docs.slack.dev/reference/block-kit)."""
    out: list[str] = []
    if len(blocks) > 50:
        out.append(f"must provide at most 50 blocks, got {len(blocks)}")
    action_ids: set[str] = set()
    block_ids: set[str] = set()

    def text_object(where: str, obj: Any, limit: int, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            out.append(f"{where}: must be a text object of type {'/'.join(kinds)}")
        elif not 1 <= len(obj.get("text") or "") <= limit:
            out.append(f"{where}/text: must be 1..{limit} characters, got {len(obj.get('text') or '')}")
        elif "verbatim" in obj and obj["type"] != "mrkdwn":
            out.append(f"{where}: verbatim is only for mrkdwn")

    for i, block in enumerate(blocks):
        kind = block.get("type")
        if block.get("block_id"):
            if block["block_id"] in block_ids or len(block["block_id"]) > 255:
                out.append(f"[{i}]/block_id: duplicate or too long")
            block_ids.add(block["block_id"])
        if kind == "section":
            text_object(f"[{i}]/text", block.get("text"), SECTION_LIMIT)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                out.append(f"[{i}]/elements: must have 1..10 elements")
            for j, el in enumerate(elements):
                text_object(f"[{i}]/elements/{j}", el, SECTION_LIMIT)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                out.append(f"[{i}]/elements: must have 1..25 elements")
            for j, el in enumerate(elements):
                if el.get("type") != "button":
                    out.append(f"[{i}]/elements/{j}: unsupported element {el.get('type')}")
                    continue
                text_object(f"[{i}]/elements/{j}/text", el.get("text"), 75, ("plain_text",))
                aid = el.get("action_id", "")
                if not aid or aid in action_ids or len(aid) > 255:
                    out.append(f"[{i}]/elements/{j}/action_id: missing, duplicate or too long")
                action_ids.add(aid)
                url = el.get("url")
                if url is not None and (len(url) > 3000 or not re.match(r"^https?://", url)):
                    out.append(f"[{i}]/elements/{j}/url: must be an http(s) URL of at most 3000 characters")
                if len(str(el.get("value", ""))) > 2000:
                    out.append(f"[{i}]/elements/{j}/value: too long")
        else:
            out.append(f"[{i}]: unsupported block type {kind!r}")
    return out


# -- what Slack sends to the app ----------------------------------------------------------------
def signed(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 over "v0:{timestamp}:{body}" with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def event_callback(event: dict[str, Any], event_id: str) -> str:
    """An Events API delivery (JSON), as Slack posts it to the Request URL."""
    return json.dumps({
        "token": "legacy-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": f"4-{event_id}",
    })


def mention(channel: str, text: str, ts: str, user: str = "U0ALICE", thread_ts: str | None = None) -> dict[str, Any]:
    return {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts, "channel": channel,
            "event_ts": ts, "team": TEAM_ID, **({"thread_ts": thread_ts} if thread_ts else {})}


def message(channel: str, text: str, ts: str, user: str = "U0ALICE", channel_type: str = "channel",
            thread_ts: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts,
            "channel_type": channel_type, "team": TEAM_ID, **({"thread_ts": thread_ts} if thread_ts else {}), **extra}


def reaction(channel: str, item_ts: str, name: str, user: str = "U0ALICE") -> dict[str, Any]:
    return {"type": "reaction_added", "user": user, "reaction": name, "item_user": BOT_USER_ID,
            "item": {"type": "message", "channel": channel, "ts": item_ts}, "event_ts": f"{time.time():.6f}"}


def block_actions(channel: str, message_ts: str, thread_ts: str, action_id: str, response_url: str,
                  user: str = "U0ALICE") -> str:
    """An interactivity request (a button click): form-encoded, the JSON in `payload`."""
    payload = {
        "type": "block_actions", "user": {"id": user, "username": "alice", "name": "alice", "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False,
                      "thread_ts": thread_ts},
        "trigger_id": "1111.2222.abcd", "team": {"id": TEAM_ID, "domain": "answerdesk-test"},
        "channel": {"id": channel, "name": "support"},
        "message": {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": message_ts, "thread_ts": thread_ts},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "answerdesk_actions", "type": "button", "value": "human",
                     "text": {"type": "plain_text", "text": "Talk to a human"}, "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def slash_command(channel: str, text: str, response_url: str, user: str = "U0AGENT") -> str:
    """A slash command request: form-encoded fields."""
    return urlencode({
        "token": "legacy-verification-token", "team_id": TEAM_ID, "team_domain": "answerdesk-test",
        "channel_id": channel, "channel_name": "support", "user_id": user, "user_name": "agent",
        "command": "/answerdesk", "text": text, "api_app_id": APP_ID, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": "1111.2222.abcd",
    })
