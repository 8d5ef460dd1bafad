"""PII redaction: a labelled set with tricky non-PII, measured for precision and recall.

Each sample marks expected findings inline as {KIND:text}; everything else must stay as it is.
"""

from __future__ import annotations

import re

import pytest

from ingest.redact import KINDS, find_pii, redact

NAMES = ["Jane Doe", "Rafael Ortiz", "Mark Will"]

SAMPLES = [
    # e-mail
    "Customer wrote from {EMAIL:jane.doe@acme-corp.com} about the outage.",
    "Forwarded to {EMAIL:ops+alerts@mail.example.co.uk}; no answer yet.",
    "Reply-To: <{EMAIL:r.ortiz@customer.io}>",
    # phone
    "Call me back on {PHONE:+1 (555) 123-4567} after 3pm.",
    "My mobile: {PHONE:+44 20 7946 0958}",
    "Phone {PHONE:555-123-4567}, ask for the DBA.",
    "Reach me at {PHONE:030 1234 5678} (office).",
    "tel: {PHONE:5551234567}",
    "Hotline {PHONE:+49 30 12345678} is staffed 24/7.",
    "US office {PHONE:555.123.4567}",
    # IP addresses
    "Requests from {IP:203.0.113.45} hit the rate limit.",
    "The node at {IP:10.20.30.40}:5432 refused connections.",
    "Client IPv6 {IP:2001:db8:85a3::8a2e:370:7334} was blocked.",
    "Link-local {IP:fe80::1ff:fe23:4567:890a} on eth0.",
    # secrets
    "export AWS_ACCESS_KEY_ID={SECRET:AKIAIOSFODNN7EXAMPLE}",
    "aws_secret_access_key = {SECRET:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY}",
    "used token {SECRET:ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8} to clone",
    "Slack bot {SECRET:xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx} leaked",
    "OPENAI_API_KEY={SECRET:sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56}",
    "curl -H 'Authorization: Bearer {SECRET:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N}'",
    "Authorization: Basic {SECRET:YWxpY2U6c3VwZXJzZWNyZXQxMjM=}",
    "password: {SECRET:Tr0ub4dor&3}",
    'config {"api_key": "{SECRET:9f8e7d6c5b4a39281706f5e4d3c2b1a0}"}',
    "my token is {SECRET:3f9a0c7be21d44a8b6c09e7f15d2a3b4c5d6e7f8} please rotate",
    "DSN postgresql://{SECRET:app:s3cretPw}@db.internal:5432/prod",
    "Atlassian token {SECRET:ATATT3xFfGF0abcdefghijklmnopqrstuvwxyz0123456789}",
    # names from the reporter/assignee fields
    "Thanks {NAME:Jane}, closing. -- {NAME:Rafael Ortiz}",
    "Assigned to {NAME:Doe, Jane} per {NAME:Ortiz}'s request",
    "cc {NAME:[~accountid:5b10ac8d82e05b22cc7d4ef5]} for review",
    # mixed
    "{NAME:Jane Doe} ({EMAIL:jane@acme.com}, {PHONE:+1 415 555 0100}) from {IP:198.51.100.7}",
    # known weak spots, kept in the set so the figures stay honest
    "Write to {EMAIL:jane[at]acme[dot]com} for access",  # obfuscated address: missed
    "My password is {SECRET:letmein} and it still fails",  # a bare word after 'is': missed
    "Also reproduced on 4.2.1.0 without any change.",  # a four-part version with no context: taken for an IP
    # tricky non-PII: must come out unchanged
    "Upgrade to version 1.2.3.4 fixes it; build 10.0.19041.1 also works.",
    "Released 2024-03-01, see changelog for 2023-11-30 and 01/02/2024.",
    "GET /api/items/123e4567-e89b-12d3-a456-426614174000/children returns 404.",
    "Fixed in commit 3f9a0c7be21d44a8b6c09e7f15d2a3b4c5d6e7f8 (key fix for the cache).",
    "Set max_connections = 100 and timeout: 30 in postgresql.conf",
    "Listen on 127.0.0.1:8000 or 0.0.0.0 and ::1 for local tests.",
    "The job ran 12:30:45 to 13:02:10 and logged 1234567 rows.",
    "Order 20240301 and ticket ABC-12345678 were merged; see RFC 9110 section 15.5.",
    "mask 255.255.255.0; MAC 00:1A:2B:3C:4D:5E",
    "pip install requests==2.31.0 && npm i lodash@4.17.21; std::vector<int> v;",
    "git clone git@github.com:acme/app.git then run `make test`",
    "The password must be at least 12 characters; set password=<your-password>.",
    "Our API uses Bearer tokens; Basic authentication is deprecated.",
    "We will mark this as done in May; will retry in June.",
    "Python 3.11.4 on Ubuntu 22.04, kernel 5.15.0-91-generic, pages 10-20.",
    "Throughput went from 1,234,567 to 2,345,678 requests per day.",
    "sha256: 9b74c9897bac770ffc029102a200c5de0000000000000000000000000000aaaa",
]

