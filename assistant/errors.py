"""Our own small error hierarchy: adapters convert vendor errors into these, the edges map them
to HTTP statuses or CLI messages."""


class AnswerdeskError(Exception):
    """Base class; the message is meant for the user and names the next step."""


class ConfigError(AnswerdeskError):
    """A setting is missing or invalid."""


class RetrievalError(AnswerdeskError):
    """The index (Chroma, keyword index or database) could not be reached or read."""


class EmbeddingError(AnswerdeskError):
    """The embedding model could not be loaded or run."""


class SourceError(AnswerdeskError):
    """A source to ingest is missing, empty or unreadable."""


class GenerationError(AnswerdeskError):
    """The answer generator (LLM) failed."""


class EscalationError(AnswerdeskError):
    """An escalation could not be recorded or delivered."""


class SchemaError(AnswerdeskError):
    """The database's schema is behind this version, or at a revision this version does not know."""
