"""The one Atlassian adapter: atlassian-python-api clients built from url/user/token/cloud with their
credentials checked (clients.py), one error type vendor and requests failures become (errors.py), and
Atlassian Document Format in both directions (adf.py).

Callers map `AtlassianError` to their own error: ingest to SourceError, escalation to EscalationError.
See ../shared/contracts/atlassian/NOTES.md for the library's traps these modules work around."""