MARK = re.compile(r"\{(" + "|".join(KINDS) + r"):((?:[^{}]|\{[^{}]*\})*)\}")


def parse(sample: str) -> tuple[str, list[tuple[int, int, str]]]:
    text, spans, pos = "", [], 0
    for m in MARK.finditer(sample):
        text += sample[pos:m.start()]
        spans.append((len(text), len(text) + len(m.group(2)), m.group(1)))
        text += m.group(2)
        pos = m.end()
    return text + sample[pos:], spans


def score() -> tuple[int, int, int, list[str]]:
    """(true positives, predicted, expected, misses): a prediction counts when it overlaps an expected
    span of the same kind."""
    tp = predicted = expected = 0
    misses = []
    for sample in SAMPLES:
        text, gold = parse(sample)
        found = find_pii(text, NAMES)
        predicted += len(found)
        expected += len(gold)
        for f in found:
            if any(f.start < e and s < f.end and k == f.kind for s, e, k in gold):
                tp += 1
            else:
                misses.append(f"false positive {f.kind} {text[f.start:f.end]!r} in {text!r}")
        for s, e, k in gold:
            if not any(f.start < e and s < f.end and k == f.kind for f in found):
                misses.append(f"missed {k} {text[s:e]!r} in {text!r}")
    return tp, predicted, expected, misses


def test_precision_and_recall_on_the_labelled_set() -> None:
    tp, predicted, expected, misses = score()
    precision, recall = tp / predicted, tp / expected
    print(f"\nredaction: precision {precision:.3f} ({tp}/{predicted}), recall {recall:.3f} ({tp}/{expected})")
    # The three known weak spots above cost a few points; anything beyond them is a regression.
    assert precision >= 0.95 and recall >= 0.93, "\n".join(misses)
    assert len(misses) <= 3, "\n".join(misses)


KNOWN_FALSE_POSITIVES = {"Also reproduced on 4.2.1.0 without any change."}


@pytest.mark.parametrize("sample", [s for s in SAMPLES if not MARK.search(s) and s not in KNOWN_FALSE_POSITIVES])
def test_tricky_non_pii_is_left_alone(sample: str) -> None:
    assert redact(sample, NAMES) == sample


def test_placeholders_replace_the_values_completely() -> None:
    text = ("Jane Doe <jane.doe@acme-corp.com> +44 20 7946 0958 from 203.0.113.45 "
            "token=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    out = redact(text, NAMES)
    assert out == "[NAME] <[EMAIL]> [PHONE] from [IP] token=[SECRET]"
    for leaked in ("Jane", "Doe", "jane.doe", "7946", "203.0.113", "ghp_"):
        assert leaked not in out


def test_names_come_only_from_the_given_fields() -> None:
    # Without the reporter's name there is nothing to say that "Jane" is a person.
    assert redact("Thanks Jane, closing.") == "Thanks Jane, closing."
    assert redact("Thanks Jane, closing.", ["Jane Doe"]) == "Thanks [NAME], closing."


def test_common_words_in_names_are_only_redacted_as_the_full_name() -> None:
    out = redact("We will mark it done. Mark Will agreed.", ["Mark Will"])
    assert out == "We will mark it done. [NAME] agreed."


def test_empty_and_plain_text() -> None:
    assert redact("") == ""
    assert redact("Nothing personal here: restart the worker.") == "Nothing personal here: restart the worker."
