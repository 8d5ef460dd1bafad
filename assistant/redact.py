"""Personal data and secrets out of text before anything is embedded or stored: tickets at ingestion,
and (unless ANSWERDESK_REDACT_PII=false) chat questions and feedback comments as they arrive.

A rule set, not a model: Presidio would pull spaCy and its model downloads, and tickets are mostly
technical text where regular expressions plus a few context checks do well (tests/test_redact.py
measures precision and recall on a labelled set with tricky non-PII: versions, dates, UUIDs, code).

Each finding is replaced with a typed placeholder: [EMAIL], [PHONE], [IP], [SECRET], [NAME].
Detectors run in priority order and a span claimed by an earlier one is not matched again, so a token
that contains an '@' stays a secret and an e-mail address never leaks its local part as a name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

KINDS = ("SECRET", "EMAIL", "IP", "PHONE", "NAME")


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str


Detector = Callable[[str], Iterator[tuple[int, int]]]

# --- secrets ------------------------------------------------------------------------------------------
_TOKEN_FORMATS = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}"  # GitHub
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/\S+"  # Slack
    r"|\bsk-(?:proj-|svcacct-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style
    r"|\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|\bATATT[A-Za-z0-9_=-]{20,}"  # Atlassian API tokens
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWTs
)
# Credentials inside a URL: https://user:password@host
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)")
# "Authorization: Bearer abc...", "Basic dXNlcjpwYXNz": the credential must look like one (has a digit).
_AUTH_HEADER = re.compile(r"\b(?:Bearer|Basic|Token)\s+([A-Za-z0-9._~+/=-]{16,})")
_SECRET_WORDS = (r"pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|token|auth[_-]?token|access[_-]?token"
                 r"|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?")
# password=..., "api_key": "...", token: ...
_ASSIGNED = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{_SECRET_WORDS})(?![A-Za-z0-9])[\"']?\s*(?:[:=]|=>)\s*[\"']?"
                       r"([^\s\"',;)}]{6,})")
# "my token is 3f9a0c...": a long hex or base64 run shortly after a secret word.
_NEAR = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{_SECRET_WORDS}|key)(?![A-Za-z0-9])([^\n]{{0,30}}?)"
                   r"\b([A-Fa-f0-9]{24,}|[A-Za-z0-9+/_-]{32,}={0,2})")
_PLACEHOLDER_VALUE = re.compile(r"^(?:[<${%*\[]|x{6,}$|\*+$|none$|null$|true$|false$|required$|optional$)", re.I)
_NOT_A_SECRET_CONTEXT = re.compile(r"(?i)\b(?:commit|sha|hash|checksum|digest|revision|uuid|id)\b")


def _secrets(text: str) -> Iterator[tuple[int, int]]:
    for m in _TOKEN_FORMATS.finditer(text):
        yield m.span()
    for m in _URL_CREDENTIALS.finditer(text):
        yield m.span()
    for m in _AUTH_HEADER.finditer(text):
        if re.search(r"\d", m.group(1)):
            yield m.span(1)
    for m in _ASSIGNED.finditer(text):
        value = m.group(1)
        if _PLACEHOLDER_VALUE.match(value):
            continue
        if re.search(r"[\d\W_]", value) or len(value) >= 12:  # plain words ("expired") are not secrets
            yield m.span(1)
    for m in _NEAR.finditer(text):
        value = m.group(2)
        if _NOT_A_SECRET_CONTEXT.search(m.group(1)) or not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
            continue
        yield m.span(2)


# --- e-mail -------------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL.finditer(text):
        if not m.group().lower().startswith("git@"):  # git@github.com:org/repo is an address, not a person
            yield m.span()


# --- IP addresses -------------------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d|-[A-Za-z])")
_VERSION_CONTEXT = re.compile(r"(?i)(?:version|ver\.?|release[sd]?|build|firmware|patch|fixed in|\bv"
                              r"|(?:upgrad|updat)(?:e|ed|ing)\s+(?:to|from))\s*[:=]?\s*$")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?:%\w+)?"
                   r"(?![\w:])")


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4.finditer(text):
        try:
            ip = ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        if ip.is_loopback or ip.is_unspecified or m.group().startswith("255."):  # not anyone's address
            continue
        if _VERSION_CONTEXT.search(text[max(0, m.start() - 20):m.start()]):
            continue
        yield m.span()
    for m in _IPV6.finditer(text):
        candidate = m.group().split("%")[0]
        groups = [g for g in re.split(r":+", candidate) if g]
        if "::" not in candidate and candidate.count(":") < 7:
            continue  # times (12:30:45) and MAC addresses have no '::' and fewer groups
        if len(groups) < 2 or not any(len(g) >= 3 for g in groups):
            continue
        try:
            ip6 = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if not ip6.is_loopback and not ip6.is_unspecified:
            yield m.span()


# --- phone numbers ------------------------------------------------------------------------------------
_PHONE = re.compile(r"(?<![\w/.:#=-])(?:\+|00)?\(?\d[\d(). \t-]{5,20}\d(?![\w/]|[.-]\d)")
_PHONE_CONTEXT = re.compile(r"(?i)(?:phone|tel|telephone|call|mobile|cell|fax|whatsapp|sms|ph|reach (?:me|us) at)"
                            r"\.?\s*(?:number|no\.?|#)?\s*(?:is|at|on)?\s*[:=]?\s*$")
_DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$|^\d{4}\s*-\s*\d{4}$")


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for m in _PHONE.finditer(text):
        raw = m.group().rstrip(" -.")
        start, end = m.start(), m.start() + len(raw)
        digits = sum(c.isdigit() for c in raw)
        context = bool(_PHONE_CONTEXT.search(text[max(0, start - 30):start]))
        international = raw.startswith(("+", "00"))
        groups = re.findall(r"\d+", raw)
        if _DATE_LIKE.match(raw) or len(groups) > 6 or "\n" in raw:
            continue
        if "." in raw and not re.fullmatch(r"\(?\d{3}\)?\.\d{3}\.\d{4}", raw):
            continue  # versions and decimals; only the US 555.123.4567 form uses dots
        separated = len(groups) > 1 or "(" in raw
        if context and 7 <= digits <= 15:
            yield start, end
        elif (international or separated) and 8 <= digits <= 15 and (international or len(groups) <= 5):
            if not international and max(len(g) for g in groups) < 3:
                continue  # 12 34 56 78 reads as a list of numbers more than a phone
            yield start, end


# --- names --------------------------------------------------------------------------------------------
_MENTION = re.compile(r"\[~(?:accountid:)?[^\]\s]+\]")  # Jira wiki markup mentions
# Name parts that are also ordinary words: matching them alone would blank out plain English.
_COMMON_WORDS = {"will", "may", "mark", "bill", "april", "june", "august", "grant", "rich", "hope", "joy",
                 "case", "long", "young", "king", "park", "page", "rose", "lane", "love", "summer", "hunter",
                 "white", "black", "brown", "green", "gray", "grey", "bell", "wood", "stone", "hill", "ward",
                 "support", "admin", "team", "user", "customer", "agent", "bot", "service", "desk", "the", "and"}


def _name_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    patterns: list[re.Pattern[str]] = []
    parts: set[str] = set()
    for name in {n.strip() for n in names if n and n.strip()}:
        tokens = re.findall(r"[^\W\d_][\w'-]*", name)
        if not tokens:
            continue
        patterns.append(re.compile(r"(?i)(?<!\w)" + r"[\s.]+".join(map(re.escape, tokens)) + r"(?!\w)"))
        if len(tokens) >= 2:  # "Doe, Jane"
            patterns.append(re.compile(r"(?i)(?<!\w)" + re.escape(tokens[-1]) + r",\s*" + re.escape(tokens[0])
                                       + r"(?!\w)"))
        parts.update(t for t in tokens if len(t) >= 3 and t.lower() not in _COMMON_WORDS)
    for part in sorted(parts, key=len, reverse=True):  # a part alone only in its capitalised form
        patterns.append(re.compile(r"(?<!\w)" + re.escape(part[0].upper() + part[1:]) + r"(?!\w)"))
    return patterns


def _names(names: Iterable[str]) -> Detector:
    patterns = _name_patterns(names)

    def detect(text: str) -> Iterator[tuple[int, int]]:
        for m in _MENTION.finditer(text):
            yield m.span()
        for pattern in patterns:
            for m in pattern.finditer(text):
                yield m.span()

    return detect


def find_pii(text: str, names: Iterable[str] = ()) -> list[Finding]:
    """Non-overlapping findings in text order; earlier detectors win overlaps."""
    detectors: list[tuple[str, Detector]] = [
        ("SECRET", _secrets), ("EMAIL", _emails), ("IP", _ips), ("PHONE", _phones), ("NAME", _names(names)),
    ]
    taken: list[Finding] = []
    for kind, detect in detectors:
        for start, end in detect(text):
            if start < end and not any(start < f.end and f.start < end for f in taken):
                taken.append(Finding(start, end, kind))
    return sorted(taken, key=lambda f: f.start)


def redact(text: str, names: Iterable[str] = ()) -> str:
    """text with every finding replaced by its placeholder, e.g. 'mail [EMAIL] or call [PHONE]'."""
    if not text:
        return text
    out, last = [], 0
    for f in find_pii(text, names):
        out.append(text[last:f.start])
        out.append(f"[{f.kind}]")
        last = f.end
    out.append(text[last:])
    return "".join(out)
