"""Signed-in users in the widget: the host site vouches for them with a short-lived HS256 JWT.

The host site's server signs the user's id (`sub`), `email`, `org` and `tier` with a secret it shares
with answerdesk (ANSWERDESK_WIDGET_IDENTITY_SECRET), for this answerdesk site (`aud`), with `iat` and
`exp`; the widget passes the token on in the X-Answerdesk-User header. A verified token becomes an
Identity the way an API key does: with an organisation the user is a customer of that tier (customer
and organisation documents, the tier's priority and limits), without one a community user. Either
way the user owns what they start, across visits and devices.

A token that is missing, forged, expired, not yet valid, for another audience or longer-lived than
ANSWERDESK_WIDGET_IDENTITY_MAX_AGE is ignored: the visitor is community, as if no token had been sent,
and a warning with the reason (never the token or its claims) is logged for the host site's
developers. A widget token never makes anyone staff: agents and admins use keys."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import jwt

from assistant.keys import Identity
from assistant.settings import Settings

log = logging.getLogger("answerdesk.widget_identity")

HEADER = "X-Answerdesk-User"
LEEWAY = 30  # seconds of clock difference between the host site and answerdesk
MAX_TOKEN = 4096
# The same shapes an API key's org and tier may take (cli keys create), so plans and filters match.
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")
_TIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# The owner "user:<aud>/<sub>" fits the 200 characters conversations.owner holds (aud: at most 64).
_SUB = re.compile(r"^[^\s/]{1,128}$")
# Whitespace spelled out as control characters and space, not \s: the pattern is also the OpenAPI
# schema's, and JSON Schema's \s (ECMA) and Python's differ (U+0085), so a client checking the schema
# and the server must agree on what is an address.
EMAIL = re.compile(r"^[^@\x00-\x20\x7f-\x9f<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class SignedUser:
    sub: str
    email: str | None
    org: str | None
    tier: str | None


class BadToken(ValueError):
    """Why a token was not accepted; the message is safe to log (no token, no claim values)."""


class WidgetIdentity:
    def __init__(self, secrets: list[str], audience: str, max_age: int, leeway: int = LEEWAY) -> None:
        self.secrets, self.audience, self.max_age, self.leeway = secrets, audience, max_age, leeway

    @classmethod
    def from_settings(cls, settings: Settings) -> WidgetIdentity:
        return cls([s.get_secret_value() for s in settings.widget_identity_secret],
                   settings.widget_identity_audience, settings.widget_identity_max_age)

    def identity(self, token: str | None, client: str = "") -> Identity | None:
        """The identity a token proves, or None (then the caller is community). Never raises."""
        if not token:
            return None
        try:
            user = self.verify(token)
        except BadToken as exc:
            log.warning("widget identity ignored, the visitor is community: %s", exc)
            return None
        role = "customer" if user.org else "community"
        return Identity(role=role, org=user.org, tier=(user.tier or "free") if user.org else None, client=client,
                        session=f"user:{self.audience}/{user.sub}", email=user.email)

    def verify(self, token: str) -> SignedUser:
        if not self.secrets:
            raise BadToken("no ANSWERDESK_WIDGET_IDENTITY_SECRET is set, so no token can be verified")
        if len(token) > MAX_TOKEN:
            raise BadToken(f"token longer than {MAX_TOKEN} characters")
        claims = None
        for secret in self.secrets:  # every configured secret verifies: rotation without a gap
            try:
                claims = jwt.decode(token, secret, algorithms=["HS256"], audience=self.audience, leeway=self.leeway,
                                    options={"require": ["sub", "aud", "iat", "exp"]})
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise BadToken("expired (exp is in the past)") from None
            except jwt.ImmatureSignatureError:
                raise BadToken("not yet valid (iat or nbf is in the future)") from None
            except jwt.InvalidAudienceError:
                raise BadToken(f"signed for another audience, not {self.audience!r} "
                               "(ANSWERDESK_WIDGET_IDENTITY_AUDIENCE)") from None
            except jwt.MissingRequiredClaimError as exc:
                raise BadToken(f"the {exc.claim} claim is missing") from None
            except jwt.InvalidTokenError as exc:
                raise BadToken(f"malformed: {type(exc).__name__}") from None
        if claims is None:
            raise BadToken("bad signature (signed with none of the configured secrets)")
        return self._user(claims)

    def _user(self, claims: dict[str, object]) -> SignedUser:
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float) or exp - iat > self.max_age:
            raise BadToken(f"lives longer than {self.max_age} s (exp - iat; ANSWERDESK_WIDGET_IDENTITY_MAX_AGE)")
        sub, email, org, tier = (claims.get(k) for k in ("sub", "email", "org", "tier"))
        if not isinstance(sub, str) or not _SUB.match(sub):
            raise BadToken("sub must be the user's id: 1 to 128 characters, no spaces or '/'")
        if email is not None and (not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email)):
            raise BadToken("email is not an e-mail address")
        if org is not None and (not isinstance(org, str) or not _ORG.match(org)):
            raise BadToken("org must be an organisation name of up to 200 letters, digits, spaces, '.', '_' or '-'")
        if tier is not None and (not isinstance(tier, str) or not _TIER.match(tier)):
            raise BadToken("tier must be a plan name such as free or paid (lowercase, up to 40 characters)")
        return SignedUser(sub, email if isinstance(email, str) else None, org or None, tier or None)
